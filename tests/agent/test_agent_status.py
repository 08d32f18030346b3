"""What the agent writes on its Node: addresses, the taint, the condition.

Through the snapshot backend (a file) and through the API-server double with the real
`kubernetes` client; the kernel is the in-memory route table, so these run without
root (the CLI tests at the end use a real namespace). Concurrent writers act between
the agent's read and its write; whatever they add must survive the agent's pass (a
409, a re-read, a recomputed write).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from reconciler.adapters.kube import KubeBackend
from reconciler.adapters.snapshot import SnapshotBackend
from reconciler.model import keys
from reconciler.model.state import NodeState, NodeWrite, StatusWrite, TaintValue
from reconciler.ports import ConflictError
from reconciler.usecases.agent_pass import Agent, PassReport
from tests import shipped_rbac
from tests.agent.conftest import (
    EXTERNAL_TARGET,
    FIXED_NOW,
    GPU_TAINT,
    KUBELET_INTERNAL_IP,
    NODE,
    NODE_EXTERNAL_IP,
    UNINITIALIZED_TAINT,
    NodeNetwork,
    agent_annotation,
    agent_condition,
    fixed_clock,
    node_object,
    read_node,
    run_cli,
    write_snapshot,
)
from tests.agent.fake_routes import FakeRouteTable
from tests.apiserver import ApiServer, LoggedRequest, RequestInfo, make_node
from tests.conftest import needs_root
from tests.shipped_rbac import Shipped

MERGE_PATCH = "application/merge-patch+json"
OTHER_NODE = "fsn1-worker-x9m4t"
MAINTENANCE_TAINT = {"key": "example.com/maintenance", "value": "true", "effect": "NoSchedule"}
SECOND_FAMILY = {"type": "InternalIP", "address": "fd00:10::3"}
CONVERGED = {
    "type": keys.CONDITION_AGENT,
    "status": "True",
    "reason": "Converged",
    "message": "0 route(s) in place",
    "lastHeartbeatTime": FIXED_NOW,
    "lastTransitionTime": FIXED_NOW,
}


def node_kernel() -> FakeRouteTable:
    """The node's kernel: the route to the external target leaves from its uplink."""
    return FakeRouteTable(sources={EXTERNAL_TARGET: NODE_EXTERNAL_IP})


def run_agent(backend: Any) -> PassReport:
    """One pass of a freshly started agent against `backend` (reader and writer)."""
    return Agent(NODE, backend, backend, node_kernel(), clock=fixed_clock).run_once()


def snapshot_pass(path: Path) -> PassReport:
    backend = SnapshotBackend(path, writable=True)
    report = run_agent(backend)
    backend.commit()
    return report


def addresses(node: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"type": a["type"], "address": a["address"]} for a in node["status"]["addresses"]]


class WriterInTheWay:
    """A backend whose node another writer changes right before the agent's first write.

    `before_status` / `before_spec` get the inner backend and change the node through it
    (reading it first, as kubectl or kubelet would), just before the agent's write.
    """

    def __init__(
        self,
        inner: SnapshotBackend,
        *,
        before_status: Callable[[SnapshotBackend], None] | None = None,
        before_spec: Callable[[SnapshotBackend], None] | None = None,
    ) -> None:
        self.inner = inner
        self.before_status = before_status
        self.before_spec = before_spec
        self.conflicts = 0

    def get_node(self, name: str) -> NodeState:
        return self.inner.get_node(name)

    def write_node(self, write: NodeWrite) -> NodeState:
        if self.before_spec is not None:
            self.before_spec(self.inner)
            self.before_spec = None
        return self._counted(lambda: self.inner.write_node(write))

    def write_status(self, write: StatusWrite) -> NodeState:
        if self.before_status is not None:
            self.before_status(self.inner)
            self.before_status = None
        return self._counted(lambda: self.inner.write_status(write))

    def _counted(self, write: Callable[[], NodeState]) -> NodeState:
        try:
            return write()
        except ConflictError:
            self.conflicts += 1
            raise

    def commit(self) -> None:
        self.inner.commit()


# --- the snapshot backend --------------------------------------------------------------------


@pytest.fixture
def two_node_snapshot(tmp_path: Path) -> Path:
    return write_snapshot(
        tmp_path / "nodes.yaml",
        node_object(NODE, agent_annotation(), taints=(GPU_TAINT, UNINITIALIZED_TAINT)),
        node_object(OTHER_NODE, agent_annotation(), resource_version="1007"),
    )


