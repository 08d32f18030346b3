"""Kilo going silent is not a leader change: over a fake clock, the example cluster's
Kilo agents stop checking in (all at once, or each on its own 30 s phase), one runs
ahead, one's ``last-seen`` is forged, or the leader alone dies; every second a plan is
made on the controller's clock and applied, as the controller would.

hetzner-fsn1 is watched: fsn1-gw-1 (10.10.0.2) is its pinned leader, the workers route
172.31.0.0/16 via the leader, and Kilo's next choice is fsn1-worker-7kq2p (10.10.0.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from msgspec.structs import replace

from reconciler.core.kilo.freshness import CLOCK_SKEW_SECONDS, Silence, silence
from reconciler.core.planning import savedplan
from reconciler.core.planning.plan import Plan
from reconciler.core.planning.planner import Planner
from reconciler.core.planning.project import project
from reconciler.core.rendering import plans
from reconciler.model import keys
from reconciler.model.settings import AgentSettings
from reconciler.model.state import NodeState
from tests.controller.loop_support import EXAMPLE_SEEN, example_topology
from tests.core.test_kilo_time import example_nodes
from tests.core.test_plan import state

SITE = "hetzner-fsn1"
LEADER, NEXT, LAST = "fsn1-gw-1", "fsn1-worker-7kq2p", "fsn1-worker-x9m4t"
GATEWAY = {LEADER: "10.10.0.2", NEXT: "10.10.0.3", LAST: "10.10.0.4"}
VIA_LEADER = "172.31.0.0/16"
START = EXAMPLE_SEEN  # Kilo's agents run until STOP, each on its own phase
STOP = START + 100
TOPOLOGY = example_topology()
# What kg writes on its node, and removes when it stops cleanly (pkg/k8s/backend.go CleanUp).
KG = (keys.KILO_KEY, keys.KILO_ENDPOINT, keys.KILO_INTERNAL_IP, keys.KILO_LAST_SEEN)


@dataclass
class Kilo:
    """When each node's agent checks in: every 30 s from its phase, until it stops;
    ``ahead`` seconds added by a clock that runs ahead; ``forged`` last-seen values."""

    phases: Mapping[str, int]
    stops: Mapping[str, int] = field(default_factory=dict)  # node -> when its agent stops
    ahead: Mapping[str, int] = field(default_factory=dict)
    forged: Mapping[str, int] = field(default_factory=dict)
    # node -> (from, to): its agent stopped cleanly (SIGTERM) and started again at `to`
    clean: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def cleaned(self, name: str, now: int) -> bool:
        """Whether the node's agent removed its annotations, as kg does when it stops."""
        start, end = self.clean.get(name, (now + 1, now + 1))
        return start <= now < end

    def last_seen(self, name: str, now: int) -> int:
        if name in self.forged:
            return self.forged[name]
        until = min(now, self.stops.get(name, now))
        phase = self.phases.get(name, 0)
        checked = START + phase + (until - START - phase) // 30 * 30
        return checked + self.ahead.get(name, 0)


@dataclass
class Step:
    at: int
    plan: Plan
    gateways: dict[str, str | None]  # each non-leader's gateway to 172.31.0.0/16


def run(kilo: Kilo, until: int, start: int = START + 61) -> list[Step]:
    """Plan every second from ``start`` to ``until`` on the controller's clock, and apply
    each plan to the nodes (topoctl's writes; Kilo's check-ins as ``kilo`` says)."""
    nodes = {n.name: n for n in converged()}
    kilos = {name: {k: v for k, v in n.annotations.items() if k in KG} for name, n in nodes.items()}
    steps = []
    for now in range(start, until + 1):
        for name, node in nodes.items():
            notes = {k: v for k, v in node.annotations.items() if k not in KG}
            if not kilo.cleaned(name, now):
                seen = str(kilo.last_seen(name, now))
                notes.update({**kilos[name], keys.KILO_LAST_SEEN: seen})
            nodes[name] = replace(node, annotations=notes)
        plan = Planner(TOPOLOGY, nodes.values(), now).plan_all()
        for node_plan in plan.writes:
            nodes[node_plan.node] = project(nodes[node_plan.node], node_plan)
        steps.append(Step(now, plan, gateways(nodes)))
    return steps


def converged() -> list[NodeState]:
    """The example cluster as the controller leaves it while Kilo runs."""
    nodes = example_nodes()
    plan = Planner(TOPOLOGY, nodes).plan_all()
    written = {n.node: n for n in plan.writes}
    return [project(n, written[n.name]) if n.name in written else n for n in nodes]


