"""allowed-location-ips under full/cross granularity: every node is a Kilo segment, and
Kilo refuses one CIDR on two segments, so exactly one member carries them."""

from __future__ import annotations

import pytest

from reconciler.core.planning.desired import location_ips_anchor
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from tests.core.test_plan import site, state, topology

CIDR = "192.168.50.0/24"


def carriers(granularity: str, **spec: object) -> list[str]:
    topo = topology(site("a", allowedLocationIPs=[CIDR], **spec), mesh={"granularity": granularity})
    nodes = [state(f"a-{i}", labels={"pool": "a"}) for i in (1, 2, 3)]
    plan = Planner(topo, nodes).plan_all()
    return sorted(
        c.node
        for n in plan.nodes
        for c in n.changes
        if c.key == keys.KILO_ALLOWED_LOCATION_IPS and c.after == CIDR
    )


POOL = {"pools": [{"name": "p", "selector": {"matchLabels": {"pool": "a"}}}]}


@pytest.mark.parametrize("granularity", ["full", "cross"])
def test_one_member_carries_them_per_node(granularity: str) -> None:
    assert carriers(granularity, **POOL) == ["a-1"]  # no listed node: the first by name
    listed = {"nodes": [{"name": "a-3"}, {"name": "a-2"}]}
    assert carriers(granularity, **POOL, **listed) == ["a-3"]  # the first listed
    pinned = {**listed, "leader": ["a-2"]}
    assert carriers(granularity, **POOL, **pinned) == ["a-2"]  # the pinned candidate


def test_every_member_carries_them_under_location_granularity() -> None:
    assert carriers("location", **POOL) == ["a-1", "a-2", "a-3"]


def test_the_anchor_skips_listed_nodes_not_registered() -> None:
    s = site("a", nodes=[{"name": "gone"}, {"name": "a-2"}], leader=["gone"])
    assert location_ips_anchor(s, {"a-1", "a-2"}) == "a-2"
    assert location_ips_anchor(s, set()) is None