def test_snapshot_pass_changes_only_addresses_taint_condition_and_version(
    two_node_snapshot: Path,
) -> None:
    before = yaml.safe_load(two_node_snapshot.read_text())

    report = snapshot_pass(two_node_snapshot)

    assert report.converged, report.condition
    assert report.node_writes == ["status: addresses, conditions", "taint: uninitialized removed"]
    after = yaml.safe_load(two_node_snapshot.read_text())
    expected = copy.deepcopy(before)
    ours = expected["items"][0]
    ours["status"]["addresses"].append({"type": "ExternalIP", "address": NODE_EXTERNAL_IP})
    ours["status"]["conditions"].append(CONVERGED)
    ours["spec"]["taints"] = [GPU_TAINT]
    ours["metadata"]["resourceVersion"] = after["items"][0]["metadata"]["resourceVersion"]
    assert after == expected
    assert int(after["items"][0]["metadata"]["resourceVersion"]) > 1007


def test_snapshot_second_pass_writes_nothing(two_node_snapshot: Path) -> None:
    snapshot_pass(two_node_snapshot)
    file_before = two_node_snapshot.read_bytes()

    report = snapshot_pass(two_node_snapshot)

    assert report.converged
    assert report.node_writes == []
    assert two_node_snapshot.read_bytes() == file_before


def test_snapshot_without_settings_reports_them_missing_and_keeps_the_taint(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "nodes.yaml", node_object(NODE, annotation=None))

    report = snapshot_pass(path)

    assert (report.condition.status, report.condition.reason) == ("False", "NoSettings")
    assert report.route_writes == 0
    node = read_node(path)
    assert node["spec"]["taints"] == [UNINITIALIZED_TAINT]
    assert addresses(node) == [
        {"type": "InternalIP", "address": KUBELET_INTERNAL_IP},
        {"type": "Hostname", "address": NODE},
    ]
    assert "topoctl apply" in agent_condition(node)["message"]


def test_snapshot_keeps_the_taint_when_the_topology_says_keep(tmp_path: Path) -> None:
    path = write_snapshot(
        tmp_path / "nodes.yaml", node_object(NODE, agent_annotation(taint="keep"))
    )

    report = snapshot_pass(path)

    assert report.converged
    node = read_node(path)
    assert {"type": "ExternalIP", "address": NODE_EXTERNAL_IP} in addresses(node)
    assert node["spec"]["taints"] == [UNINITIALIZED_TAINT]


def test_snapshot_concurrent_writers_lose_nothing(two_node_snapshot: Path) -> None:
    def kubelet_adds_an_address(backend: SnapshotBackend) -> None:
        node = backend.get_node(NODE)
        second = (SECOND_FAMILY["type"], SECOND_FAMILY["address"])
        backend.write_status(
            StatusWrite(NODE, node.resource_version, addresses=(*node.addresses, second))
        )

    def someone_adds_a_taint(backend: SnapshotBackend) -> None:
        node = backend.get_node(NODE)
        added = TaintValue(MAINTENANCE_TAINT["key"], MAINTENANCE_TAINT["effect"], "true")
        backend.write_node(NodeWrite(NODE, node.resource_version, taints=(*node.taints, added)))

    backend = WriterInTheWay(
        SnapshotBackend(two_node_snapshot, writable=True),
        before_status=kubelet_adds_an_address,
        before_spec=someone_adds_a_taint,
    )

    report = run_agent(backend)
    backend.commit()

    assert report.converged
    assert backend.conflicts == 2
    node = read_node(two_node_snapshot)
    assert addresses(node) == [
        {"type": "InternalIP", "address": KUBELET_INTERNAL_IP},
        {"type": "Hostname", "address": NODE},
        SECOND_FAMILY,
        {"type": "ExternalIP", "address": NODE_EXTERNAL_IP},
    ]
    assert node["spec"]["taints"] == [GPU_TAINT, MAINTENANCE_TAINT]


# --- the API-server double, with the real kubernetes client ----------------------------------


