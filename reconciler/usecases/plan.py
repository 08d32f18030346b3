"""The plan use case: the topology against the cluster's nodes, and, for sites that delete
unreachable nodes, what to do about the dead ones (probed for about a minute when the
eyes have a prober). ``topoctl plan`` calls it; ``topoctl apply`` plans through it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from reconciler.core.kilo.freshness import Reference, TimeSource
from reconciler.core.planning.deltas import desired_changes
from reconciler.core.planning.plan import DesiredDelta, Plan
from reconciler.core.planning.planner import Planner
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology
from reconciler.ports import ClusterReader
from reconciler.usecases.lifecycle import Eyes, Lifecycle


@dataclass(frozen=True)
class PlanResult:
    """A plan, the nodes it was computed from, and what a change to git alters."""

    plan: Plan
    nodes: dict[str, NodeState]
    deltas: tuple[DesiredDelta, ...] = ()


def plan_nodes(
    topology: Topology,
    nodes: Iterable[NodeState],
    now: Reference | None = None,
    eyes: Eyes | None = None,
) -> tuple[Planner, Plan]:
    """The planner for ``nodes`` and its plan, Kilo's freshness judged at ``now`` (None:
    the nodes' median check-in); with ``eyes``, the plan's lifecycle part too (the dead
    nodes looked at first: about a minute with a prober)."""
    at, source = (now.at, now.source) if now is not None else (None, TimeSource.CLOCK)
    planner = Planner(topology, nodes, at, source)
    plan = planner.plan_all()
    if eyes is not None:
        lifecycle = Lifecycle(eyes)
        lifecycle.observe(planner.nodes.values())
        plan = replace(plan, lifecycle=lifecycle.decide(topology, plan, planner.nodes))
    return planner, plan


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
    planner, plan = plan_nodes(topology, nodes, now, eyes)
    deltas = tuple(desired_changes(base, topology, nodes, plan.now)) if base is not None else ()
    return PlanResult(plan, dict(planner.nodes), deltas)
