"""The fault matrix, the lease: no write of any kind after the lease is lost, however slow
the API, and no write's timeout outlasting it.

Each kind of write the controller sends - the status ConfigMap (the status, the deletion
record), Events, Node patches, deletions - goes through its real adapter, as wired in
``topoctl run`` (the lease gate), to the double, as the controller's service account. A
real elector holds the Lease on a fake clock (client-go's 15 s / 10 s / 2 s). The slow
API is a request that takes the clock past the renew deadline while it is served (a
``before`` hook); from that moment on, the double's request log shows no write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

from reconciler.adapters.kube import KubeBackend, RetryPolicy
from reconciler.adapters.kubelease import KubeLease
from reconciler.adapters.kubestatus import KubeEventSink, KubeStatusStore
from reconciler.controller.guard import LeaseGate
from reconciler.controller.leader import LeaderElector
from reconciler.controller.wiring import Controller, RunSettings
from reconciler.core.election.lease import Timing
from reconciler.core.lifecycle.record import Deletion
from reconciler.core.planning.plan import NodeDeletion
from reconciler.model.records import EventRecord
from reconciler.model.state import NodeWrite
from reconciler.ports import BackendError
from reconciler.usecases.deletion import DeletionPorts, delete_dead
from reconciler.usecases.statusmap import STATUS_NAME, StatusConfigMap
from tests.apiserver import ApiServer, RequestInfo
from tests.apiserver.faults import LoggedRequest
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.controller.loop_support import WallClock
from tests.shipped_rbac import NAMESPACE, Shipped

RENEW_DEADLINE = 10.0


@dataclass
class Held:
    """A replica holding the Lease on a fake clock, and the gate its writes pass."""

    apiserver: ApiServer
    api: client.ApiClient
    base: TimeBase
    elector: LeaderElector
    gate: LeaseGate
    lost_at: int | None = None  # the request log's length when the lease was lost

    def slow(self, seconds: float, **match: object) -> None:
        """The next matching request takes ``seconds`` of the replica's clock."""

        def stall(_req: RequestInfo) -> None:
            self.base.advance(seconds)
            if self.lost_at is None and not self.elector.may_write():
                self.lost_at = len(self.apiserver.log)

        self.apiserver.faults.before(stall, times=1, **match)  # type: ignore[arg-type]

    def after_loss(self) -> list[LoggedRequest]:
        """Every request sent once the lease was lost (the slow one is not logged yet)."""
        assert self.lost_at is not None, "the lease was never lost"
        return self.apiserver.log.entries[self.lost_at + 1 :]


@pytest.fixture
def held(shipped: Shipped, controller_api: client.ApiClient) -> Iterator[Held]:
    shipped.apiserver.seed_node("w-1", internal_ip="10.0.1.1")
    base = TimeBase()
    elector = LeaderElector(
        KubeLease(controller_api, "topoctl", NAMESPACE), "topoctl-0", FakeClock(base),
        rng=lambda: 0.0,
    )  # fmt: skip
    elector.step()
    assert elector.may_write()
    base.advance(RENEW_DEADLINE - 1.0)  # one second before the renew deadline
    shipped.apiserver.log.clear()
    yield Held(shipped.apiserver, controller_api, base, elector, LeaseGate(elector.write_deadline))


def status_map(held: Held) -> StatusConfigMap:
    return StatusConfigMap(KubeStatusStore(held.api, NAMESPACE, STATUS_NAME, held.gate))


def event(node: str, reason: str) -> EventRecord:
    return EventRecord(node, reason, "a note", datetime(2026, 3, 1, tzinfo=UTC))


def outcome(write: Callable[[], object]) -> str:
    """What became of a write: "sent", or why not."""
    try:
        write()
    except BackendError as err:
        return str(err)
    return "sent"


def publish_status(held: Held) -> str:
    held.slow(3.0, method="GET", path="configmaps")  # the read before the write
    return outcome(lambda: status_map(held).publish("{}", "a" * 40, "2026-03-01T00:00:00Z"))


def record_deletion(held: Held) -> str:
    held.slow(3.0, method="GET", path="configmaps")
    when = datetime(2026, 3, 1, tzinfo=UTC)
    entry = Deletion(when, "w-1")
    return outcome(
        lambda: status_map(held).update_record(lambda r: r.with_deletions([entry], when))
    )


def two_events(held: Held) -> str:
    sink = KubeEventSink(held.api, "topoctl-0", gate=held.gate)
    held.slow(3.0, method="POST", path="events")  # the first is slow: the second waits
    assert outcome(lambda: sink.create(event("w-1", "TopologyApplied"))) == "sent"
    return outcome(lambda: sink.create(event("w-1", "KiloLeaderChange")))


def two_patches(held: Held) -> str:
    writer = KubeBackend(held.api, RetryPolicy(attempts=1), gate=held.gate)
    held.slow(3.0, method="PATCH")
    first = NodeWrite("w-1", "", annotations={"example.com/x": "1"})
    assert outcome(lambda: writer.write_node(first)) == "sent"
    return outcome(
        lambda: writer.write_node(NodeWrite("w-1", "", annotations={"example.com/x": "2"}))
    )