@pytest.fixture
def seeded(apiserver: ApiServer) -> ApiServer:
    """The double holding our node as kubelet registered it, plus an unrelated one, and
    the RBAC deploy/base ships: the agent talks to it with its own service account's
    token, bound to its Node as a pod's token is."""
    apiserver.seed_node(
        make_node(
            NODE,
            annotations={keys.TOPOCTL_AGENT: agent_annotation()},
            taints=[GPU_TAINT, UNINITIALIZED_TAINT],
            internal_ip=KUBELET_INTERNAL_IP,
        )
    )
    apiserver.seed_node(make_node(OTHER_NODE, taints=[UNINITIALIZED_TAINT]))
    shipped_rbac.load(apiserver)
    apiserver.log.clear()
    return apiserver


@pytest.fixture
def agent_api(seeded: ApiServer) -> Iterator[client.ApiClient]:
    """The official client holding the agent's token (its Node's)."""
    shipped = Shipped(seeded)
    api = shipped.api(shipped.agent_token(NODE))
    yield api
    api.close()
    refused = seeded.log.filter(status=403)
    assert not refused, [(e.method, e.path) for e in refused]


@pytest.fixture
def agent_kubeconfig(seeded: ApiServer, tmp_path: Path) -> Path:
    """A kubeconfig for the agent's service account on NODE."""
    shipped = Shipped(seeded)
    return shipped.kubeconfig(tmp_path / "agent-kubeconfig", shipped.agent_token(NODE))


@pytest.fixture
def kube(agent_api: client.ApiClient) -> KubeBackend:
    """The agent's backend over the official client, pointed at the double."""
    return KubeBackend(agent_api)


def node_in(server: ApiServer, name: str = NODE) -> dict[str, Any]:
    node = server.node(name)
    assert node is not None
    return node


def patches(server: ApiServer) -> list[LoggedRequest]:
    return server.log.filter(verb="patch")


def status_of(requests: list[LoggedRequest]) -> list[tuple[str | None, int]]:
    """(subresource, HTTP status) of each request, in order."""
    return [(r.subresource, r.status) for r in requests]


def test_api_patches_are_merge_patches_guarded_by_the_version_they_were_made_from(
    seeded: ApiServer, kube: KubeBackend
) -> None:
    seen_versions: list[str] = []

    def note_version(_: RequestInfo) -> None:
        seen_versions.append(node_in(seeded)["metadata"]["resourceVersion"])

    seeded.faults.before(note_version, method="PATCH", times=None)

    report = run_agent(kube)

    assert report.converged, report.condition
    sent = patches(seeded)
    assert status_of(sent) == [("status", 200), (None, 200)]
    for request, version in zip(sent, seen_versions, strict=True):
        assert request.content_type is not None
        assert request.content_type.split(";")[0] == MERGE_PATCH
        assert request.body["metadata"] == {"resourceVersion": version}
    assert set(sent[0].body) == {"metadata", "status"}
    assert set(sent[0].body["status"]) == {"addresses", "conditions"}
    assert sent[1].body["spec"] == {"taints": [GPU_TAINT]}


def test_api_pass_sets_addresses_lifts_only_the_taint_and_leaves_the_rest(
    seeded: ApiServer, kube: KubeBackend
) -> None:
    before = node_in(seeded)
    other_before = node_in(seeded, OTHER_NODE)

    run_agent(kube)

    after = node_in(seeded)
    assert addresses(after) == [
        {"type": "InternalIP", "address": KUBELET_INTERNAL_IP},
        {"type": "Hostname", "address": NODE},
        {"type": "ExternalIP", "address": NODE_EXTERNAL_IP},
    ]
    assert after["spec"]["taints"] == [GPU_TAINT]
    assert after["status"]["conditions"] == [*before["status"]["conditions"], CONVERGED]
    for unrelated in ("labels", "annotations", "uid", "creationTimestamp"):
        assert after["metadata"][unrelated] == before["metadata"][unrelated]
    for unrelated in ("nodeInfo", "capacity", "allocatable", "images"):
        assert after["status"][unrelated] == before["status"][unrelated]
    assert node_in(seeded, OTHER_NODE) == other_before


def test_api_a_taint_added_between_read_and_write_survives(
    seeded: ApiServer, kube: KubeBackend
) -> None:
    def someone_adds_a_taint(_: RequestInfo) -> None:
        seeded.mutate_node(NODE, lambda n: n["spec"]["taints"].append(MAINTENANCE_TAINT))

    seeded.faults.before(someone_adds_a_taint, method="PATCH", path=rf"/nodes/{NODE}$")

    report = run_agent(kube)

    assert report.converged
    assert status_of(patches(seeded)) == [("status", 200), (None, 409), (None, 200)]
    assert node_in(seeded)["spec"]["taints"] == [GPU_TAINT, MAINTENANCE_TAINT]


