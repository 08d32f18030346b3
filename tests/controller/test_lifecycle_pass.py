"""The controller's lifecycle pass on a fake clock: a minute of probes, the record
before the Event before the DELETE, only on the lease holder, never past the budget."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client
from msgspec.structs import replace

from reconciler.adapters.kubestatus import KubeStatusStore
from reconciler.controller.lifecycle import LifecyclePass
from reconciler.controller.plans import PlannedView
from reconciler.core.lifecycle.record import Deletion, DeletionRecord
from reconciler.core.rendering.status import status_text
from reconciler.model import keys
from reconciler.model.records import EventRecord, StatusRecord
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology
from reconciler.ports import BackendError, ConflictError
from reconciler.usecases.statusmap import StatusConfigMap
from tests.apiserver import ApiServer
from tests.controller.deployed import Deployed, deployed_controller
from tests.core.test_lifecycle_plan import FakeClock, FakeProber, cluster, fsn1
from tests.fakes import MemoryEvents, MemoryStatusStore
from tests.lifecycle_support import NOW, planned_view
from tests.shipped_rbac import NAMESPACE, Shipped, rbac_objects

DEAD_IP = "10.0.1.2"


class Store(MemoryStatusStore):
    """The status ConfigMap, holding ``record`` (its text, or ``problem`` when unreadable)."""

    def __init__(self, record: DeletionRecord | None = None, fail: bool = False) -> None:
        if record is None:
            super().__init__()
        else:
            super().__init__({"deletions": record.render() if record.readable else record.problem})
        self.fail = fail

    def write(
        self,
        data: Mapping[str, str],
        resource_version: str | None,
        annotations: Mapping[str, str] | None = None,
    ) -> StatusRecord:
        if self.fail:
            raise BackendError("configmap topoctl-status: 500")
        return super().write(data, resource_version, annotations)

    @property
    def saves(self) -> int:
        return self.writes

    @property
    def record(self) -> DeletionRecord:
        return DeletionRecord.parse((self.data or {}).get("deletions"))


class Deleter:
    def __init__(self, log: list[str], conflict: bool = False) -> None:
        self.log, self.conflict = log, conflict

    def delete_node(self, name: str, uid: str, resource_version: str) -> None:
        if self.conflict:
            raise ConflictError(f"delete node {name}: precondition failed")
        self.log.append(f"delete {name} {uid} {resource_version}")


def view_of(
    topology: Topology, nodes: list[NodeState], clock: FakeClock
) -> Callable[[], PlannedView]:
    """What the shared planner shows the lifecycle: the sites planned (Kilo's freshness
    judged at the controller's clock), the nodes."""
    view = planned_view(topology, nodes, int(clock.wall().timestamp()))
    return lambda: view


def make(
    nodes: list[NodeState],
    *,
    topology: Topology | None = None,
    store: Store | None = None,
    holder: bool = True,
    may_write: Callable[[], bool] | None = None,
    dry_run: bool = False,
    conflict: bool = False,
    kilo: bool = True,
) -> tuple[LifecyclePass, FakeClock, FakeProber, list[str], Store]:
    clock = FakeClock()
    prober = FakeProber(clock, {DEAD_IP})
    log: list[str] = []
    store = store or Store()
    topo = topology or fsn1()

    def announce(event: EventRecord) -> None:
        assert event.reason == "NodeDeleted"
        log.append(f"event {event.node} after {store.saves} record saves")

    lifecycle = LifecyclePass(
        view_of(topo, kilo_checked_in(nodes, clock) if kilo else nodes, clock),
        prober,
        Deleter(log, conflict),
        StatusConfigMap(store),
        clock,
        may_write=may_write or (lambda: holder),
        events=MemoryEvents(announce),
        dry_run=dry_run,
    )
    return lifecycle, clock, prober, log, store


def kilo_checked_in(nodes: list[NodeState], clock: FakeClock) -> list[NodeState]:
    """The nodes as the controller sees them while Kilo runs: every Ready node checked
    in just now (the sites are planned at the controller's clock)."""
    seen = str(int(clock.wall().timestamp()))
    return [
        replace(n, annotations={**n.annotations, **kilo_annotations(n, seen)})
        if n.ready == "True"
        else n
        for n in nodes
    ]


def kilo_annotations(node: NodeState, seen: str) -> dict[str, str]:
    internal = dict(node.addresses).get("InternalIP", "10.0.0.9")
    return {
        keys.KILO_KEY: "c2NlbmFyaW8gdGVzdCBrZXkgLSBub3QgcmVhbCEhISE=",
        keys.KILO_ENDPOINT: f"{internal}:51820",
        keys.KILO_INTERNAL_IP: f"{internal}/24",
        keys.KILO_LAST_SEEN: seen,
    }


def steps(lifecycle: LifecyclePass, clock: FakeClock, count: int = 4) -> None:
    for i in range(count):
        if i:
            clock.at += timedelta(seconds=20)
        lifecycle.step()


def test_nothing_is_probed_while_every_member_is_ready() -> None:
    lifecycle, clock, prober, log, _ = make(cluster([]))
    steps(lifecycle, clock)
    assert prober.rounds == 0 and log == []


def test_a_dead_node_goes_after_a_minute_of_silence_record_then_event_then_delete() -> None:
    lifecycle, clock, _, log, store = make(cluster(["w-2"]))
    steps(lifecycle, clock, 3)
    assert log == []  # 3 rounds over 40 s: not silent long enough yet
    steps(lifecycle, clock, 2)
    assert log == ["event w-2 after 1 record saves", "delete w-2 uid-w-2 7"]
    assert [d.node for d in store.record.deletions] == ["w-2"]
    assert lifecycle.stats.deleted == ["w-2"]


def test_only_the_lease_holder_probes_or_deletes() -> None:
    lifecycle, clock, prober, log, store = make(cluster(["w-2"]), holder=False)
    steps(lifecycle, clock, 6)
    assert prober.rounds == 0 and log == [] and store.saves == 0


def test_dry_run_deletes_nothing_and_says_what_it_would() -> None:
    lifecycle, clock, _, log, store = make(cluster(["w-2"]), dry_run=True)
    steps(lifecycle, clock, 5)
    assert log == [] and store.saves == 0
    assert "w-2" in lifecycle.stats.would_delete


def test_a_record_that_cannot_be_written_keeps_the_node() -> None:
    lifecycle, clock, _, log, _ = make(cluster(["w-2"]), store=Store(fail=True))
    steps(lifecycle, clock, 5)
    assert log == []


def test_a_node_that_moved_answers_409_and_is_judged_again() -> None:
    lifecycle, clock, _, log, store = make(cluster(["w-2"]), conflict=True)
    steps(lifecycle, clock, 5)
    assert lifecycle.stats.deleted == []
    # each attempt is recorded first, and given back once the DELETE was refused
    assert log == ["event w-2 after 1 record saves", "event w-2 after 3 record saves"]
    assert store.saves == 4
    assert store.record.deletions == ()


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (DeletionRecord(readable=False, problem="not JSON"), "budget-unreadable"),
        ("full", "budget-spent"),
    ],
)
def test_the_hourly_budget_survives_a_restart(record: object, reason: str) -> None:
    clock = FakeClock()
    if record == "full":  # ten deletions in the last hour, recorded by a previous replica
        stored = DeletionRecord(
            tuple(Deletion(clock.at - timedelta(minutes=i), f"old-{i}") for i in range(10))
        )
    else:
        assert isinstance(record, DeletionRecord)
        stored = record
    lifecycle, clock, _, log, _ = make(cluster(["w-2"]), store=Store(stored))
    steps(lifecycle, clock, 5)
    assert log == []
    assert lifecycle.stats.last is not None
    assert reason in {w.reason for w in lifecycle.stats.last.withheld}