def delete_after_a_slow_record(held: Held) -> str:
    held.apiserver.seed(
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {},
         "metadata": {"name": STATUS_NAME, "namespace": NAMESPACE}}
    )  # fmt: skip
    node = held.apiserver.node("w-1")
    assert node is not None
    meta = node["metadata"]
    deletion = NodeDeletion(
        "w-1", "fsn1", meta["uid"], meta["resourceVersion"], "delete w-1", "silent for an hour"
    )
    ports = DeletionPorts(
        KubeBackend(held.api, RetryPolicy(attempts=1), gate=held.gate),
        WallClock(0.0),
        status_map(held),
        KubeEventSink(held.api, "topoctl-0", gate=held.gate),
        may_write=held.elector.may_write,
    )
    held.slow(3.0, method="PUT", path="configmaps")  # writing the record takes long
    report = delete_dead([deletion], ports)
    assert report.deleted == []
    return report.kept["w-1"]


@pytest.mark.parametrize(
    "write",
    [publish_status, record_deletion, two_events, two_patches, delete_after_a_slow_record],
    ids=["status", "deletion-record", "events", "node-patches", "deletion"],
)
def test_no_write_is_sent_once_the_lease_is_lost(held: Held, write: Callable[[Held], str]) -> None:
    assert "not sent, this replica does not hold the lease" in write(held)
    late = [(e.method, e.path) for e in held.after_loss() if e.is_write]
    assert late == []
    assert held.apiserver.node("w-1") is not None


WRITES: dict[str, Callable[[client.ApiClient, LeaseGate], object]] = {
    "node-patch": lambda api, gate: KubeBackend(api, RetryPolicy(attempts=1), gate=gate)
    .write_node(NodeWrite("w-1", "", annotations={"example.com/x": "1"})),
    "event": lambda api, gate: KubeEventSink(api, "topoctl-0", gate=gate)
    .create(event("w-1", "TopologyApplied")),
    "status": lambda api, gate: KubeStatusStore(api, NAMESPACE, STATUS_NAME, gate)
    .write({"a": "b"}, None),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(WRITES))
def test_a_write_times_out_before_the_lease_could_expire(
    shipped: Shipped, controller_api: client.ApiClient, kind: str
) -> None:
    shipped.apiserver.seed_node("w-1")
    lease = Timing(lease_duration=2.0, renew_deadline=1.5, retry_period=0.5)
    elector = LeaderElector(
        KubeLease(controller_api, "topoctl", NAMESPACE), "topoctl-0", WallClock(0.0),
        timing=lease,
    )  # fmt: skip
    elector.step()
    assert elector.may_write()
    shipped.apiserver.faults.latency(6.0, times=None, method="PATCH")
    shipped.apiserver.faults.latency(6.0, times=None, method="POST")
    started = time.monotonic()
    error = outcome(lambda: WRITES[kind](controller_api, LeaseGate(elector.write_deadline)))
    assert "timed out" in error.lower()
    # the client gave up within the lease's 2 s, not after its own 30 s (or 15 s)
    assert time.monotonic() - started < 3.5


def test_every_writer_the_controller_is_wired_with_asks_the_lease(
    shipped: Shipped, tmp_path: Path
) -> None:
    node = shipped.apiserver.seed_node("w-1")
    uid, version = node["metadata"]["uid"], node["metadata"]["resourceVersion"]
    with deployed(shipped, tmp_path) as controller:  # its elector never ran: no lease
        when = datetime(2026, 3, 1, tzinfo=UTC)
        entry = Deletion(when, "w-1")
        nodes = controller.loop.writer.writer  # beneath the loop's GuardedWriter
        writes: list[Callable[[], object]] = [
            lambda: nodes.write_node(NodeWrite("w-1", "", annotations={"example.com/x": "1"})),
            lambda: controller.status_map.publish("{}", "a" * 40, "2026-03-01T00:00:00Z"),
            lambda: controller.node_events.create(event("w-1", "TopologyApplied")),
            lambda: controller.status_events.sink.create(event(STATUS_NAME, "RevisionRefused")),
            lambda: controller.lifecycle.deletion.deleter.delete_node("w-1", uid, version),
            lambda: controller.status_map.update_record(lambda r: r.with_deletions([entry], when)),
        ]
        for write in writes:
            assert "not sent" in outcome(write)
    assert shipped.apiserver.log.writes() == []


@contextmanager
def deployed(shipped: Shipped, workdir: Path) -> Iterator[Controller]:
    """``topoctl run``'s wiring, as the controller's service account, not started."""
    kubeconfig = shipped.kubeconfig(workdir / "kubeconfig", shipped.controller_token())
    settings = RunSettings(
        source_dir=workdir, kubeconfig=kubeconfig, lease_namespace=NAMESPACE,
        identity="topoctl-0", listen="127.0.0.1:0",
    )  # fmt: skip
    backend = KubeBackend.connect(kubeconfig)
    controller = Controller(settings, backend)
    controller.http.start()  # bound already: started, so that it can be stopped
    try:
        yield controller
    finally:
        controller.http.stop()
        backend.close()