def test_api_an_address_added_between_read_and_write_survives(
    seeded: ApiServer, kube: KubeBackend
) -> None:
    def kubelet_adds_an_address(_: RequestInfo) -> None:
        seeded.mutate_node(NODE, lambda n: n["status"]["addresses"].append(SECOND_FAMILY))

    seeded.faults.before(kubelet_adds_an_address, method="PATCH", path=rf"/nodes/{NODE}/status$")

    report = run_agent(kube)

    assert report.converged
    assert status_of(patches(seeded)) == [("status", 409), ("status", 200), (None, 200)]
    node = node_in(seeded)
    assert addresses(node) == [
        {"type": "InternalIP", "address": KUBELET_INTERNAL_IP},
        {"type": "Hostname", "address": NODE},
        SECOND_FAMILY,
        {"type": "ExternalIP", "address": NODE_EXTERNAL_IP},
    ]
    assert agent_condition(node) == CONVERGED
    assert node["spec"]["taints"] == [GPU_TAINT]


def test_api_a_taint_another_writer_already_lifted_is_not_written_again(
    seeded: ApiServer, kube: KubeBackend
) -> None:
    def another_ccm_lifts_it(_: RequestInfo) -> None:
        seeded.mutate_node(NODE, lambda n: n["spec"].update(taints=[GPU_TAINT]))

    seeded.faults.before(another_ccm_lifts_it, method="PATCH", path=rf"/nodes/{NODE}$")

    report = run_agent(kube)

    assert report.converged
    assert status_of(patches(seeded)) == [("status", 200), (None, 409)]
    assert report.node_writes == ["status: addresses, conditions"]
    assert node_in(seeded)["spec"]["taints"] == [GPU_TAINT]


def test_api_a_converged_pass_makes_no_write_request(
    seeded: ApiServer, agent_api: client.ApiClient
) -> None:
    run_agent(KubeBackend(agent_api))
    version = node_in(seeded)["metadata"]["resourceVersion"]
    seeded.log.clear()

    report = run_agent(KubeBackend(agent_api))  # a restarted agent

    assert report.converged
    assert report.node_writes == []
    assert seeded.log.writes() == []
    assert seeded.log.count(verb="get", name=NODE) == 1
    assert node_in(seeded)["metadata"]["resourceVersion"] == version


# --- the real CLI against the double ------------------------------------------------------------


def cli_agent(network: NodeNetwork, kubeconfig: Path) -> tuple[int, str]:
    done = run_cli(
        "agent", "--node", NODE, "--netns", network.name, "--once",
        "--kubeconfig", str(kubeconfig),
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout + done.stderr


@needs_root
def test_cli_against_the_api_converges_then_writes_nothing(
    node_network: NodeNetwork, seeded: ApiServer, agent_kubeconfig: Path
) -> None:
    code, output = cli_agent(node_network, agent_kubeconfig)

    assert code == 0, output
    assert "wrote status: addresses, conditions" in output
    assert "wrote taint: uninitialized removed" in output
    assert node_in(seeded)["spec"]["taints"] == [GPU_TAINT]
    seeded.log.clear()

    code, output = cli_agent(node_network, agent_kubeconfig)

    assert code == 0, output
    assert output.strip() == f"{NODE}: TopologyReady=True (Converged): 0 route(s) in place"
    assert seeded.log.writes() == []


@needs_root
def test_cli_gives_up_cleanly_when_every_write_conflicts(
    node_network: NodeNetwork, seeded: ApiServer, agent_kubeconfig: Path
) -> None:
    heartbeats = itertools.count()

    def kubelet_always_gets_there_first(_: RequestInfo) -> None:
        stamp = f"2030-01-01T00:00:{next(heartbeats):02d}Z"
        seeded.mutate_node(
            NODE, lambda n: n["status"]["conditions"][-1].update(lastHeartbeatTime=stamp)
        )

    seeded.faults.before(
        kubelet_always_gets_there_first, method="PATCH", path=r"/status$", times=None
    )

    code, output = cli_agent(node_network, agent_kubeconfig)

    assert code == 1, output
    assert f"node {NODE}: status still conflicting after retries" in output
    assert seeded.log.count(verb="patch", status=409) == 5
    assert seeded.log.count(verb="patch", status=200) == 0
