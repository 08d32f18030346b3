"""The one planner: every entry point gives the same answer, and the leader it predicts
is what ``find_leader`` says of the nodes as ``project`` leaves them.

Generated topologies and clusters come from the strategies of test_plan.py.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.kilo.leader import find_leader
from reconciler.core.kilo.node import kilo_location, kilo_node
from reconciler.core.planning.planner import Planner
from reconciler.core.planning.project import project
from reconciler.model import keys
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology
from tests.core.test_plan import (
    PROPERTY_SETTINGS,
    live_nodes,
    states_of,
    topologies,
    topology,
)


@st.composite
def with_granularity(draw: st.DrawFn) -> Topology:
    """A generated topology under one of Kilo's granularities."""
    topo = draw(topologies())
    granularity = draw(st.sampled_from(("location", "location", "full", "cross")))
    return topology(*topo.sites, mesh={"granularity": granularity})


@PROPERTY_SETTINGS
@given(topo=with_granularity(), objects=live_nodes())
def test_plan_site_is_the_matching_part_of_plan_all(
    topo: Topology, objects: list[dict[str, Any]]
) -> None:
    planner = Planner(topo, states_of(objects))
    whole = planner.plan_all()
    leaders = {p.site: p for p in whole.leaders}
    for site in topo.sites:
        part = planner.plan_site(site.name)
        assert part.nodes == tuple(n for n in whole.nodes if n.site == site.name)
        assert part.leader == leaders.get(site.name)
        assert set(part.errors) <= set(whole.errors)
        assert set(part.warnings) <= set(whole.warnings)
        for node in part.nodes:
            assert planner.plan_node(node.node) == node


@PROPERTY_SETTINGS
@given(topo=with_granularity(), objects=live_nodes())
def test_the_site_plans_assembled_are_plan_all(
    topo: Topology, objects: list[dict[str, Any]]
) -> None:
    """The controller plans each site once, in its own reconcile, and assembles them."""
    planner = Planner(topo, states_of(objects))
    separately = [planner.plan_site(site.name) for site in topo.sites]
    assert planner.assemble(separately) == planner.plan_all()


@PROPERTY_SETTINGS
@given(topo=topologies(), objects=live_nodes())
def test_predicted_leader_is_find_leader_over_the_projected_nodes(
    topo: Topology, objects: list[dict[str, Any]]
) -> None:
    states = states_of(objects)
    plan = Planner(topo, states).plan_all()
    if plan.errors:
        return  # apply refuses a plan with errors: there is no "after" to predict
    plans = {n.node: n for n in plan.nodes}
    after = [project(s, plans[s.name]) if s.name in plans else s for s in states]
    at = plan.now.at
    for prediction in plan.leaders:
        if prediction.unknown:
            assert prediction.predicted is None
            continue
        here = [kilo_node(n, at) for n in after if kilo_location(n) == prediction.site]
        expected = find_leader(here)
        assert prediction.predicted == (expected.name if expected else None), prediction
        assert prediction.predicted_internal_ip == (expected.internal_ip if expected else None)


def _moved(node: NodeState, variant: int) -> NodeState:
    """The node after someone else wrote it: a label, a Kilo key, or nothing Kilo reads."""
    annotations, labels = dict(node.annotations), dict(node.labels)
    if variant == 0:
        labels["pool"] = "b" if labels.get("pool") != "b" else "a"
    elif variant == 1:
        annotations[keys.KILO_LEADER] = "true"
    elif variant == 2:
        annotations[keys.KILO_LOCATION] = "c"
    else:
        annotations[keys.KILO_LAST_SEEN] = "1"
    return NodeState(
        name=node.name,
        uid=node.uid,
        resource_version=node.resource_version + "1",
        labels=labels,
        annotations=annotations,
        taints=node.taints,
        conditions=node.conditions,
        addresses=node.addresses,
        pod_cidr=node.pod_cidr,
    )


@PROPERTY_SETTINGS
@given(
    topo=with_granularity(),
    objects=live_nodes(),
    which=st.integers(0, 100),
    variant=st.integers(0, 3),
    drop=st.booleans(),
)
def test_an_updated_planner_plans_as_a_fresh_one(
    topo: Topology, objects: list[dict[str, Any]], which: int, variant: int, drop: bool
) -> None:
    """The incremental index (409 re-plans, watch events) never drifts from a rebuild."""
    states = states_of(objects)
    target = states[which % len(states)]
    if drop:
        rest = [s for s in states if s.name != target.name]
        updated = Planner(topo, states).updated(gone=[target.name])
    else:
        fresh = _moved(target, variant)
        rest = [fresh if s.name == target.name else s for s in states]
        updated = Planner(topo, states).updated([fresh])
    assert updated.plan_all() == Planner(topo, rest).plan_all()
