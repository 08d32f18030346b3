"""topoctl suspend's record and what the controller makes of it: the record kept beside
every other key of the status ConfigMap, the view every replica keeps (nothing written
before it is known), and the lifecycle's deletions withheld in a suspended site, through
the controller's own wiring on the double under the shipped RBAC."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from reconciler.adapters.kubestatus import KubeStatusStore
from reconciler.controller.fetchrequests import POLL, FetchRequests
from reconciler.controller.suspension import UNKNOWN, SuspensionView
from reconciler.model.suspension import CLUSTER, Hold, Suspension
from reconciler.usecases.statusmap import (
    DOC_KEY,
    FETCH_KEY,
    HANDLED_KEY,
    REQUESTED_AT,
    STATUS_NAME,
    SUSPEND_KEY,
    StatusConfigMap,
)
from tests.controller.deployed import Deployed, deployed_controller
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.fakes import MemoryStatusStore
from tests.shipped_rbac import NAMESPACE, Shipped

ALICE = Hold("alice@laptop", "2026-12-07T23:40:00Z", "incident 4711")
BOB = Hold("bob@desk", "2026-12-07T23:41:00Z", "rack move")


def test_suspending_and_resuming_scopes() -> None:
    both = Suspension().suspend((), ALICE).suspend(("fsn1", "nbg1"), BOB)
    assert both.covers("hel1") == ALICE  # the cluster's hold comes first
    assert both.resume(()).covers("hel1") is None
    assert both.resume(()).covers("fsn1") == BOB
    assert both.resume(("fsn1",)).scopes() == {CLUSTER: ALICE, "nbg1": BOB}
    assert not both.resume((), everything=True).active
    assert Suspension.parse(both.render()) == both
    assert both.as_status() == {
        "*": ALICE.as_json(),
        "fsn1": BOB.as_json(),
        "nbg1": BOB.as_json(),
    }


@pytest.mark.parametrize("text", ["{", "[]", '{"cluster": 3}', '{"sites": [1]}'])
def test_a_record_that_cannot_be_read_suspends_the_whole_cluster(text: str) -> None:
    read = Suspension.parse(text)
    assert read.cluster is not None and "resume --all" in read.cluster.reason
    assert read.covers("any") is read.cluster


def test_no_record_suspends_nothing() -> None:
    assert Suspension.parse(None) == Suspension.parse("") == Suspension()


def test_the_record_keeps_every_other_key_and_annotation() -> None:
    store = MemoryStatusStore(
        {"status.json": "{}", FETCH_KEY: "t0", "deletions": "x"}, {"team": "net"}
    )
    status = StatusConfigMap(store)
    status.update_suspension(lambda s: s.suspend(("fsn1",), BOB))
    status.request_reconcile("2026-12-07T23:50:00.000001Z")
    status.publish('{"revision":"abc"}', "abc", "T")  # the controller's replace
    assert store.data is not None and store.data[FETCH_KEY] == "t0"
    assert store.data["deletions"] == "x" and SUSPEND_KEY in store.data
    assert store.annotations == {"team": "net", REQUESTED_AT: "2026-12-07T23:50:00.000001Z"}
    found = status.requests()
    assert found.suspension.covers("fsn1") == BOB and found.fetch == "t0"
    assert found.reconcile == "2026-12-07T23:50:00.000001Z" and found.handled == ""
    shown = status.read_status()
    assert shown is not None and shown["suspendRecorded"] == {"fsn1": BOB.as_json()}
    assert SUSPEND_KEY not in shown["other"]  # shown as itself

    status.update_suspension(lambda s: s.resume(("fsn1",)))
    assert SUSPEND_KEY not in store.data  # nothing suspended: no key left


def test_suspend_creates_the_configmap_when_the_controller_never_ran() -> None:
    store = MemoryStatusStore()
    StatusConfigMap(store).update_suspension(lambda s: s.suspend((), ALICE))
    assert StatusConfigMap(store).suspension().cluster == ALICE


def test_a_replica_writes_nothing_before_it_has_read_the_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    changes: list[tuple[Suspension, Suspension]] = []
    view = SuspensionView(lambda before, now: changes.append((before, now)))
    assert view.covers("fsn1") is UNKNOWN and view.cluster() is UNKNOWN
    caplog.set_level(logging.INFO, "topoctl.run")
    view.seen(Suspension())
    assert view.covers("fsn1") is None and changes == [(Suspension(), Suspension())]
    view.seen(Suspension())  # the same: told once
    assert len(changes) == 1
    view.seen(Suspension().suspend(("fsn1",), BOB))
    view.seen(Suspension())
    messages = [r.getMessage() for r in caplog.records]
    assert messages[-2] == (
        "suspended site fsn1 by bob@desk at 2026-12-07T23:41:00Z: rack move: "
        "nothing is written there"
    )
    assert messages[-1] == "resumed site fsn1: written again from now on"
    assert len(changes) == 3


@pytest.fixture
def deployed(shipped: Shipped, tmp_path: Path) -> Iterator[Deployed]:
    with deployed_controller(shipped, tmp_path) as wired:
        yield wired


def test_a_suspended_site_loses_no_node_to_the_lifecycle_until_resumed(
    deployed: Deployed, caplog: pytest.LogCaptureFixture
) -> None:
    controller, apiserver = deployed.controller, deployed.apiserver
    shipped = Shipped(apiserver)
    person = StatusConfigMap(
        KubeStatusStore(shipped.api(shipped.controller_token()), NAMESPACE, STATUS_NAME)
    )
    person.update_suspension(lambda s: s.suspend(("fsn1",), BOB))
    controller.suspension.seen(controller.status_map.suspension())  # the replica's look

    caplog.set_level(logging.WARNING, "topoctl.lifecycle")
    deployed.steps(5)
    lifecycle = controller.lifecycle
    assert lifecycle.stats.deleted == [] and "w-2" in lifecycle.stats.suspended
    assert apiserver.node("w-2") is not None
    assert apiserver.log.count(verb="delete", resource="nodes") == 0
    recorded = apiserver.get("ConfigMap", STATUS_NAME, NAMESPACE)
    assert recorded is not None and "deletions" not in recorded["data"]  # no budget taken
    assert any(
        r.getMessage().startswith("suspended by bob@desk") and "w-2" in r.getMessage()
        for r in caplog.records
    )
    withheld = controller.metrics.registry.get_sample_value(
        "topoctl_node_deletions_withheld_total", {"site": "fsn1", "reason": "suspended"}
    )
    assert withheld is not None and withheld >= 1

    person.update_suspension(lambda s: s.resume(("fsn1",)))
    controller.suspension.seen(controller.status_map.suspension())
    deployed.clock.at += timedelta(seconds=20)
    deployed.steps(1)
    assert lifecycle.stats.deleted == ["w-2"] and apiserver.node("w-2") is None
    assert apiserver.log.count(status=403) == 0


def test_status_text_says_what_is_enforced_and_what_the_controller_has_not_seen_yet() -> None:
    from reconciler.core.rendering.status import status_text

    doc = {
        "suspended": {"*": ALICE.as_json()},
        "suspendRecorded": {"fsn1": BOB.as_json()},
        "driftNodes": 3,
        "reconcileRequestedAt": "T1",
        "lastHandledReconcileAt": "T0",
    }
    lines = status_text(doc).splitlines()
    assert lines[:4] == [
        "SUSPENDED: the whole cluster by alice@laptop at 2026-12-07T23:40:00Z: incident 4711"
        " - nothing is written there (resume recorded, not seen by the controller yet)",
        "           3 node(s) drift from git, unwritten (topoctl resume)",
        "suspend recorded: site fsn1 by bob@desk at 2026-12-07T23:41:00Z: rack move"
        " (not seen by the controller yet)",
        "revision:  (none applied)",
    ]
    assert "reconcile: requested T1, not handled yet" in lines


class Looks:
    """One replica's looks at the status ConfigMap (controller/fetchrequests.py), each
    driven by hand on fake time."""

    def __init__(self, store: MemoryStatusStore, holder: bool) -> None:
        self.base = TimeBase()
        self.fetches = 0
        self.seen: list[Suspension] = []
        self.reconciles: list[str] = []
        self.requests = FetchRequests(
            StatusConfigMap(store),
            self._fetch,
            lambda: holder,
            FakeClock(self.base),
            on_suspension=self.seen.append,
            on_reconcile=self.reconciles.append,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.requests.run, args=(self.stop,), daemon=True)

    def _fetch(self) -> None:
        self.fetches += 1

    def looks(self, count: int) -> None:
        """``count`` looks, one poll apart."""
        if not self.thread.is_alive():
            self.thread.start()
        for _ in range(count):
            self.base.wait_for_sleepers(1)
            self.base.advance(POLL)
        self.base.wait_for_sleepers(1)

    def close(self) -> None:
        self.stop.set()
        self.base.advance(POLL)
        self.thread.join(5)


def test_a_standby_knows_the_suspension_before_it_ever_leads() -> None:
    store = MemoryStatusStore({SUSPEND_KEY: Suspension().suspend((), ALICE).render()})
    standby = Looks(store, holder=False)
    try:
        standby.looks(2)
    finally:
        standby.close()
    assert standby.seen and standby.seen[-1].cluster == ALICE
    assert standby.reconciles == [] and standby.fetches == 0  # the holder's to handle
    assert store.writes == 0  # reading it costs no write


def test_the_holder_handles_each_reconcile_request_once_and_not_one_already_echoed() -> None:
    handled = json.dumps({HANDLED_KEY: "T1"})
    store = MemoryStatusStore({DOC_KEY: handled}, {REQUESTED_AT: "T1"})
    holder = Looks(store, holder=True)
    try:
        holder.looks(2)
        assert holder.reconciles == []  # echoed already (by a predecessor)
        store.annotate(REQUESTED_AT, "T2")
        holder.looks(3)
        assert holder.reconciles == ["T2"]  # once, however many looks before the echo
        store.data = {DOC_KEY: json.dumps({HANDLED_KEY: "T2"})}
        store.annotate(REQUESTED_AT, "T3")
        holder.looks(1)
    finally:
        holder.close()
    assert holder.reconciles == ["T2", "T3"]
