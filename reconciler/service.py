"""The use cases, with typed results: what the CLI (and the controller) call.

The CLI parses flags, wires adapters and prints; everything between reading the nodes
and writing them is here, through the ports, so every caller plans and applies the
same way.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from reconciler import apply as executor
from reconciler.core.lifecycle.planned import lifecycle_plan
from reconciler.core.lifecycle.probes import ProbeHistory, ProbeSchedule, addresses_to_probe
from reconciler.core.lifecycle.record import DeletionRecord
from reconciler.core.lifecycle.rules import Observations
from reconciler.core.planning.deltas import desired_changes
from reconciler.core.planning.plan import DesiredDelta, Plan
from reconciler.core.planning.planner import Planner
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology
from reconciler.ports import Clock, ClusterBackend, ClusterReader, NodeDeleter, NodeExporter, Prober


@dataclass(frozen=True)
class PlanResult:
    """A plan, the nodes it was computed from, and what a change to git alters."""

    plan: Plan
    nodes: dict[str, NodeState]
    deltas: tuple[DesiredDelta, ...] = ()


@dataclass(frozen=True)
class ApplyResult:
    """What an apply planned and, unless it was declined or had errors, did."""

    plan: Plan
    report: executor.ApplyReport | None  # None: nothing was applied


Confirm = Callable[[Plan], bool]


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
    now: int | None = None,
    eyes: Eyes | None = None,
) -> PlanResult:
    """Plan ``topology`` against the cluster; with ``base``, also what changed since;
    with ``eyes``, also which dead nodes to delete."""
    nodes = reader.list_nodes()
    plan = Planner(topology, nodes, now).plan_all()
    if eyes is not None:
        live = {n.name: n for n in nodes}
        seen = observe(eyes, nodes)
        decided = lifecycle_plan(topology, plan, live, seen, probed=eyes.prober is not None)
        plan = replace(plan, lifecycle=decided)
    deltas = tuple(desired_changes(base, topology, nodes)) if base is not None else ()
    return PlanResult(plan, {n.name: n for n in nodes}, deltas)


@dataclass(frozen=True)
class DeletionPorts:
    """How an apply deletes the dead nodes its plan names."""

    deleter: NodeDeleter
    before: executor.BeforeDelete | None = None  # the budget record, the Event


def apply_once(
    topology: Topology,
    cluster: ClusterBackend,
    confirm: Confirm,
    parallel: int = 4,
    eyes: Eyes | None = None,
    deletion: DeletionPorts | None = None,
) -> ApplyResult:
    """Plan and apply; a 409 re-reads the node and re-plans its site. With ``eyes`` and
    ``deletion``, dead nodes the plan names are deleted too."""
    nodes = cluster.list_nodes()
    planner = Planner(topology, nodes)
    plan = planner.plan_all()
    if eyes is not None:
        seen = observe(eyes, nodes)
        decided = lifecycle_plan(
            topology, plan, planner.nodes, seen, probed=eyes.prober is not None
        )
        plan = replace(plan, lifecycle=decided)
    if plan.errors or not plan.has_changes or not confirm(plan):
        return ApplyResult(plan, None)
    report = executor.apply_plan(
        _sparing(plan), planner.nodes, cluster, cluster, executor.replanner(planner), parallel
    )
    return ApplyResult(plan, _delete(plan, deletion, report))


def apply_saved(
    plan: Plan,
    cluster: ClusterBackend,
    confirm: Confirm,
    parallel: int = 4,
    deletion: DeletionPorts | None = None,
) -> ApplyResult:
    """Apply a saved plan exactly; raises StalePlanError once its state has moved."""
    nodes = cluster.list_nodes()
    executor.check_fresh(plan, nodes)
    if plan.errors or not plan.has_changes or not confirm(plan):
        return ApplyResult(plan, None)
    live = {n.name: n for n in nodes}
    report = executor.apply_plan(_sparing(plan), live, cluster, cluster, None, parallel)
    return ApplyResult(plan, _delete(plan, deletion, report))


def _sparing(plan: Plan) -> Plan:
    """The plan without writes to the nodes it deletes: a write would move the
    resourceVersion the DELETE is conditioned on, and the node is going anyway."""
    going = {d.node for d in plan.deletions}
    if not going:
        return plan
    return replace(plan, nodes=tuple(n for n in plan.nodes if n.node not in going))


def _delete(
    plan: Plan, deletion: DeletionPorts | None, report: executor.ApplyReport
) -> executor.ApplyReport:
    """The plan's deletions, after its writes; without a deleter they are reported kept."""
    if deletion is None:
        for d in plan.deletions:
            report.kept[d.node] = "this backend cannot delete nodes"
        return report
    return executor.delete_dead(plan.deletions, deletion.deleter, deletion.before, report)


def snapshot(exporter: NodeExporter) -> dict[str, Any]:
    """The cluster's nodes as one List, as ``kubectl get nodes -o yaml`` prints it."""
    items = [dict(n) for n in exporter.export_nodes()]
    for item in items:
        item.setdefault("apiVersion", "v1")
        item.setdefault("kind", "Node")
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
