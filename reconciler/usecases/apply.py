"""The apply use case: plan and write (``topoctl apply DIR``), or write a saved plan exactly
(``topoctl apply PLAN``); then delete the dead nodes the plan names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from reconciler.core.kilo.freshness import Reference, TimeSource
from reconciler.core.lifecycle.planned import lifecycle_plan
from reconciler.core.planning.plan import Plan
from reconciler.core.planning.planner import Planner
from reconciler.model.topology import Topology
from reconciler.ports import ClusterBackend, NodeDeleter
from reconciler.usecases import executor
from reconciler.usecases.plan import Eyes, observe


@dataclass(frozen=True)
class ApplyResult:
    """What an apply planned and, unless it was declined or had errors, did."""

    plan: Plan
    report: executor.ApplyReport | None  # None: nothing was applied


Confirm = Callable[[Plan], bool]


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
    now: Reference | None = None,
) -> ApplyResult:
    """Plan (Kilo's freshness judged at ``now``; None: the nodes' median check-in) and
    apply; a 409 re-reads the node and re-plans its site. With ``eyes`` and
    ``deletion``, dead nodes the plan names are deleted too."""
    nodes = cluster.list_nodes()
    at, source = (now.at, now.source) if now is not None else (None, TimeSource.CLOCK)
    planner = Planner(topology, nodes, at, source)
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
