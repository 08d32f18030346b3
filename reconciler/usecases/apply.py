"""The apply use case: plan and write (``topoctl apply DIR``), or write a saved plan exactly
(``topoctl apply PLAN``); then delete the dead nodes the plan names, through the
deletion protocol (:mod:`.deletion`). The controller writes each site's plan through
:func:`write_plan` too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from reconciler.core.kilo.freshness import Reference
from reconciler.core.planning.plan import Plan
from reconciler.core.planning.planner import Planner
from reconciler.model.topology import Topology
from reconciler.ports import ClusterBackend, ClusterReader, ClusterWriter
from reconciler.usecases import executor
from reconciler.usecases.deletion import DeletionPorts, delete_dead
from reconciler.usecases.lifecycle import Eyes
from reconciler.usecases.plan import plan_nodes


@dataclass(frozen=True)
class ApplyResult:
    """What an apply planned and, unless it was declined or had errors, did."""

    plan: Plan
    report: executor.ApplyReport | None  # None: nothing was applied


Confirm = Callable[[Plan], bool]


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
    planner, plan = plan_nodes(topology, cluster.list_nodes(), now, eyes)
    if plan.errors or not plan.has_changes or not confirm(plan):
        return ApplyResult(plan, None)
    report = write_plan(plan, planner, cluster, cluster, parallel)
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


def write_plan(
    plan: Plan,
    planner: Planner,
    reader: ClusterReader,
    writer: ClusterWriter,
    parallel: int = 4,
    hold: executor.Hold | None = None,
) -> executor.ApplyReport:
    """Write ``plan`` against the nodes ``planner`` planned it from: one guarded patch a
    node, a 409 re-planned through the same planner (``topoctl apply`` and the
    controller's reconcile of a site alike). Nodes the plan deletes get no writes. With
    ``hold`` (the controller's), each node plan loses what must wait just before it is
    written."""
    return executor.apply_plan(
        _sparing(plan),
        planner.nodes,
        reader,
        writer,
        executor.replanner(planner),
        parallel,
        hold,
    )


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
    return delete_dead(plan.deletions, deletion, report)