def gateways(nodes: Mapping[str, NodeState]) -> dict[str, str | None]:
    out = {}
    for name in (LEADER, NEXT, LAST):
        settings = AgentSettings.from_annotation(nodes[name].annotations[keys.TOPOCTL_AGENT])[0]
        out[name] = next((r.via for r in settings.routes if r.to == VIA_LEADER), None)
    return out


def predicted(step: Step) -> str | None:
    return next(p.predicted for p in step.plan.leaders if p.site == SITE)


def agent_writes(step: Step) -> list[str]:
    """The nodes whose published agent settings (routes) a plan changes."""
    return [n.node for n in step.plan.writes for c in n.writes if c.key == keys.TOPOCTL_AGENT]


AS_PUBLISHED = {LEADER: None, NEXT: GATEWAY[LEADER], LAST: GATEWAY[LEADER]}
PHASES = {LEADER: 0, NEXT: 10, LAST: 20}  # the leader's check-in runs out first


def test_while_kilo_runs_the_leader_and_its_routes_stand() -> None:
    steps = run(Kilo(PHASES), STOP + 200)
    assert {predicted(s) for s in steps} == {LEADER}
    assert all(s.gateways == AS_PUBLISHED and not agent_writes(s) for s in steps)


@pytest.mark.parametrize(
    "phases",
    [
        pytest.param({LEADER: 0, NEXT: 0, LAST: 0}, id="all at once"),
        pytest.param(PHASES, id="one by one, the leader first"),
        pytest.param({LEADER: 20, NEXT: 0, LAST: 10}, id="one by one, the leader last"),
        pytest.param({LEADER: 29, NEXT: 0, LAST: 1}, id="one by one, a second apart"),
    ],
)
def test_kilo_going_silent_withdraws_nothing_and_moves_no_route(phases: dict[str, int]) -> None:
    """Every agent stops at STOP; their check-ins run out one at a time. Kilo's leader
    was fsn1-gw-1 and no agent is left to elect another: no plan predicts one, and the
    routes via fsn1-gw-1 stand, written by no plan."""
    stops = dict.fromkeys(phases, STOP)
    steps = run(Kilo(phases, stops), STOP + 300)
    assert {predicted(s) for s in steps} <= {LEADER, None}
    for step in steps:
        assert step.gateways == AS_PUBLISHED, (step.at - STOP, step.gateways)
        assert agent_writes(step) == [], step.at - STOP


def test_the_leader_dying_alone_is_a_leader_change_kilo_makes_and_routes_follow() -> None:
    """fsn1-gw-1's agent stops; the others go on checking in. Kilo counts it not Ready
    from the second its last check-in is 60 s old, and elects fsn1-worker-7kq2p: so does
    the plan at that very second, and the routes go via the new leader."""
    kilo = Kilo(PHASES, {LEADER: STOP})
    stale_from = kilo.last_seen(LEADER, STOP) + 60
    steps = run(kilo, STOP + 200)
    for step in steps:
        if step.at < stale_from:
            assert predicted(step) == LEADER and step.gateways == AS_PUBLISHED, step.at
        else:
            assert predicted(step) == NEXT, step.at - stale_from
            assert step.gateways == {LEADER: GATEWAY[NEXT], NEXT: None, LAST: GATEWAY[NEXT]}
    moved = [s for s in steps if agent_writes(s)]
    assert [s.at for s in moved] == [stale_from]  # once, when Kilo moves


@pytest.mark.parametrize(
    ("phases", "ahead"),
    [
        # The worst case: the leader checked in 29 s before the agents stopped, the node
        # ahead at the very end.
        pytest.param({LEADER: 11, NEXT: 10, LAST: 20}, {NEXT: CLOCK_SKEW_SECONDS}, id="5 s"),
        pytest.param({LEADER: 0, NEXT: 10, LAST: 20}, {LAST: 3}, id="3 s"),
    ],
)
def test_a_clock_a_little_ahead_moves_no_route_while_kilo_is_silent(
    phases: dict[str, int], ahead: dict[str, int]
) -> None:
    steps = run(Kilo(phases, dict.fromkeys(phases, STOP), ahead), STOP + 150)
    assert {predicted(s) for s in steps} <= {LEADER, None}
    assert all(s.gateways == AS_PUBLISHED and not agent_writes(s) for s in steps)


