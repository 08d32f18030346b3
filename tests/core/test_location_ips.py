"""allowed-location-ips under full/cross granularity: every node is a Kilo segment, and
Kilo refuses one CIDR on two segments, so exactly one member carries them - one Kilo
counts as Ready, since Kilo routes a segment's allowed IPs only through a Ready node
(checked against Kilo's own code in tests/integration/test_kilo_crosscheck.py)."""

from __future__ import annotations

import pytest

from reconciler.core.planning.desired import location_ips_anchor
from reconciler.core.planning.plan import Plan
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.state import NodeState
from tests.core.test_plan import SEEN, kilo_annotations, site, state, topology

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
    both = {"a-1", "a-2"}
    assert location_ips_anchor(s, both, both, ()) == "a-2"
    assert location_ips_anchor(s, set(), (), ()) is None


# --- Ready for Kilo --------------------------------------------------------------------

PINNED = {
    "nodes": [{"name": "a-1"}, {"name": "a-2"}, {"name": "a-3"}],
    "leader": ["a-1"],
}


def kilo_node_state(name: str, *, age: int = 0, carries: bool = False) -> NodeState:
    """A member Kilo runs on, its last check-in ``age`` seconds before the plan's time."""
    index = int(name[-1])
    extra = {keys.KILO_ALLOWED_LOCATION_IPS: CIDR} if carries else {}
    annotations = kilo_annotations(
        f"203.0.113.{index}:51820", f"10.8.0.{index}/24", last_seen=SEEN - age, extra=extra
    )
    return state(name, annotations={keys.KILO_LOCATION: "a", **annotations})


def plan_of(granularity: str, nodes: list[NodeState]) -> Plan:
    topo = topology(
        site("a", allowedLocationIPs=[CIDR], **PINNED), mesh={"granularity": granularity}
    )
    return Planner(topo, nodes, SEEN).plan_all()  # judged at the newest check-in's time


def after(plan: Plan, nodes: list[NodeState]) -> list[str]:
    """The members carrying the site's allowed IPs once the plan is applied."""
    out = {n.name for n in nodes if keys.KILO_ALLOWED_LOCATION_IPS in n.annotations}
    for change in (c for n in plan.writes for c in n.writes):
        if change.key == keys.KILO_ALLOWED_LOCATION_IPS:
            (out.add if change.after is not None else out.discard)(change.node)
    return sorted(out)


@pytest.mark.parametrize("granularity", ["full", "cross"])
def test_a_pinned_leader_kilo_does_not_count_ready_does_not_carry_them(granularity: str) -> None:
    nodes = [kilo_node_state("a-1", age=300), kilo_node_state("a-2"), kilo_node_state("a-3")]
    plan = plan_of(granularity, nodes)
    assert after(plan, nodes) == ["a-2"]  # the first listed node that is Ready
    assert not [w for w in plan.warnings if "no member is Ready" in w]


@pytest.mark.parametrize("granularity", ["full", "cross"])
def test_they_stay_on_a_ready_carrier_and_move_when_it_stops_being_ready(
    granularity: str,
) -> None:
    nodes = [kilo_node_state("a-1"), kilo_node_state("a-2", carries=True), kilo_node_state("a-3")]
    assert after(plan_of(granularity, nodes), nodes) == ["a-2"]  # Ready: not moved
    nodes[1] = kilo_node_state("a-2", age=300, carries=True)  # a-2's Kilo stopped
    plan = plan_of(granularity, nodes)
    assert after(plan, nodes) == ["a-1"]
    moved = {(c.node, c.verb) for n in plan.writes for c in n.writes if c.key == CIDR_KEY}
    assert moved == {("a-2", "remove"), ("a-1", "set")}


@pytest.mark.parametrize("granularity", ["full", "cross"])
def test_with_no_member_ready_they_stay_and_the_plan_warns(granularity: str) -> None:
    nodes = [
        kilo_node_state("a-1", age=300),
        kilo_node_state("a-2", age=300, carries=True),
        state("a-3", annotations={keys.KILO_LOCATION: "a", keys.KILO_LAST_SEEN: str(SEEN)}),
    ]  # a-3 checked in but has no key nor endpoint
    plan = plan_of(granularity, nodes)
    assert after(plan, nodes) == ["a-2"]
    (warning,) = [w for w in plan.warnings if "no member is Ready" in w]
    assert CIDR in warning and "stay on a-2" in warning and granularity in warning


def test_location_granularity_puts_them_on_every_member_ready_or_not() -> None:
    nodes = [kilo_node_state("a-1", age=300), kilo_node_state("a-2"), kilo_node_state("a-3")]
    plan = plan_of("location", nodes)
    assert after(plan, nodes) == ["a-1", "a-2", "a-3"]
    assert not [w for w in plan.warnings if "no member is Ready" in w]


CIDR_KEY = keys.KILO_ALLOWED_LOCATION_IPS
