"""Deleting a dead node through the real client against the API-server double: only the
very object the plan judged (uid and resourceVersion preconditions), after the writes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.kube import KubeBackend
from reconciler.core.lifecycle.record import DeletionRecord
from reconciler.core.planning import savedplan
from reconciler.core.planning.plan import Plan
from reconciler.usecases import apply as applying
from reconciler.usecases.apply import ApplyResult, apply_once
from reconciler.usecases.deletion import DeletionPorts
from reconciler.usecases.executor import StalePlanError
from reconciler.usecases.lifecycle import Eyes
from reconciler.usecases.plan import plan_once
from tests.apiserver import ApiServer
from tests.core.test_lifecycle_plan import FakeClock, FakeProber, fsn1

DEAD = "w-2"
DEAD_IP = "10.0.1.2"


@pytest.fixture
def backend(kubeconfig_path: Path) -> Iterator[KubeBackend]:
    connected = KubeBackend.connect(kubeconfig_path)
    try:
        yield connected
    finally:
        connected.close()


@pytest.fixture
def cluster(apiserver: ApiServer) -> ApiServer:
    """gw-1 and five pool workers; w-2's kubelet stopped reporting (Ready Unknown)."""
    apiserver.seed_node("gw-1", internal_ip="10.0.0.1", pod_cidr="10.244.0.0/24")
    for i in range(1, 6):
        name = f"w-{i}"
        ready = None if name == DEAD else True
        apiserver.seed_node(name, internal_ip=f"10.0.1.{i}", pod_cidr="10.244.1.0/24", ready=ready)
    return apiserver


def plan_with_probes(backend: KubeBackend) -> Plan:
    """A plan an hour after w-2 went NotReady, with w-2 silent to every probe."""
    clock = FakeClock(datetime.now(UTC) + timedelta(hours=1))
    eyes = Eyes(clock, FakeProber(clock, {DEAD_IP}))
    return plan_once(fsn1(), backend, eyes=eyes).plan


def converge(backend: KubeBackend) -> None:
    """Apply the topology first, so the next plan holds only the deletion."""
    result = apply_once(fsn1(), backend, lambda _plan: True)
    assert result.report is not None and result.report.ok


def apply_saved(plan: Plan, backend: KubeBackend) -> ApplyResult:
    loaded, _ = savedplan.load(savedplan.dump(plan, {}))
    return applying.apply_saved(
        loaded, backend, lambda _p: True, 1, DeletionPorts(backend, SystemClock())
    )


def test_a_saved_plan_deletes_the_dead_node_with_preconditions(
    cluster: ApiServer, backend: KubeBackend
) -> None:
    converge(backend)
    plan = plan_with_probes(backend)
    assert [d.node for d in plan.deletions] == [DEAD] and not plan.writes

    result = apply_saved(plan, backend)

    assert result.report is not None and result.report.deleted == [DEAD]
    assert cluster.node(DEAD) is None
    assert all(cluster.node(f"w-{i}") is not None for i in (1, 3, 4, 5))
    deletes = cluster.log.filter(verb="delete")
    assert [e.status for e in deletes] == [200]


def test_a_node_that_moved_since_the_plan_is_kept(cluster: ApiServer, backend: KubeBackend) -> None:
    converge(backend)
    plan = plan_with_probes(backend)
    cluster.mutate_node(DEAD, lambda n: n["metadata"]["labels"].update(back="yes"))

    result = apply_saved(plan, backend)

    assert result.report is not None and result.report.deleted == []
    assert "changed since it was judged dead" in result.report.kept[DEAD]
    assert cluster.node(DEAD) is not None
    assert [e.status for e in cluster.log.filter(verb="delete")] == [409]


def test_a_node_re_registered_under_the_same_name_is_not_deleted(
    cluster: ApiServer, backend: KubeBackend
) -> None:
    converge(backend)
    plan = plan_with_probes(backend)
    old = cluster.node(DEAD)
    assert old is not None
    backend.delete_node(DEAD, old["metadata"]["uid"], old["metadata"]["resourceVersion"])
    cluster.seed_node(DEAD, internal_ip=DEAD_IP, pod_cidr="10.244.1.0/24")

    with pytest.raises(StalePlanError, match="w-2 was replaced"):
        apply_saved(plan, backend)
    assert cluster.node(DEAD) is not None