@pytest.mark.parametrize(
    "kilo",
    [
        pytest.param(Kilo(PHASES, dict.fromkeys(PHASES, STOP), forged={LAST: 10**10}), id="forged"),
        pytest.param(
            Kilo(PHASES, dict.fromkeys(PHASES, STOP), ahead={NEXT: 300}), id="5 min ahead"
        ),
    ],
)
def test_a_check_in_far_ahead_is_no_sign_that_kilo_is_alive(kilo: Kilo) -> None:
    """Kilo counts such a node Ready (its last-seen is in the future), but it says
    nothing of when the location last checked in: the silence is seen as it would be
    without it. (A clock minutes ahead counts again once its last check-in is no longer
    ahead: five minutes after the agents stopped here, beyond this test.)"""
    steps = run(kilo, STOP + 200)
    assert {predicted(s) for s in steps} <= {LEADER, None}
    assert all(s.gateways == AS_PUBLISHED and not agent_writes(s) for s in steps)


def test_while_kilo_runs_a_forged_or_ahead_check_in_changes_no_prediction() -> None:
    for kilo in (Kilo(PHASES, forged={LAST: 10**10}), Kilo(PHASES, ahead={NEXT: 300})):
        steps = run(kilo, STOP + 100)
        assert {predicted(s) for s in steps} == {LEADER}
        assert all(s.gateways == AS_PUBLISHED and not agent_writes(s) for s in steps)


def test_the_plan_says_why_the_leader_is_unknown() -> None:
    steps = run(Kilo(PHASES, dict.fromkeys(PHASES, STOP)), STOP + 95, start=STOP + 95)
    leader = next(p for p in steps[-1].plan.leaders if p.site == SITE)
    assert (leader.current, leader.predicted, leader.changes) == (None, None, False)
    assert leader.silent_for == 95
    assert leader.unknown == (
        "Kilo is silent here: no node has checked in for 95 s, and the check-ins of "
        f"{LEADER}, {NEXT}, {LAST} ran out since: that says nothing of who leads"
    )
    assert leader.not_ready == (
        f"{LEADER}: stale last-seen (105 s ago)",
        f"{NEXT}: stale last-seen (95 s ago)",
        f"{LAST}: stale last-seen (115 s ago)",
    )
    assert leader.held == f"{GATEWAY[LEADER]} ({LEADER})"
    text = plans.text(steps[-1].plan, markup=False)
    assert f"site {SITE}  leader: unknown (Kilo silent for 95 s)" in text
    assert f"routes via the leader stand as last published: via {GATEWAY[LEADER]}" in text


def test_kilo_gone_from_every_node_is_no_leader_change_either() -> None:
    """kg removes its annotations when it stops cleanly (key, endpoint, internal IP,
    last-seen: pkg/k8s/backend.go CleanUp): no node is Ready to Kilo, so no leader can
    be predicted, and nothing topoctl published is withdrawn."""
    gone = (keys.KILO_KEY, keys.KILO_ENDPOINT, keys.KILO_INTERNAL_IP, keys.KILO_LAST_SEEN)
    nodes = [
        replace(n, annotations={k: v for k, v in n.annotations.items() if k not in gone})
        for n in converged()
    ]
    plan = Planner(TOPOLOGY, nodes, STOP + 30).plan_all()
    assert [c for n in plan.writes for c in n.writes if c.key == keys.TOPOCTL_AGENT] == []
    leader = next(p for p in plan.leaders if p.site == SITE)
    assert leader.predicted is None and leader.silent_for is None
    assert leader.unknown.startswith(f"Kilo's agent on {LEADER}, the leader the routes via")
    assert leader.not_ready == (
        f"{LEADER}: no key, never checked in",  # its endpoint is forced by git
        f"{NEXT}: no endpoint, no key, never checked in",
        f"{LAST}: no endpoint, no key, never checked in",
    )
    assert leader.held == f"{GATEWAY[LEADER]} ({LEADER})"


