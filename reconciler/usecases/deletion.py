"""The deletion protocol: how a dead node is deleted, by the controller's lifecycle round
and by ``topoctl apply`` alike (docs/lifecycle.md).

For each node a plan or a round decided to delete, in order: the lease is looked at (a
controller that lost it sends nothing); the deletion is recorded in the hourly budget
(the status ConfigMap's record, so a restart or a failover keeps it); a ``NodeDeleted``
Event carrying the evidence is created (when it cannot be, the node is kept); the lease
is looked at again (the record and the Event took time); then the DELETE goes, with the
uid and resourceVersion the node was judged on as preconditions: a node that came back
or re-registered meanwhile answers 409 and is kept, to be judged again. A deletion
recorded but not done, whatever stopped it, gives its slot back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from reconciler.core.lifecycle.record import Deletion, DeletionRecord
from reconciler.core.planning.plan import NodeDeletion
from reconciler.model.records import EventRecord
from reconciler.ports import (
    BackendError,
    Clock,
    ConflictError,
    EventSink,
    NodeDeleter,
    NotFoundError,
    NotSentError,
)
from reconciler.usecases.executor import ApplyReport
from reconciler.usecases.statusmap import StatusConfigMap

log = logging.getLogger("topoctl.deletion")


def _always() -> bool:
    return True


@dataclass(frozen=True)
class DeletionPorts:
    """What deleting goes through. Without a ``budget`` nothing is recorded (a snapshot
    file has no status ConfigMap); without ``events`` nothing is announced."""

    deleter: NodeDeleter
    clock: Clock
    budget: StatusConfigMap | None = None
    events: EventSink | None = None
    may_write: Callable[[], bool] = _always  # the controller's lease


class NotHolderError(NotSentError):
    """Raised before a record or a DELETE once the lease is gone: nothing is sent."""


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


def delete_dead(
    deletions: Sequence[NodeDeletion], ports: DeletionPorts, report: ApplyReport | None = None
) -> ApplyReport:
    """Delete each node as the module says; ``report`` (a new one by default) gets the
    nodes deleted and, for the others, why they were kept."""
    report = report if report is not None else ApplyReport()
    for deletion in deletions:
        name = deletion.node
        recorded: Deletion | None = None
        try:
            _hold(ports)
            now = ports.clock.wall()
            if ports.budget is not None:
                recorded = _record(ports.budget, Deletion(now, name))  # the budget first
            if ports.events is not None:
                ports.events.create(node_deleted(deletion, now))
            _hold(ports)  # the record and the Event took time: look again
            ports.deleter.delete_node(name, deletion.uid, deletion.resource_version)
        except ConflictError:
            report.kept[name] = "it changed since it was judged dead (kept; judged again)"
        except NotFoundError:
            report.kept[name] = "already gone"
        except BackendError as err:
            report.kept[name] = f"not deleted: {err}"
        else:
            report.deleted.append(name)
            continue
        if recorded is not None and ports.budget is not None:
            _give_back(ports.budget, recorded)
    return report


def _hold(ports: DeletionPorts) -> None:
    if not ports.may_write():
        raise NotHolderError("the lease is no longer held")


def _record(budget: StatusConfigMap, entry: Deletion) -> Deletion:
    """Add a deletion about to be done to the record; the entry, once stored."""
    budget.update_record(lambda record: record.with_deletions([entry], entry.at))
    return entry


def _give_back(budget: StatusConfigMap, entry: Deletion) -> None:
    """Take a recorded deletion that did not happen out of the record again."""

    def without(record: DeletionRecord) -> DeletionRecord:
        kept = tuple(d for d in record.deletions if d != entry)
        return DeletionRecord(kept, record.readable, record.problem)

    try:
        budget.update_record(without)
    except BackendError as err:  # over-counted: the safe side
        log.warning("the deletion record keeps %s, not deleted: %s", entry.node, err)
