"""The deletion protocol over in-memory ports: the order (record, Event, DELETE), the lease
looked at before the record and again before the DELETE, and the budget slot given back
on every deletion that was recorded but not done, whatever stopped it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from reconciler.core.lifecycle.record import DeletionRecord
from reconciler.core.planning.plan import NodeDeletion
from reconciler.model.records import EventRecord
from reconciler.ports import BackendError, ConflictError, NotFoundError
from reconciler.usecases.deletion import DeletionPorts, delete_dead
from reconciler.usecases.statusmap import StatusConfigMap
from tests.core.test_lifecycle_plan import FakeClock
from tests.fakes import MemoryEvents, MemoryStatusStore

DEAD = NodeDeletion("w-2", "fsn1", "uid-w-2", "7", "would delete w-2: ...", "deleting w-2: ...")
OTHER = NodeDeletion("w-3", "fsn1", "uid-w-3", "8", "would delete w-3: ...", "deleting w-3: ...")


class Nodes:
    """The NodeDeleter port; ``fail`` says how each DELETE ends (None: it is deleted)."""

    def __init__(self, log: list[str], fail: Exception | None = None) -> None:
        self.log, self.fail = log, fail

    def delete_node(self, name: str, uid: str, resource_version: str) -> None:
        self.log.append(f"delete {name} {uid} {resource_version}")
        if self.fail is not None:
            raise self.fail


def wire(
    fail: Exception | None = None,
    *,
    lease: Callable[[], bool] = lambda: True,
    event_fails: bool = False,
) -> tuple[DeletionPorts, MemoryStatusStore, list[str]]:
    log: list[str] = []
    store = MemoryStatusStore({"status.json": "{}"})

    def announce(event: EventRecord) -> None:
        held = DeletionRecord.parse((store.data or {}).get("deletions")).deletions
        log.append(f"event {event.reason} {event.node} ({len(held)} recorded)")
        if event_fails:
            raise BackendError("create event: HTTP 500")

    ports = DeletionPorts(
        Nodes(log, fail), FakeClock(), StatusConfigMap(store), MemoryEvents(announce), lease
    )
    return ports, store, log


def record(store: MemoryStatusStore) -> DeletionRecord:
    return DeletionRecord.parse((store.data or {}).get("deletions"))


def test_a_deletion_is_recorded_then_announced_then_sent_with_its_preconditions() -> None:
    ports, store, log = wire()
    report = delete_dead([DEAD], ports)
    assert report.deleted == ["w-2"] and report.kept == {}
    assert log == ["event NodeDeleted w-2 (1 recorded)", "delete w-2 uid-w-2 7"]
    assert [d.node for d in record(store).deletions] == ["w-2"]
    assert (store.data or {})["status.json"] == "{}"  # the status beside it is kept


@pytest.mark.parametrize(
    ("fail", "why"),
    [
        (ConflictError("precondition failed"), "changed since it was judged dead"),
        (NotFoundError("nodes w-2 not found"), "already gone"),
        (BackendError("delete node w-2: HTTP 500 after 5 attempts"), "HTTP 500"),
    ],
)
def test_a_delete_that_fails_gives_its_budget_slot_back(fail: Exception, why: str) -> None:
    ports, store, log = wire(fail)
    report = delete_dead([DEAD], ports)
    assert report.deleted == [] and why in report.kept["w-2"]
    assert log == ["event NodeDeleted w-2 (1 recorded)", "delete w-2 uid-w-2 7"]
    assert record(store) == DeletionRecord()  # recorded, then given back
    assert store.writes == 2


def test_an_event_that_cannot_be_created_keeps_the_node_and_gives_the_slot_back() -> None:
    ports, store, log = wire(event_fails=True)
    report = delete_dead([DEAD], ports)
    assert report.deleted == [] and "HTTP 500" in report.kept["w-2"]
    assert log == ["event NodeDeleted w-2 (1 recorded)"]  # no DELETE
    assert record(store) == DeletionRecord()


def answers(*values: bool) -> Callable[[], bool]:
    it: Iterator[bool] = iter(values)
    return lambda: next(it, False)


def test_the_lease_lost_before_the_record_sends_nothing() -> None:
    ports, store, log = wire(lease=answers(False))
    report = delete_dead([DEAD], ports)
    assert "lease" in report.kept["w-2"]
    assert log == [] and store.writes == 0


def test_the_lease_lost_after_the_event_sends_no_delete_and_gives_the_slot_back() -> None:
    ports, store, log = wire(lease=answers(True, False))
    report = delete_dead([DEAD], ports)
    assert "lease" in report.kept["w-2"]
    assert log == ["event NodeDeleted w-2 (1 recorded)"]
    assert record(store) == DeletionRecord()


def test_a_record_that_cannot_be_written_keeps_the_node_unannounced() -> None:
    ports, store, log = wire()
    store.data = None  # and every write refused: the record cannot be kept

    def refused(*_args: object) -> None:
        raise BackendError("write configmap topoctl-status: HTTP 403")

    store.write = refused  # type: ignore[method-assign, assignment]
    report = delete_dead([DEAD], ports)
    assert report.deleted == [] and "HTTP 403" in report.kept["w-2"]
    assert log == []


def test_the_slot_given_back_is_that_deletion_s_only() -> None:
    ports, store, log = wire()
    delete_dead([DEAD], ports)  # done: its entry stays
    failing = DeletionPorts(Nodes(log, ConflictError("moved")), ports.clock, ports.budget)
    delete_dead([OTHER], failing)
    assert [d.node for d in record(store).deletions] == ["w-2"]


def test_without_a_budget_or_events_only_the_delete_is_sent() -> None:
    log: list[str] = []
    report = delete_dead([DEAD, OTHER], DeletionPorts(Nodes(log), FakeClock()))
    assert report.deleted == ["w-2", "w-3"]
    assert log == ["delete w-2 uid-w-2 7", "delete w-3 uid-w-3 8"]
