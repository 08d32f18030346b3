"""The plan use case: the topology against the cluster's nodes, and, for sites that delete
unreachable nodes, what to do about the dead ones (probed over about a minute when a
prober is given). ``topoctl plan`` calls it; apply plans through it too."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from reconciler.core.kilo.freshness import Reference, TimeSource
from reconciler.core.lifecycle.planned import lifecycle_plan
from reconciler.core.lifecycle.probes import ProbeHistory, ProbeSchedule, addresses_to_probe
from reconciler.core.lifecycle.record import DeletionRecord
from reconciler.core.lifecycle.rules import Observations
from reconciler.core.planning.deltas import desired_changes
from reconciler.core.planning.plan import DesiredDelta, Plan
from reconciler.core.planning.planner import Planner
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology
from reconciler.ports import Clock, ClusterReader, Prober


@dataclass(frozen=True)
class PlanResult:
    """A plan, the nodes it was computed from, and what a change to git alters."""

    plan: Plan
    nodes: dict[str, NodeState]
    deltas: tuple[DesiredDelta, ...] = ()


@dataclass(frozen=True)
class Eyes:
    """How a plan looks at dead nodes: a clock, and a prober (None: candidates are
    named but not probed, so nothing is deleted)."""

    clock: Clock
    prober: Prober | None = None
    schedule: ProbeSchedule = field(default_factory=ProbeSchedule)
    stop: threading.Event = field(default_factory=threading.Event)
    record: Callable[[], DeletionRecord] | None = None  # the hourly budget's record
    leases: Callable[[], Mapping[str, datetime]] | None = None  # node Lease renewals

    @property
    def rounds(self) -> int:
        """Rounds enough for a silent verdict: ``min_probes``, spread over ``min_span``."""
        spread = math.ceil(self.schedule.min_span / self.schedule.interval) + 1
        return max(self.schedule.min_probes, spread)


def observe(eyes: Eyes, nodes: Sequence[NodeState]) -> Observations:
    """Probe every node's addresses over enough rounds for a verdict (about a minute),
    or not at all without a prober."""
    if eyes.prober is None:
        return Observations(now=eyes.clock.wall())
    history = ProbeHistory(eyes.schedule)
    targets = addresses_to_probe(nodes)
    for i in range(eyes.rounds):
        if i:
            eyes.clock.wait(eyes.stop, eyes.schedule.interval.total_seconds())
        if eyes.stop.is_set():
            break
        history = history.add(eyes.prober.probe(targets), eyes.clock.wall())
    return Observations(
        now=eyes.clock.wall(),
        probes=history.nodes(nodes),
        leases=eyes.leases() if eyes.leases is not None else {},
        record=eyes.record() if eyes.record is not None else DeletionRecord(),
    )


def plan_once(
    topology: Topology,
    reader: ClusterReader,
    base: Topology | None = None,
    now: Reference | None = None,
    eyes: Eyes | None = None,
) -> PlanResult:
    """Plan ``topology`` against the cluster, judging Kilo's freshness at ``now`` (None:
    the nodes' median check-in); with ``base``, also what changed since; with ``eyes``,
    also which dead nodes to delete."""
    nodes = reader.list_nodes()
    at, source = (now.at, now.source) if now is not None else (None, TimeSource.CLOCK)
    plan = Planner(topology, nodes, at, source).plan_all()
    if eyes is not None:
        live = {n.name: n for n in nodes}
        seen = observe(eyes, nodes)
        decided = lifecycle_plan(topology, plan, live, seen, probed=eyes.prober is not None)
        plan = replace(plan, lifecycle=decided)
    deltas = tuple(desired_changes(base, topology, nodes, plan.now)) if base is not None else ()
    return PlanResult(plan, {n.name: n for n in nodes}, deltas)
