"""What hears the reconcile loop besides the status: the metrics, and a fan-out to both."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from reconciler.controller.informer import InformerStats
from reconciler.controller.metrics import Metrics
from reconciler.core.planning.plan import Plan, SitePlan
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.state import NodeWrite
from reconciler.ports import Observer


class Fanout:
    """One Observer that tells several, in order."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = list(observers)

    def add(self, observer: Observer) -> None:
        """Tell ``observer`` too, from now on."""
        self.observers.append(observer)

    def site_planned(self, plan: SitePlan, planner: Planner, revision: str, error: str) -> None:
        for o in self.observers:
            o.site_planned(plan, planner, revision, error)

    def full_planned(self, plan: Plan, planner: Planner, revision: str) -> None:
        for o in self.observers:
            o.full_planned(plan, planner, revision)

    def node_written(self, write: NodeWrite, revision: str) -> None:
        for o in self.observers:
            o.node_written(write, revision)

    def idle(self) -> None:
        for o in self.observers:
            o.idle()


class MetricsObserver:
    """Per-site gauges from each site's plan, write and watch-restart counters."""

    def __init__(self, metrics: Metrics, informer: InformerStats) -> None:
        self.metrics = metrics
        self.informer = informer
        self._restarts = 0
        self._unassigned: Counter[str] = Counter()

    def site_planned(self, plan: SitePlan, planner: Planner, revision: str, error: str) -> None:
        ready = 0
        for name in plan.members:
            node = planner.nodes.get(name)
            condition = node.condition(keys.CONDITION_AGENT) if node is not None else None
            ready += condition is not None and condition.status == "True"
        states = {"member": len(plan.members), "pending": len(plan.pending)}
        conflicts = sum(len(n.conflicts) for n in plan.nodes)
        self.metrics.site(plan.site, states, conflicts, ready)

    def full_planned(self, plan: Plan, planner: Planner, revision: str) -> None:
        self.metrics.keep_sites(plan.sites)
        self.metrics.nodes.labels("", "unassigned").set(len(plan.unassigned))

    def node_written(self, write: NodeWrite, revision: str) -> None:
        self.metrics.node_writes.inc()

    def idle(self) -> None:
        restarts = self.informer.watch_restarts
        if restarts > self._restarts:
            self.metrics.watch_restarts.inc(restarts - self._restarts)
            self._restarts = restarts


class LifecycleNudge:
    """Tells the lifecycle pass that a site was re-planned (a node's planning inputs, its
    Ready condition among them, changed), so a new NotReady member is probed at once."""

    def __init__(self, nudge: Callable[[], None]) -> None:
        self.nudge = nudge

    def site_planned(self, plan: SitePlan, planner: Planner, revision: str, error: str) -> None:
        self.nudge()

    def full_planned(self, plan: Plan, planner: Planner, revision: str) -> None:
        self.nudge()

    def node_written(self, write: NodeWrite, revision: str) -> None:
        """Its own writes change nothing the lifecycle reads."""

    def idle(self) -> None:
        """Nothing to tell."""