def test_the_predicted_leader_is_kept_whatever_its_state() -> None:
    nodes = cluster([])
    nodes[0] = replace(
        cluster(["w-1"])[1], name="gw-1", uid="uid-gw-1", addresses=(("InternalIP", DEAD_IP),)
    )
    lifecycle, clock, _, log, _ = make(nodes, topology=fsn1(scope="all"))
    steps(lifecycle, clock, 5)
    assert log == []


def test_the_record_lives_in_the_status_configmap_beside_the_status(
    apiserver: ApiServer, kube_api: client.ApiClient
) -> None:
    store = KubeStatusStore(kube_api, "default", "topoctl-status")
    store.write({"status.json": "{}", "fetchRequestedAt": "x"}, None)
    records = StatusConfigMap(store)
    assert records.read_record() == DeletionRecord()
    record = DeletionRecord().with_deletions([Deletion(NOW, "w-2")], NOW)
    records.update_record(lambda _stored: record)
    assert records.read_record() == record
    current = store.read()
    assert current is not None and current.data["fetchRequestedAt"] == "x"
    assert json.loads(current.data["deletions"])["deletions"] == [["2026-12-02T20:00:00Z", "w-2"]]


def test_a_nudge_looks_at_once_but_probes_at_most_once_per_interval() -> None:
    lifecycle, clock, prober, _, _ = make(cluster(["w-2"]))
    lifecycle.step()
    lifecycle.nudge()
    lifecycle.step()  # nudged again within the interval: no second round
    assert prober.rounds == 1
    clock.at += timedelta(seconds=20)
    lifecycle.step()
    assert prober.rounds == 2