def test_the_command_line_deletes_as_the_controller_does_recorded_and_announced(
    cluster: ApiServer, backend: KubeBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`topoctl apply --probe`'s deletion: a dead node with writes pending is spared them
    (they would move its resourceVersion), its deletion enters the controller's record
    (one hourly budget for both) and a NodeDeleted Event carries the evidence."""
    from reconciler.cli.common import deletion_for

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))  # the lease namespace: default
    plan = plan_with_probes(backend)  # not converged: w-2 has writes pending too
    assert DEAD in {n.node for n in plan.writes}
    result = applying.apply_saved(plan, backend, lambda _p: True, 1, deletion_for(backend))

    assert result.report is not None and result.report.deleted == [DEAD]
    assert cluster.node(DEAD) is None
    status = cluster.get("ConfigMap", "topoctl-status", "default")
    assert status is not None and DEAD in status["data"]["deletions"]
    events = [e for e in cluster.objects("Event", "default") if e.get("reason") == "NodeDeleted"]
    assert len(events) == 1 and "no answer from 10.0.1.2" in events[0]["message"]


def test_the_command_line_gives_the_budget_slot_back_when_the_delete_is_refused(
    cluster: ApiServer, backend: KubeBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A deletion the command line recorded and announced, but whose DELETE was refused (the
    node moved since it was judged: 409), gives its slot of the hourly budget back, as the
    controller does (docs/lifecycle.md): the budget counts deletions done."""
    from reconciler.cli.common import deletion_for

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))  # the lease namespace: default
    converge(backend)
    plan = plan_with_probes(backend)
    cluster.mutate_node(DEAD, lambda n: n["metadata"]["labels"].update(back="yes"))

    result = applying.apply_saved(plan, backend, lambda _p: True, 1, deletion_for(backend))

    assert result.report is not None and result.report.deleted == []
    assert "changed since it was judged dead" in result.report.kept[DEAD]
    assert cluster.node(DEAD) is not None
    assert [e.status for e in cluster.log.filter(verb="delete")] == [409]
    events = [e for e in cluster.objects("Event", "default") if e.get("reason") == "NodeDeleted"]
    assert len(events) == 1  # recorded and announced before the DELETE was tried
    status = cluster.get("ConfigMap", "topoctl-status", "default")
    assert status is not None
    assert DeletionRecord.parse(status["data"]["deletions"]) == DeletionRecord()


def test_a_node_with_a_253_character_name_is_announced_then_deleted(
    apiserver: ApiServer, backend: KubeBackend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Its NodeDeleted Event gets a valid name (the node's cut), so the deletion it must
    precede goes ahead; with an invalid name (422) the node would be kept for ever."""
    from reconciler.cli.common import deletion_for

    dead = "w-" + "x" * 61 + "." + ("y" * 62 + ".") * 2 + "z" * 63
    assert len(dead) == 253
    apiserver.seed_node("gw-1", internal_ip="10.0.0.1", pod_cidr="10.244.0.0/24")
    for i in (1, 3, 4, 5):
        apiserver.seed_node(f"w-{i}", internal_ip=f"10.0.1.{i}", pod_cidr="10.244.1.0/24")
    hostname = {"kubernetes.io/hostname": "w-dead"}  # a label value holds 63 characters
    apiserver.seed_node(
        dead, internal_ip=DEAD_IP, pod_cidr="10.244.1.0/24", ready=None, labels=hostname
    )
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))  # the lease namespace: default
    converge(backend)
    plan = plan_with_probes(backend)
    assert [d.node for d in plan.deletions] == [dead]

    result = applying.apply_saved(plan, backend, lambda _p: True, 1, deletion_for(backend))

    assert result.report is not None and result.report.deleted == [dead]
    assert apiserver.node(dead) is None
    (event,) = [e for e in apiserver.objects("Event", "default") if e["reason"] == "NodeDeleted"]
    assert event["involvedObject"]["name"] == dead and len(event["metadata"]["name"]) <= 253
    order = [(e.verb, e.resource) for e in apiserver.log if e.verb in ("create", "delete")]
    assert order.index(("create", "events")) < order.index(("delete", "nodes"))
