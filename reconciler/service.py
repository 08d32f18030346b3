"""The use cases, with typed results: what the CLI (and the controller) call.

The CLI parses flags, wires adapters and prints; everything between reading the nodes
and writing them is here, through the ports, so every caller plans and applies the
same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler import apply as executor
from reconciler.core.load import Topology
from reconciler.core.plan import DesiredDelta, Plan
from reconciler.core.planner import Planner, desired_changes
from reconciler.model.state import NodeState
from reconciler.ports import ClusterReader, ClusterWriter, NodeExporter


class Cluster(ClusterReader, ClusterWriter, Protocol):
    """A cluster that is read and written through one backend."""


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


def plan_once(
    topology: Topology,
    reader: ClusterReader,
    base: Topology | None = None,
    now: int | None = None,
) -> PlanResult:
    """Plan ``topology`` against the cluster; with ``base``, also what changed since."""
    nodes = reader.list_nodes()
    plan = Planner(topology, nodes, now).plan_all()
    deltas = tuple(desired_changes(base, topology, nodes)) if base is not None else ()
    return PlanResult(plan, {n.name: n for n in nodes}, deltas)


def apply_once(
    topology: Topology, cluster: Cluster, confirm: Confirm, parallel: int = 4
) -> ApplyResult:
    """Plan and apply; a 409 re-reads the node and re-plans its site."""
    nodes = cluster.list_nodes()
    planner = Planner(topology, nodes)
    plan = planner.plan_all()
    if plan.errors or not plan.has_changes or not confirm(plan):
        return ApplyResult(plan, None)
    report = executor.apply_plan(
        plan, planner.nodes, cluster, cluster, executor.replanner(planner), parallel
    )
    return ApplyResult(plan, report)


def apply_saved(plan: Plan, cluster: Cluster, confirm: Confirm, parallel: int = 4) -> ApplyResult:
    """Apply a saved plan exactly; raises StalePlanError once its state has moved."""
    nodes = cluster.list_nodes()
    executor.check_fresh(plan, nodes)
    if plan.errors or not plan.has_changes or not confirm(plan):
        return ApplyResult(plan, None)
    live = {n.name: n for n in nodes}
    return ApplyResult(plan, executor.apply_plan(plan, live, cluster, cluster, None, parallel))


def snapshot(exporter: NodeExporter) -> dict[str, Any]:
    """The cluster's nodes as one List, as ``kubectl get nodes -o yaml`` prints it."""
    items = [dict(n) for n in exporter.export_nodes()]
    for item in items:
        item.setdefault("apiVersion", "v1")
        item.setdefault("kind", "Node")
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