def test_the_lease_lost_during_the_record_sends_no_delete() -> None:
    lease = Lease()
    lifecycle, clock, _, log, store = make(cluster(["w-2"]), may_write=lease)
    steps(lifecycle, clock, 3)  # not silent long enough yet
    assert log == []
    lease.answers = iter([True, True, False])  # the pass, before the record, after the Event
    clock.at += timedelta(seconds=20)
    lifecycle.step()
    assert log == ["event w-2 after 1 record saves"]  # recorded, announced, not deleted
    assert store.record.deletions == ()  # the budget slot is given back


def test_a_site_whose_kilo_is_silent_deletes_nothing() -> None:
    """Kilo's agents there stopped checking in 100 s before the sites were planned: its
    leader is unknown, and a site whose leader cannot be predicted never loses a member."""
    seen = str(int((NOW - timedelta(seconds=100)).timestamp()))
    nodes = [
        replace(n, annotations={**n.annotations, **kilo_annotations(n, seen)})
        for n in cluster(["w-2"])
    ]
    lifecycle, clock, prober, log, store = make(nodes, kilo=False)
    steps(lifecycle, clock, 6)
    assert prober.rounds == 6
    assert log == [] and store.saves == 0
    decided = lifecycle.stats.last
    assert decided is not None and decided.deletions == ()
    assert any("no Kilo leader can be predicted" in w.text for w in decided.withheld)


class Lease:
    """A lease held until ``answers`` says otherwise (then lost once they run out)."""

    def __init__(self) -> None:
        self.answers: Iterator[bool] | None = None

    def __call__(self) -> bool:
        return True if self.answers is None else next(self.answers, False)


# ------------------------------------------- as deployed: the shipped RBAC, over HTTP


@pytest.fixture
def deployed(shipped: Shipped, tmp_path: Path) -> Iterator[Deployed]:
    """The controller's own wiring as its service account, under the shipped RBAC
    (tests/controller/deployed.py)."""
    with deployed_controller(shipped, tmp_path) as wired:
        yield wired


def test_the_shipped_rbac_lets_the_lifecycle_delete_a_dead_node(deployed: Deployed) -> None:
    lifecycle, apiserver = deployed.controller.lifecycle, deployed.apiserver
    deployed.steps(5)
    assert lifecycle.stats.deleted == ["w-2"]
    assert apiserver.node("w-2") is None
    assert [e.status for e in apiserver.log.filter(verb="delete", resource="nodes")] == [200]
    status = apiserver.get("ConfigMap", "topoctl-status", NAMESPACE)
    assert status is not None and "w-2" in status["data"]["deletions"]
    (event,) = [e for e in apiserver.objects("Event", "default") if e["reason"] == "NodeDeleted"]
    assert "no answer from 10.0.1.2" in event["message"]
    assert apiserver.log.count(status=403) == 0


def test_a_pass_that_cannot_list_node_leases_deletes_nothing_and_says_why(
    deployed: Deployed, caplog: pytest.LogCaptureFixture
) -> None:
    """RBAC without the node-lease grant (deploy/ shipped none): each pass fails in one
    log line, counted and shown in the status; once granted, the next pass deletes."""
    controller, apiserver = deployed.controller, deployed.apiserver
    (grant,) = [
        o
        for o in rbac_objects()
        if o["metadata"]["name"] == "topoctl-node-leases" and o["kind"] == "RoleBinding"
    ]
    apiserver.delete("RoleBinding", "topoctl-node-leases", "kube-node-lease")
    stop = threading.Event()
    seen: list[str | None] = []

    def failed(why: str | None) -> None:
        controller.status.lifecycle_failed(why)
        seen.append(why)
        if len(seen) >= 6:
            stop.set()

    controller.lifecycle.on_failure = failed
    with caplog.at_level(logging.WARNING, logger="topoctl.lifecycle"):
        controller.lifecycle.run(stop)
    assert apiserver.node("w-2") is not None and controller.lifecycle.stats.deleted == []
    assert seen[-1] is not None and 'cannot list resource "leases"' in seen[-1]
    assert "no deletion without the node Leases" in seen[-1]
    warnings = [r for r in caplog.records if r.name == "topoctl.lifecycle"]
    assert warnings and all(r.exc_info is None for r in warnings)  # no traceback
    assert "lifecycle pass failed, nothing deleted" in warnings[-1].getMessage()
    assert controller.metrics.lifecycle_failures._value.get() == len(warnings)
    doc = controller.status.document
    assert "kube-node-lease" in doc["lifecycle"]["lastError"]
    assert "lifecycle: failing since" in status_text(doc)

    apiserver.seed(grant)  # granted again
    controller.lifecycle.on_failure = controller.status.lifecycle_failed
    deployed.steps(2)
    controller.lifecycle.on_failure(None)
    assert controller.lifecycle.stats.deleted == ["w-2"]
    assert controller.status.document["lifecycle"] == {"lastError": None}
