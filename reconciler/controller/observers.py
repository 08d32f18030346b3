"""What hears the reconcile loop besides the status: the metrics, and a fan-out to both."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from reconciler.controller.guard import WriteStats
from reconciler.controller.informer import InformerStats
from reconciler.controller.metrics import Metrics
from reconciler.controller.status import drift
from reconciler.controller.suspension import SuspensionView
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

    def site_planned(
        self,
        plan: SitePlan,
        planner: Planner,
        revision: str,
        error: str,
        writes: Sequence[NodeWrite],
        flapping: Sequence[str],
    ) -> None:
        for o in self.observers:
            o.site_planned(plan, planner, revision, error, writes, flapping)

    def full_planned(self, plan: Plan, planner: Planner, revision: str) -> None:
        for o in self.observers:
            o.full_planned(plan, planner, revision)

    def reconciled(self, result: str, seconds: float) -> None:
        for o in self.observers:
            o.reconciled(result, seconds)

    def idle(self) -> None:
        for o in self.observers:
            o.idle()


class MetricsObserver:
    """Per-site gauges from each site's plan, the reconcile counters, and the write and
    watch-restart counters taken from the writer's and the informer's own."""

    def __init__(
        self,
        metrics: Metrics,
        informer: InformerStats,
        writes: WriteStats,
        suspension: SuspensionView | None = None,
    ) -> None:
        self.suspension = suspension
        self.metrics = metrics
        self.informer = informer
        self.writes = writes
        self._restarts = 0
        self._lists = 0
        self._sent = 0

    def site_planned(
        self,
        plan: SitePlan,
        planner: Planner,
        revision: str,
        error: str,
        writes: Sequence[NodeWrite],
        flapping: Sequence[str],
    ) -> None:
        ready = 0
        for name in plan.members:
            node = planner.nodes.get(name)
            condition = node.condition(keys.CONDITION_AGENT) if node is not None else None
            ready += condition is not None and condition.status == "True"
        states = {"member": len(plan.members), "pending": len(plan.pending)}
        conflicts = sum(len(n.conflicts) for n in plan.nodes)
        self.metrics.site(plan.site, states, conflicts, ready, len(flapping))
        held = Counter(c.writer for n in plan.nodes for c in n.conflicts if c.writer)
        self.metrics.held(plan.site, held)
        suspended = self.suspension is not None and self.suspension.covers(plan.site)
        self.metrics.drift.labels(plan.site).set(len(drift(plan)) if suspended else 0)

    def full_planned(self, plan: Plan, planner: Planner, revision: str) -> None:
        self.metrics.keep_sites(plan.sites)
        self.metrics.nodes.labels("", "unassigned").set(len(plan.unassigned))

    def reconciled(self, result: str, seconds: float) -> None:
        label = {"ok": "success", "suspended": "suspended"}.get(result, "error")
        self.metrics.reconcile_total.labels(label).inc()
        self.metrics.reconcile_duration.observe(seconds)

    def idle(self) -> None:
        restarts = self.informer.watch_restarts
        if restarts > self._restarts:
            self.metrics.watch_restarts.inc(restarts - self._restarts)
            self._restarts = restarts
        lists = self.informer.lists
        if lists > self._lists:
            self.metrics.node_lists.inc(lists - self._lists)
            self._lists = lists
        self.metrics.watch_backoff.set(self.informer.backoff)
        sent = self.writes.node_writes  # requests sent (a dry run sends none)
        if sent > self._sent:
            self.metrics.node_writes.inc(sent - self._sent)
            self._sent = sent
