"""The controller's lifecycle pass: probe, decide, record, announce, delete.

On the lease holder only, every probe interval (or sooner when a node changes, e.g.
its Ready condition, but never more than one round per interval): one ICMP round over the members'
addresses joins the history kept in memory (a restart only restarts the minute of
probes: the NotReady clock is the Ready condition's ``lastTransitionTime``), the core
decides (:mod:`reconciler.core.lifecycle.rules`), and each deletion is first written into the
deletion record (so the hourly budget survives a restart or failover), then announced
by an Event on the Node, then sent as a DELETE with uid and resourceVersion
preconditions. ``--dry-run`` logs and counts what would be deleted. A pass costs no
probe and no plan while no member of a deleting site is NotReady.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from reconciler.controller.metrics import Metrics
from reconciler.core.lifecycle.planned import lifecycle_plan
from reconciler.core.lifecycle.probes import ProbeHistory, ProbeSchedule, addresses_to_probe
from reconciler.core.lifecycle.record import Deletion, DeletionRecord
from reconciler.core.lifecycle.rules import Observations
from reconciler.core.planning.plan import LifecyclePlan, NodeDeletion
from reconciler.core.planning.planner import Planner
from reconciler.model.records import EventRecord
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology
from reconciler.ports import (
    BackendError,
    Clock,
    ConflictError,
    NodeDeleter,
    Prober,
    RecordStore,
    StatusStore,
)
from reconciler.usecases.executor import ApplyReport, delete_dead

log = logging.getLogger("topoctl.lifecycle")


RECORD_KEY = "deletions"  # the status ConfigMap's key for the deletion record


class ConfigMapRecords:
    """The deletion record as one key of the status ConfigMap (others' keys kept)."""

    def __init__(self, store: StatusStore) -> None:
        self.store = store

    def load_record(self) -> DeletionRecord:
        current = self.store.read()
        return DeletionRecord.parse(current.data.get(RECORD_KEY) if current else None)

    def save_record(self, record: DeletionRecord) -> None:
        for _attempt in range(3):
            current = self.store.read()
            data = {**(current.data if current else {}), RECORD_KEY: record.render()}
            try:
                self.store.write(data, current.resource_version if current else None)
                return
            except ConflictError:
                continue  # the status was published meanwhile: read it again
        raise BackendError("the deletion record: the status ConfigMap kept changing")


Announce = Callable[[NodeDeletion], None]  # the NodeDeleted Event
View = Callable[[], tuple[Topology, list[NodeState]] | None]  # revision in force, nodes


@dataclass
class LifecycleStats:
    """What the passes did (the metrics carry the same)."""

    passes: int = 0
    probe_rounds: int = 0
    deleted: list[str] = field(default_factory=list)
    would_delete: list[str] = field(default_factory=list)  # --dry-run
    last: LifecyclePlan | None = None


class LifecyclePass:
    """One controller's lifecycle: call :meth:`step` every probe interval."""

    def __init__(
        self,
        view: View,
        prober: Prober,
        deleter: NodeDeleter,
        records: RecordStore,
        clock: Clock,
        *,
        may_write: Callable[[], bool],
        announce: Announce | None = None,
        leases: Callable[[], Mapping[str, datetime]] | None = None,
        metrics: Metrics | None = None,
        dry_run: bool = False,
        schedule: ProbeSchedule | None = None,
    ) -> None:
        self.view = view
        self.prober = prober
        self.deleter = deleter
        self.records = records
        self.clock = clock
        self.may_write = may_write
        self.announce = announce
        self.leases = leases
        self.metrics = metrics
        self.dry_run = dry_run
        self.schedule = schedule or ProbeSchedule()
        self.history = ProbeHistory(self.schedule)
        self.stats = LifecycleStats()
        self.wake = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Step every probe interval, or at once on :meth:`nudge`, until ``stop``."""
        while not stop.is_set():
            self.wake.clear()
            try:
                self.step()
            except Exception:  # one bad pass must not end the controller's lifecycle
                log.exception("lifecycle pass failed; trying again next interval")
            self.clock.wait(self.wake, self.schedule.interval.total_seconds())

    def nudge(self) -> None:
        """A node changed (its Ready condition among what may have): look now, not at the
        end of the interval. Probe rounds stay at most one per interval."""
        self.wake.set()

    def step(self) -> LifecyclePlan | None:
        """One pass; the decisions made, or None when there was nothing to judge."""
        if not self.may_write():
            return None
        seen = self.view()
        if seen is None:
            return None
        topology, nodes = seen
        deleting = {s.name for s in topology.sites if s.spec.lifecycle.delete_unreachable}
        if not deleting or all(n.ready == "True" for n in nodes):
            return None
        now = self.clock.wall()
        if not self.schedule.due(self.history.last_at, now):
            return None
        self.stats.passes += 1
        self.history = self.history.add(self.prober.probe(addresses_to_probe(nodes)), now)
        self.stats.probe_rounds += 1
        plan = Planner(topology, nodes, int(now.timestamp())).plan_all()
        record = self.records.load_record()
        leases = self.leases() if self.leases is not None else {}
        observed = Observations(now, self.history.nodes(nodes), leases, record)
        live = {n.name: n for n in nodes}
        decided = lifecycle_plan(topology, plan, live, observed, probed=True)
        if decided is None:
            return None
        self.stats.last = decided
        self._count_withheld(decided)
        self._delete(decided, record)
        return decided

    def _count_withheld(self, decided: LifecyclePlan) -> None:
        if self.metrics is None:
            return
        for withheld in decided.withheld:
            if withheld.node:
                self.metrics.deletions_withheld.labels(withheld.site, withheld.reason).inc()

    def _delete(self, decided: LifecyclePlan, record: DeletionRecord) -> None:
        if self.dry_run:
            for deletion in decided.deletions:
                log.info("dry run: %s", deletion.text)
                self.stats.would_delete.append(deletion.node)
            return

        recorded: dict[str, Deletion] = {}

        def before(deletion: NodeDeletion) -> None:
            nonlocal record
            if not self.may_write():
                raise NotHolderError("the lease is no longer held")
            now = self.clock.wall()
            entry = Deletion(now, deletion.node)
            record = record.with_deletions([entry], now)
            self.records.save_record(record)  # the budget first, then the deed
            recorded[deletion.node] = entry
            if self.announce is not None:
                self.announce(deletion)
            if not self.may_write():  # the record and the Event took time: look again
                raise NotHolderError("the lease is no longer held")

        report = delete_dead(decided.deletions, self.deleter, before, ApplyReport())
        undone = {e for name, e in recorded.items() if name not in report.deleted}
        if undone:  # recorded but not deleted (409, gone, lease lost): give the budget back
            kept = tuple(d for d in record.deletions if d not in undone)
            try:
                self.records.save_record(replace(record, deletions=kept))
            except BackendError as err:  # over-counted: the safe side
                log.warning("the deletion record keeps %d undone entries: %s", len(undone), err)
        sites = {d.node: d.site for d in decided.deletions}
        for name in report.deleted:
            log.info("deleted node %s (%s)", name, _text(decided, name))
            self.stats.deleted.append(name)
            if self.metrics is not None:
                self.metrics.node_deletions.labels(sites[name]).inc()
        for name, why in sorted(report.kept.items()):
            log.warning("kept node %s: %s", name, why)


def node_deleted(deletion: NodeDeletion, at: datetime) -> EventRecord:
    """The NodeDeleted Event that precedes a DELETE, carrying the evidence."""
    return EventRecord(
        deletion.node,
        "NodeDeleted",
        deletion.evidence,
        at,
        "Warning",
        action="Delete",
        node_uid=deletion.uid,
    )


def _text(decided: LifecyclePlan, name: str) -> str:
    return next(d.evidence for d in decided.deletions if d.node == name)


class NotHolderError(BackendError):
    """Raised before a DELETE once the lease is gone: nothing is sent."""