def test_a_node_kilo_cannot_count_is_named_with_its_cause() -> None:
    nodes = {n.name: n for n in converged()}
    seen = str(STOP)
    for name, node in nodes.items():
        nodes[name] = replace(node, annotations={**node.annotations, keys.KILO_LAST_SEEN: seen})
    nodes[LEADER] = replace(nodes[LEADER], pod_cidr="")
    nodes[NEXT] = replace(
        nodes[NEXT], annotations={**nodes[NEXT].annotations, keys.KILO_KEY: "not-a-key"}
    )
    nodes[LAST] = replace(
        nodes[LAST], annotations={**nodes[LAST].annotations, keys.KILO_LAST_SEEN: str(STOP - 75)}
    )
    plan = Planner(TOPOLOGY, nodes.values(), STOP + 5).plan_all()
    leader = next(p for p in plan.leaders if p.site == SITE)
    assert (leader.current, leader.predicted, leader.changes) == (None, None, False)
    assert leader.not_ready == (
        f"{LEADER}: no podCIDR",
        f"{NEXT}: a key that is not a WireGuard key",
        f"{LAST}: stale last-seen (80 s ago)",
    )
    assert [c for n in plan.writes for c in n.writes if c.key == keys.TOPOCTL_AGENT] == []


def test_a_saved_plan_keeps_why_the_leader_is_unknown() -> None:
    steps = run(Kilo(PHASES, dict.fromkeys(PHASES, STOP)), STOP + 95, start=STOP + 95)
    plan = steps[-1].plan
    loaded, _source = savedplan.load(savedplan.dump(plan, {}))
    assert loaded == plan
    assert next(p for p in loaded.leaders if p.site == SITE).not_ready[0].startswith(LEADER)


def test_a_rollout_restarting_the_leaders_agent_moves_no_route() -> None:
    """A DaemonSet rollout: fsn1-gw-1's kg stops cleanly (its key and last-seen gone:
    Kilo's other agents count it not Ready and elect another for the seconds it takes)
    and starts again. topoctl holds the routes via fsn1-gw-1 and says why."""
    kilo = Kilo(PHASES, clean={LEADER: (STOP, STOP + 20)})
    steps = run(kilo, STOP + 120, start=STOP - 5)
    assert {predicted(s) for s in steps} == {LEADER, None}
    assert all(s.gateways == AS_PUBLISHED and not agent_writes(s) for s in steps)
    during = next(p for p in steps[10].plan.leaders if p.site == SITE)
    assert during.unknown.startswith(f"Kilo's agent on {LEADER}, the leader the routes via")
    assert f"{LEADER}: no key, never checked in" in during.not_ready
    assert predicted(steps[-1]) == LEADER


@pytest.mark.parametrize(
    "order",
    [
        pytest.param((LEADER, NEXT, LAST), id="the leader first"),
        pytest.param((NEXT, LAST, LEADER), id="the leader last"),
    ],
)
def test_every_agent_stopping_cleanly_one_after_another_moves_no_route(
    order: tuple[str, ...],
) -> None:
    clean = {name: (STOP + i * 2, STOP + 1000) for i, name in enumerate(order)}
    steps = run(Kilo(PHASES, clean=clean), STOP + 100, start=STOP - 5)
    assert {predicted(s) for s in steps} <= {LEADER, None}
    assert all(s.gateways == AS_PUBLISHED and not agent_writes(s) for s in steps)


def test_a_non_leaders_agent_restarting_changes_nothing() -> None:
    steps = run(Kilo(PHASES, clean={NEXT: (STOP, STOP + 20)}), STOP + 60, start=STOP - 5)
    assert {predicted(s) for s in steps} == {LEADER}
    assert all(s.gateways == AS_PUBLISHED and not agent_writes(s) for s in steps)


def seen(**values: int) -> list[NodeState]:
    return [state(name, annotations={keys.KILO_LAST_SEEN: str(v)}) for name, v in values.items()]


@pytest.mark.parametrize(
    ("nodes", "now", "expected"),
    [
        pytest.param(seen(a=100, b=110), 134, None, id="heard 24 s ago"),
        pytest.param(seen(a=100, b=110), 135, Silence(110, ()), id="silent, none stale yet"),
        pytest.param(seen(a=100, b=110), 160, Silence(110, ("a",)), id="a ran out in it"),
        pytest.param(seen(a=40, b=110), 200, Silence(110, ("b",)), id="a stale before it"),
        pytest.param(seen(a=100, b=160), 140, None, id="a clock a little ahead: heard now"),
        pytest.param(seen(a=100, b=10**10), 160, Silence(100, ("a",)), id="forged: no sign"),
        pytest.param([state("a"), state("b")], 500, Silence(None, ()), id="never checked in"),
    ],
)
def test_silence(nodes: list[NodeState], now: int, expected: Silence | None) -> None:
    assert silence(nodes, now) == expected
