"""The time Kilo's freshness is judged at: the planner's clock, a snapshot's capture time,
else the median check-in; never the newest ``last-seen``. A node whose clock runs ahead,
or a forged ``last-seen``, changes no other node's freshness and no leader prediction.

Built on the example cluster (examples/nodes.yaml, sites/): three locations, each with a
pinned leader, and hetzner-fsn1 routing 172.31.0.0/16 via its leader.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from msgspec.structs import replace

from reconciler.adapters.snapshot import SnapshotBackend
from reconciler.core.kilo.freshness import (
    NO_TIME,
    Reference,
    TimeSource,
    is_fresh,
    reference,
)
from reconciler.core.planning import savedplan
from reconciler.core.planning.plan import Plan
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.settings import AgentSettings
from reconciler.model.state import NodeState
from tests.controller.loop_support import EXAMPLE_SEEN, example_topology
from tests.core.test_plan import state

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "nodes.yaml"
LEADERS = {"azure-weu": "weu-gw-1", "hetzner-fsn1": "fsn1-gw-1", "onprem-ams1": "ams1-gw-1"}
VIA_LEADER = "172.31.0.0/16"  # hetzner-fsn1's route via the leader (on non-leaders)


def example_nodes(**seen: int) -> list[NodeState]:
    """The example nodes, with the given nodes' ``last-seen`` moved."""
    return [
        replace(node, annotations={**node.annotations, keys.KILO_LAST_SEEN: str(seen[node.name])})
        if node.name in seen
        else node
        for node in SnapshotBackend(EXAMPLES).list_nodes()
    ]


def leaders(plan: Plan) -> dict[str, str | None]:
    return {p.site: p.predicted for p in plan.leaders}


def routes_via_leader(plan: Plan) -> dict[str, str | None]:
    """Each hetzner-fsn1 member's gateway for the route via the leader (None: left out)."""
    out = {}
    for node in plan.nodes:
        if node.site != "hetzner-fsn1":
            continue
        agent = next(c.after for c in node.changes if c.key == keys.TOPOCTL_AGENT)
        routes = AgentSettings.from_annotation(agent)[0].routes
        out[node.node] = next((r.via for r in routes if r.to == VIA_LEADER), None)
    return out


HONEST = Planner(example_topology(), example_nodes()).plan_all()


def test_the_honest_cluster_leads_and_routes_as_pinned() -> None:
    assert leaders(HONEST) == LEADERS
    assert routes_via_leader(HONEST) == {
        "fsn1-gw-1": None,  # the leader does not route via itself
        "fsn1-worker-7kq2p": "10.10.0.2",
        "fsn1-worker-x9m4t": "10.10.0.2",
    }


@pytest.mark.parametrize(
    "ahead",
    [
        pytest.param(60, id="a minute ahead"),
        pytest.param(300, id="five minutes ahead"),
        pytest.param(10**9, id="a forged last-seen decades ahead"),
    ],
)
@pytest.mark.parametrize("node", ["ams1-gw-1", "fsn1-worker-x9m4t", "build-runner-1"])
def test_a_node_ahead_changes_no_prediction_offline(node: str, ahead: int) -> None:
    """Offline (no clock: a snapshot without a capture time), as `plan --cluster` and
    `apply --cluster` plan. Judged at the newest last-seen, one node ahead made every
    other node stale: no leader in two of three sites, every route via the leader gone."""
    nodes = example_nodes(**{node: EXAMPLE_SEEN + ahead})
    plan = Planner(example_topology(), nodes).plan_all()
    assert plan.now == Reference(EXAMPLE_SEEN, TimeSource.MEDIAN)
    assert leaders(plan) == LEADERS
    assert routes_via_leader(plan) == routes_via_leader(HONEST)
    assert plan.nodes == HONEST.nodes


@pytest.mark.parametrize("ahead", [60, 300, 10**9])
def test_a_node_ahead_changes_no_prediction_on_the_controllers_clock(ahead: int) -> None:
    nodes = example_nodes(**{"fsn1-worker-7kq2p": EXAMPLE_SEEN + ahead})
    plan = Planner(example_topology(), nodes, EXAMPLE_SEEN + 5).plan_all()
    assert plan.now == Reference(EXAMPLE_SEEN + 5, TimeSource.CLOCK)
    assert leaders(plan) == LEADERS
    assert plan.nodes == HONEST.nodes


def test_a_node_ahead_is_fresh_itself_as_kilo_counts_it() -> None:
    """Kilo subtracts: ``now - lastSeen < 60 s`` holds for a check-in in the future."""
    ahead = state(annotations={keys.KILO_LAST_SEEN: str(EXAMPLE_SEEN + 300)})
    assert is_fresh(ahead, EXAMPLE_SEEN)
    honest = state("n2", annotations={keys.KILO_LAST_SEEN: str(EXAMPLE_SEEN - 10)})
    assert is_fresh(honest, EXAMPLE_SEEN)


def seen(*values: int | str) -> list[NodeState]:
    return [state(f"n{i}", annotations={keys.KILO_LAST_SEEN: str(v)}) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [
        pytest.param(seen(100), Reference(100, TimeSource.MEDIAN), id="one node"),
        pytest.param(seen(100, 130), Reference(100, TimeSource.MEDIAN), id="lower median"),
        pytest.param(seen(100, 110, 120), Reference(110, TimeSource.MEDIAN), id="odd"),
        pytest.param(seen(100, 10**12), Reference(100, TimeSource.MEDIAN), id="one forged"),
        pytest.param(
            seen(100, 110, 10**12, 10**12), Reference(110, TimeSource.MEDIAN), id="half forged"
        ),
        pytest.param(seen(100, "soon", 90), Reference(90, TimeSource.MEDIAN), id="unreadable"),
        pytest.param([state(), state("n2")], NO_TIME, id="Kilo never ran"),
    ],
)
def test_without_a_clock_the_median_check_in_is_now(
    nodes: list[NodeState], expected: Reference
) -> None:
    assert reference(nodes, None) == expected


def test_a_given_time_wins_and_keeps_its_source() -> None:
    nodes = seen(100, 200)
    assert reference(nodes, 150) == Reference(150, TimeSource.CLOCK)
    assert reference(nodes, 150, TimeSource.CAPTURED) == Reference(150, TimeSource.CAPTURED)


def test_an_updated_planner_keeps_a_given_time_and_derives_a_derived_one() -> None:
    topo, nodes = example_topology(), example_nodes()
    moved = replace(nodes[0], annotations={**nodes[0].annotations, keys.KILO_LAST_SEEN: "7"})
    captured = Planner(topo, nodes, EXAMPLE_SEEN + 9, TimeSource.CAPTURED)
    assert captured.updated([moved]).reference == captured.reference
    assert captured.updated([moved], at=5).reference == Reference(5, TimeSource.CLOCK)
    derived = Planner(topo, nodes)
    assert derived.updated([moved]).reference == Planner(topo, [moved, *nodes[1:]]).reference


def test_a_saved_plan_remembers_when_it_judged_kilo() -> None:
    captured = Planner(example_topology(), example_nodes(), EXAMPLE_SEEN + 9, TimeSource.CAPTURED)
    plan = captured.plan_all()
    loaded, _source = savedplan.load(savedplan.dump(plan, {}))
    assert loaded.now == Reference(EXAMPLE_SEEN + 9, TimeSource.CAPTURED)
    assert loaded == plan
