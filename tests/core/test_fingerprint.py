"""The planning fingerprint: what it leaves out cannot change a plan.

Generated topologies and clusters come from the strategies of test_plan.py. Every node is
changed in what the fingerprint ignores - ``last-seen`` moved without its freshness
flipping, the resourceVersion, addresses, condition times, conditions the planner does
not read - and the plan must stay the same but for the versions writes are guarded by.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from reconciler.core.kilo.freshness import fresh_until, is_fresh, last_seen
from reconciler.core.planning.fingerprint import fingerprint
from reconciler.core.planning.plan import Plan
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.state import NodeCondition, NodeState
from reconciler.model.topology import Topology
from tests.core.test_plan import SEEN, live_nodes, state, states_of, topologies

NOW = SEEN + 5
PROPERTY_SETTINGS = settings(
    derandomize=True, max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _unread_change(node: NodeState, step: int) -> NodeState:
    annotations = dict(node.annotations)
    seen = last_seen(node)
    if seen is not None:
        moved = seen + step
        if is_fresh(node, NOW) == (moved + 60 > NOW):  # a heartbeat that flips nothing
            annotations[keys.KILO_LAST_SEEN] = str(moved)
    conditions = (
        *(
            replace(c, last_heartbeat_time="2030-01-01T00:00:00Z", last_transition_time="x")
            for c in node.conditions
        ),
        NodeCondition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
    )
    return replace(
        node,
        resource_version=node.resource_version + "9",
        annotations=annotations,
        addresses=(*node.addresses, ("ExternalIP", "198.51.100.99")),
        conditions=conditions,
    )


def _without_versions(plan: Plan) -> Plan:
    """The plan but for the versions writes are guarded by, and the words that say how
    long ago stale nodes checked in (display: a heartbeat moves them)."""
    return dataclasses.replace(
        plan,
        nodes=tuple(replace(n, resource_version="") for n in plan.nodes),
        observed={name: (uid, "") for name, (uid, _rv) in plan.observed.items()},
        leaders=tuple(
            dataclasses.replace(
                p,
                unknown=re.sub(r"\d+ s\b", "N s", p.unknown),
                not_ready=tuple(re.sub(r"\d+ s\b", "N s", n) for n in p.not_ready),
                silent_for=None if p.silent_for is None else 0,
            )
            for p in plan.leaders
        ),
    )


@PROPERTY_SETTINGS
@given(topo=topologies(), objects=live_nodes(), step=st.sampled_from((1, 3, -2, 30)))
def test_what_the_fingerprint_leaves_out_never_changes_a_plan(
    topo: Topology, objects: list[dict[str, Any]], step: int
) -> None:
    states = states_of(objects)
    changed = [_unread_change(s, step) for s in states]
    for before, after in zip(states, changed, strict=True):
        assert fingerprint(before) == fingerprint(after)
        assert is_fresh(before, NOW) == is_fresh(after, NOW)
    planned = Planner(topo, states, NOW).plan_all()
    assert _without_versions(planned) == _without_versions(Planner(topo, changed, NOW).plan_all())
    updated = Planner(topo, states, NOW).updated(changed, at=NOW).plan_all()
    assert _without_versions(updated) == _without_versions(planned)


def test_what_the_planner_reads_moves_the_fingerprint() -> None:
    node = state(
        "n1",
        labels={"pool": "a"},
        annotations={keys.KILO_LOCATION: "x", keys.KILO_LAST_SEEN: str(SEEN)},
    )
    base = fingerprint(node)
    assert fingerprint(replace(node, labels={"pool": "b"})) != base
    assert fingerprint(replace(node, annotations={keys.KILO_LOCATION: "y"})) != base
    assert fingerprint(replace(node, pod_cidr="10.244.9.0/24")) != base
    agent = NodeCondition(keys.CONDITION_AGENT, "False", "RouteConflict", "table 254")
    assert fingerprint(replace(node, conditions=(agent,))) != base
    assert fingerprint(replace(node, uid="other")) != base


def test_freshness_is_kilos_sixty_seconds() -> None:
    node = state("n1", annotations={keys.KILO_LAST_SEEN: str(SEEN)})
    assert fresh_until(node) == SEEN + 60
    assert is_fresh(node, SEEN + 59) and not is_fresh(node, SEEN + 60)
    assert fresh_until(state("n2")) is None and not is_fresh(state("n2"), SEEN)
    assert last_seen(state("n3", annotations={keys.KILO_LAST_SEEN: "soon"})) is None
