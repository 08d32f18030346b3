"""The status ConfigMap's one owner: each writer changes only its keys, and a write that
meets another writer's (409) reads again, so nobody's keys or record entries are lost."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta

import pytest

from reconciler.core.lifecycle.record import Deletion, DeletionRecord
from reconciler.model.records import StatusRecord
from reconciler.ports import BackendError
from reconciler.usecases.statusmap import StatusConfigMap
from tests.fakes import MemoryStatusStore
from tests.lifecycle_support import NOW


class Raced(MemoryStatusStore):
    """Another writer gets in between each read and write, ``times`` times."""

    def __init__(self, data: Mapping[str, str], other: Mapping[str, str], times: int) -> None:
        super().__init__(data)
        self.other, self.times = dict(other), times

    def write(
        self,
        data: Mapping[str, str],
        resource_version: str | None,
        annotations: Mapping[str, str] | None = None,
    ) -> StatusRecord:
        if self.times:
            self.times -= 1
            current = self.read()
            assert current is not None
            super().write(
                {**current.data, **self.other}, current.resource_version, current.annotations
            )
        return super().write(data, resource_version, annotations)


def entry(node: str, minutes: int = 0) -> Deletion:
    return Deletion(NOW - timedelta(minutes=minutes), node)


def test_two_writers_of_the_record_keep_each_other_s_entries() -> None:
    theirs = DeletionRecord((entry("cli-deleted", 5),)).render()
    store = Raced({"status.json": "{}"}, {"deletions": theirs}, times=1)
    StatusConfigMap(store).update_record(lambda r: r.with_deletions([entry("w-2")], NOW))
    record = DeletionRecord.parse((store.data or {})["deletions"])
    assert [d.node for d in record.deletions] == ["cli-deleted", "w-2"]
    assert (store.data or {})["status.json"] == "{}"


def test_publishing_keeps_others_keys_and_writes_nothing_unchanged() -> None:
    store = MemoryStatusStore({"fetchRequestedAt": "t1", "deletions": "x"})
    status = StatusConfigMap(store)
    assert status.publish('{"revision":"abc"}', "abc", "t2") is True
    assert status.publish('{"revision":"abc"}', "abc", "t2") is False
    assert store.writes == 1
    assert store.data == {
        "fetchRequestedAt": "t1",
        "deletions": "x",
        "status.json": '{"revision":"abc"}',
        "revision": "abc",
        "appliedAt": "t2",
    }
    assert status.revision_in_force() == "abc"
    assert status.read_status() == {
        "revision": "abc",
        "other": {"fetchRequestedAt": "t1", "deletions": "x"},
    }


def test_a_fetch_request_survives_a_publish_in_between() -> None:
    store = Raced({}, {"status.json": json.dumps({"revision": "r1"})}, times=1)
    status = StatusConfigMap(store)
    status.request_fetch("2026-12-02T20:00:00Z")
    assert status.fetch_requested() == "2026-12-02T20:00:00Z"
    assert (store.data or {})["status.json"] == '{"revision": "r1"}'


def test_a_configmap_that_keeps_changing_is_an_error_not_a_lost_write() -> None:
    store = Raced({}, {"other": "x"}, times=10)
    with pytest.raises(BackendError, match="kept changing"):
        StatusConfigMap(store).request_fetch("t")
    assert "fetchRequestedAt" not in (store.data or {})


def test_an_unreadable_record_stays_for_a_person_to_repair() -> None:
    store = MemoryStatusStore({"deletions": "not JSON"})
    status = StatusConfigMap(store)
    status.update_record(lambda r: r.with_deletions([entry("w-2")], NOW))
    assert store.writes == 0 and not status.read_record().readable
    assert StatusConfigMap(MemoryStatusStore()).read_record() == DeletionRecord()
    assert StatusConfigMap(MemoryStatusStore()).read_status() is None
