"""The controller's lifecycle: a round every probe interval, on the lease holder only.

Each round (or sooner when a site was planned again, e.g. for a node's Ready condition,
but never more than one probe round per interval) reads the shared planner: the sites'
latest plans and the cache's nodes (:mod:`reconciler.controller.plans`). One ICMP round
over the nodes' addresses joins the history kept in memory (a restart only restarts the
minute of probes: the NotReady clock is the Ready condition's ``lastTransitionTime``),
the lifecycle use case decides (:mod:`reconciler.usecases.lifecycle`), and the deletion
protocol deletes (:mod:`reconciler.usecases.deletion`: record, Event, DELETE with
preconditions, the budget slot given back when it is not done). ``--dry-run`` logs and
counts what would be deleted. A site ``topoctl suspend`` covers is probed and judged
as any other, and nothing of it is deleted: each deletion it would make is logged and
counted as withheld (reason ``suspended``). A round plans nothing, and costs no probe
while no member of a deleting site is NotReady.

A round that fails (the node Leases cannot be listed, the record cannot be read) deletes
nothing: it is logged in one line, counted (``topoctl_lifecycle_pass_failures_total``)
and reported to ``on_failure`` (the status shows it) until a round succeeds again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from reconciler.controller.metrics import Metrics
from reconciler.controller.plans import PlannedView
from reconciler.core.lifecycle.probes import ProbeSchedule
from reconciler.core.planning.plan import LifecyclePlan
from reconciler.model.suspension import Hold
from reconciler.ports import (
    BackendError,
    Clock,
    EventSink,
    LeaseError,
    NodeDeleter,
    NodeLeases,
    Prober,
)
from reconciler.usecases.deletion import DeletionPorts, delete_dead
from reconciler.usecases.lifecycle import Eyes, Lifecycle
from reconciler.usecases.statusmap import StatusConfigMap

log = logging.getLogger("topoctl.lifecycle")

View = Callable[[], PlannedView | None]  # the shared planner's latest, the cache's nodes


@dataclass
class LifecycleStats:
    """What the rounds did (the metrics carry the same)."""

    passes: int = 0
    probe_rounds: int = 0
    deleted: list[str] = field(default_factory=list)
    would_delete: list[str] = field(default_factory=list)  # --dry-run
    suspended: list[str] = field(default_factory=list)  # not deleted: suspended
    last: LifecyclePlan | None = None


class LifecyclePass:
    """One controller's lifecycle: call :meth:`step` every probe interval."""

    def __init__(
        self,
        view: View,
        prober: Prober,
        deleter: NodeDeleter,
        budget: StatusConfigMap,
        clock: Clock,
        *,
        may_write: Callable[[], bool],
        events: EventSink | None = None,
        leases: NodeLeases | None = None,
        metrics: Metrics | None = None,
        on_failure: Callable[[str | None], None] | None = None,
        dry_run: bool = False,
        schedule: ProbeSchedule | None = None,
        wake: threading.Event | None = None,
        suspended: Callable[[str], Hold | None] = lambda site: None,
    ) -> None:
        """``may_write`` is the lease: no round runs, and nothing is recorded or deleted,
        without it. ``suspended`` names the hold that stops deletions in a site."""
        self.view = view
        self.suspended = suspended
        self.may_write = may_write
        eyes = Eyes(clock, prober, schedule or ProbeSchedule(), budget=budget, leases=leases)
        self.lifecycle = Lifecycle(eyes)
        self.deletion = DeletionPorts(deleter, clock, budget, events, may_write=may_write)
        self.metrics = metrics
        self.on_failure = on_failure  # the status: the last round's failure, or None
        self.dry_run = dry_run
        self.stats = LifecycleStats()
        self.wake = wake or threading.Event()  # set when a site was planned again

    def run(self, stop: threading.Event) -> None:
        """Step every probe interval, or at once on :meth:`nudge`, until ``stop``."""
        eyes = self.lifecycle.eyes
        while not stop.is_set():
            self.wake.clear()
            try:
                self.step()
            except (BackendError, LeaseError) as err:
                self._failed(str(err))
            except Exception as err:  # a bug: its traceback, and the round is reported failed
                log.exception("lifecycle pass failed")
                self._failed(f"internal error: {err!r}")
            else:
                if self.on_failure is not None:
                    self.on_failure(None)
            eyes.clock.wait(self.wake, eyes.schedule.interval.total_seconds())

    def _failed(self, why: str) -> None:
        log.warning("lifecycle pass failed, nothing deleted: %s; trying again next interval", why)
        if self.metrics is not None:
            self.metrics.lifecycle_failures.inc()
        if self.on_failure is not None:
            self.on_failure(why)

    def nudge(self) -> None:
        """A node changed (its Ready condition among what may have): look now, not at the
        end of the interval. Probe rounds stay at most one per interval."""
        self.wake.set()

    def step(self) -> LifecyclePlan | None:
        """One round; the decisions made, or None when there was nothing to judge."""
        if not self.may_write():
            return None
        seen = self.view()
        if seen is None:
            return None
        topology, nodes = seen.revision.topology, seen.nodes
        deleting = {s.name for s in topology.sites if s.spec.lifecycle.delete_unreachable}
        if not deleting or all(n.ready == "True" for n in nodes.values()):
            return None
        if not self.lifecycle.due(self.lifecycle.eyes.clock.wall()):
            return None
        self.stats.passes += 1
        self.lifecycle.probe(nodes.values())
        self.stats.probe_rounds += 1
        # The sites' latest plans (members, predicted leaders) and the nodes as the cache
        # has them now: the freshest signs of life, nothing planned again.
        decided = self.lifecycle.decide(topology, seen.plan, nodes)
        if decided is None:
            return None
        self.stats.last = decided
        self._count_withheld(decided)
        self._delete(decided)
        return decided

    def _count_withheld(self, decided: LifecyclePlan) -> None:
        if self.metrics is None:
            return
        for withheld in decided.withheld:
            if withheld.node:
                self.metrics.deletions_withheld.labels(withheld.site, withheld.reason).inc()

    def _delete(self, decided: LifecyclePlan) -> None:
        going = []
        for deletion in decided.deletions:
            hold = self.suspended(deletion.site)
            if hold is None:
                going.append(deletion)
                continue
            log.warning("suspended %s: not deleted: %s", hold.describe(), deletion.text)
            self.stats.suspended.append(deletion.node)
            if self.metrics is not None:
                self.metrics.deletions_withheld.labels(deletion.site, "suspended").inc()
        decided = replace(decided, deletions=tuple(going))
        if self.dry_run:
            for deletion in decided.deletions:
                log.info("dry run: %s", deletion.text)
                self.stats.would_delete.append(deletion.node)
            return
        report = delete_dead(decided.deletions, self.deletion)
        sites = {d.node: d.site for d in decided.deletions}
        evidence = {d.node: d.evidence for d in decided.deletions}
        for name in report.deleted:
            log.info("deleted node %s (%s)", name, evidence[name])
            self.stats.deleted.append(name)
            if self.metrics is not None:
                self.metrics.node_deletions.labels(sites[name]).inc()
        for name, why in sorted(report.kept.items()):
            log.warning("kept node %s: %s", name, why)
