"""KubeBackend against the API-server double, through the official client over HTTP.

Each test builds the backend the way the CLI does (``KubeBackend.connect`` on a kubeconfig,
so urllib3's own retries are off and every retry is the backend's), with a retry policy
whose waits are a few milliseconds so fault tests stay fast. The request log is the
witness: it shows every attempt, its status, and when it arrived.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.adapters import kube
from reconciler.adapters.kube import ClusterNotFoundError, KubeBackend, RetryPolicy
from reconciler.cli import main
from reconciler.model.state import NodeState, NodeWrite, StatusWrite, TaintValue
from reconciler.ports import BackendError, ConflictError, NotFoundError
from tests.apiserver import ApiServer
from tests.apiserver.faults import RequestInfo
from tests.apiserver.fixtures import write_kubeconfig

SITES = Path(__file__).resolve().parents[2] / "sites"

# Waits of at most 50 ms: enough to see the retry loop, cheap enough to run often.
FAST = RetryPolicy(attempts=4, max_delay=20.0, initial=0.01, cap=0.05, max_retry_after=5.0)


@pytest.fixture
def backend(kubeconfig_path: Path) -> Iterator[KubeBackend]:
    """The CLI's client configuration (from the kubeconfig), with fast retries."""
    connected = KubeBackend.connect(kubeconfig_path)
    fast = KubeBackend(connected.api, retry=FAST, timeout=(2.0, 2.0))
    try:
        yield fast
    finally:
        fast.close()


@pytest.fixture
def no_cluster_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $KUBECONFIG, an empty home (no ~/.kube/config), not in a pod."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    return home


def seed(apiserver: ApiServer, count: int, prefix: str = "node") -> list[str]:
    names = [f"{prefix}-{i:03d}" for i in range(count)]
    for name in names:
        apiserver.seed_node(name)
    return names


def node(apiserver: ApiServer, name: str) -> dict[str, Any]:
    found = apiserver.node(name)
    assert found is not None, f"node {name} is gone"
    return found


def rv_of(obj: Any) -> str:
    return str(obj["metadata"]["resourceVersion"])


def statuses(apiserver: ApiServer, **criteria: Any) -> list[int]:
    return [e.status for e in apiserver.log.filter(**criteria)]


# ----------------------------------------------------------------- connecting


def test_connect_uses_the_given_kubeconfig(apiserver: ApiServer, kubeconfig_path: Path) -> None:
    apiserver.seed_node("fsn1-gw-1")
    backend = KubeBackend.connect(kubeconfig_path)
    try:
        assert [n["metadata"]["name"] for n in backend.export_nodes()] == ["fsn1-gw-1"]
    finally:
        backend.close()


def test_connect_finds_kubeconfig_through_the_environment(
    apiserver: ApiServer, kubeconfig_path: Path, no_cluster_env: Path, tmp_path: Path
) -> None:
    apiserver.seed_node("fsn1-gw-1")
    missing = tmp_path / "missing"
    # as kubectl does: empty and missing entries of $KUBECONFIG are skipped
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KUBECONFIG", f":{missing}:{kubeconfig_path}")
        backend = KubeBackend.connect()
    try:
        assert [n["metadata"]["name"] for n in backend.export_nodes()] == ["fsn1-gw-1"]
    finally:
        backend.close()


def test_connect_finds_the_home_kubeconfig(
    apiserver: ApiServer, no_cluster_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apiserver.seed_node("fsn1-gw-1")
    (no_cluster_env / ".kube").mkdir()
    write_kubeconfig(no_cluster_env / ".kube" / "config", apiserver.url)
    monkeypatch.setenv("KUBECONFIG", "")  # set but empty counts as unset
    backend = KubeBackend.connect()
    try:
        assert len(backend.export_nodes()) == 1
    finally:
        backend.close()


@pytest.mark.parametrize("kubeconfig_env", [None, "", "/nonexistent/kubeconfig"])
def test_connect_without_kubeconfig_or_pod_is_cluster_not_found(
    no_cluster_env: Path, monkeypatch: pytest.MonkeyPatch, kubeconfig_env: str | None
) -> None:
    if kubeconfig_env is not None:
        monkeypatch.setenv("KUBECONFIG", kubeconfig_env)
    with pytest.raises(ClusterNotFoundError, match="no cluster found"):
        KubeBackend.connect()


def test_cli_without_a_cluster_exits_2_with_a_clear_message(no_cluster_env: Path) -> None:
    result = CliRunner().invoke(main, ["plan", str(SITES)])
    assert result.exit_code == 2, result.output
    assert "no cluster found" in result.stderr
    assert "--kubeconfig" in result.stderr
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "content",
    ["not: [a, kubeconfig", "just a string\n", "apiVersion: v1\nkind: Config\nclusters: 7\n"],
    ids=["bad-yaml", "scalar", "wrong-types"],
)
def test_unreadable_kubeconfig_is_a_backend_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    with pytest.raises(BackendError, match=re.escape(f"kubeconfig {path}: ")):
        KubeBackend.connect(path)


def test_cli_with_an_unreadable_kubeconfig_exits_1_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("just a string\n")
    result = CliRunner().invoke(main, ["plan", str(SITES), "--kubeconfig", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"topoctl: error: kubeconfig {path}")
    assert isinstance(result.exception, SystemExit)


# ---------------------------------------------------------------------- reads


def test_list_pages_through_every_node(apiserver: ApiServer, backend: KubeBackend) -> None:
    names = seed(apiserver, 23)
    backend.page_size = 5

    listed = backend.export_nodes()

    assert [n["metadata"]["name"] for n in listed] == names
    lists = apiserver.log.filter(verb="list")
    assert len(lists) == 5  # 5 + 5 + 5 + 5 + 3
    assert all(e.query["limit"] == "5" for e in lists)
    assert "continue" not in lists[0].query
    assert all(e.query.get("continue") for e in lists[1:])


def test_list_pages_are_one_consistent_snapshot(apiserver: ApiServer, backend: KubeBackend) -> None:
    names = seed(apiserver, 10)
    before = {n["metadata"]["name"]: rv_of(n) for n in apiserver.nodes()}

    def other_writers(_: RequestInfo) -> None:
        # between the first page and the second: a change, a join and a deletion
        apiserver.mutate_node(names[8], lambda n: n["metadata"]["labels"].update(moved="yes"))
        apiserver.seed_node("node-new")
        apiserver.delete("Node", names[9])

    apiserver.faults.before(other_writers, times=1, when=lambda r: "continue" in r.query)
    backend.page_size = 4

    listed = backend.export_nodes()

    # the list is the cluster as it was when the first page was read
    assert {n["metadata"]["name"]: rv_of(n) for n in listed} == before
    assert "moved" not in listed[8]["metadata"]["labels"]
    assert apiserver.log.count(verb="list") == 3


def test_list_restarts_when_the_continue_token_expires(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    """An expired token (etcd compacted mid-list) restarts the list, as client-go's pager
    does, instead of failing the whole plan."""
    names = seed(apiserver, 6)

    def compaction(_: RequestInfo) -> None:
        apiserver.mutate_node(names[0], lambda n: n["metadata"]["labels"].update(moved="yes"))
        apiserver.compact()

    apiserver.faults.before(compaction, times=1, when=lambda r: "continue" in r.query)
    backend.page_size = 4

    listed = backend.export_nodes()

    assert [n["metadata"]["name"] for n in listed] == names
    assert listed[0]["metadata"]["labels"]["moved"] == "yes"  # read after the restart
    assert {n["metadata"]["name"]: rv_of(n) for n in listed} == {
        n["metadata"]["name"]: rv_of(n) for n in apiserver.nodes()
    }
    assert statuses(apiserver, verb="list") == [200, 410, 200]
    assert "limit" not in apiserver.log.filter(verb="list")[-1].query


def test_get_node(apiserver: ApiServer, backend: KubeBackend) -> None:
    seeded = apiserver.seed_node(
        "ams1-gw-1", annotations={"kilo.squat.ai/location": "onprem-ams1"}, internal_ip="10.0.0.1"
    )
    got = backend.get_node("ams1-gw-1")
    assert got.uid == seeded["metadata"]["uid"]
    assert got.resource_version == rv_of(seeded)
    assert got.annotations == {"kilo.squat.ai/location": "onprem-ams1"}
    assert ("InternalIP", "10.0.0.1") in got.addresses


def test_get_missing_node_is_not_found(backend: KubeBackend) -> None:
    with pytest.raises(NotFoundError, match=r"read node ghost: nodes \"ghost\" not found"):
        backend.get_node("ghost")


# --------------------------------------------------------------------- writes


def test_patch_changes_only_the_given_keys(apiserver: ApiServer, backend: KubeBackend) -> None:
    taint = {"key": "dedicated", "value": "gateway", "effect": "NoSchedule"}
    seeded = apiserver.seed_node(
        "ams1-gw-1",
        annotations={"kilo.squat.ai/location": "old", "kilo.squat.ai/leader": "false", "x": "1"},
        labels={"team": "net"},
        taints=[taint],
    )
    patch = {
        "metadata": {
            "resourceVersion": rv_of(seeded),
            "annotations": {"kilo.squat.ai/location": "onprem-ams1", "kilo.squat.ai/leader": None},
            "labels": {"topology.kubernetes.io/zone": "onprem-ams1"},
        }
    }

    returned = backend.write_node(
        NodeWrite(
            "ams1-gw-1",
            rv_of(seeded),
            annotations={"kilo.squat.ai/location": "onprem-ams1", "kilo.squat.ai/leader": None},
            labels={"topology.kubernetes.io/zone": "onprem-ams1"},
        )
    )

    after = node(apiserver, "ams1-gw-1")
    assert returned == NodeState.from_object(after)
    assert after["metadata"]["annotations"] == {"kilo.squat.ai/location": "onprem-ams1", "x": "1"}
    assert after["metadata"]["labels"] == {
        **seeded["metadata"]["labels"],
        "topology.kubernetes.io/zone": "onprem-ams1",
    }
    assert after["spec"] == seeded["spec"]
    assert after["status"] == seeded["status"]
    (sent,) = apiserver.log.filter(verb="patch")
    assert sent.content_type == "application/merge-patch+json"
    assert sent.body == patch


def test_write_status_changes_only_status(apiserver: ApiServer, backend: KubeBackend) -> None:
    seeded = apiserver.seed_node("fsn1-worker-1", internal_ip="10.10.0.5", labels={"a": "b"})
    addresses = [
        {"type": "InternalIP", "address": "10.10.0.5"},
        {"type": "ExternalIP", "address": "203.0.113.50"},
        {"type": "Hostname", "address": "fsn1-worker-1"},
    ]

    backend.write_status(
        StatusWrite(
            "fsn1-worker-1",
            rv_of(seeded),
            addresses=tuple((a["type"], a["address"]) for a in addresses),
        )
    )

    after = node(apiserver, "fsn1-worker-1")
    assert after["status"]["addresses"] == addresses
    assert after["status"]["conditions"] == seeded["status"]["conditions"]
    assert after["metadata"]["labels"] == seeded["metadata"]["labels"]
    assert [e.subresource for e in apiserver.log.filter(verb="patch")] == ["status"]


def test_patch_with_a_stale_resource_version_is_a_conflict(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    seeded = apiserver.seed_node("n1")
    apiserver.mutate_node("n1", lambda n: n["metadata"]["labels"].update(kubelet="moved"))
    moved = node(apiserver, "n1")

    with pytest.raises(ConflictError, match=r"patch node n1: .*the object has been modified"):
        backend.write_node(NodeWrite("n1", rv_of(seeded), labels={"mine": "x"}))

    assert node(apiserver, "n1") == moved
    assert statuses(apiserver, verb="patch") == [409]  # a conflict is not retried blindly


def test_patch_of_a_missing_node_is_not_found(backend: KubeBackend) -> None:
    with pytest.raises(NotFoundError, match="patch node ghost"):
        backend.write_node(NodeWrite("ghost", "5", labels={"a": "b"}))


def test_delete_node_only_while_it_is_the_object_judged_dead(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    seeded = apiserver.seed_node("dead-1", ready=None)
    uid, old_rv = seeded["metadata"]["uid"], rv_of(seeded)
    apiserver.mutate_node("dead-1", lambda n: n["metadata"]["labels"].update(back="yes"))

    with pytest.raises(ConflictError, match="delete node dead-1"):
        backend.delete_node("dead-1", uid, old_rv)  # it moved since it was judged
    with pytest.raises(ConflictError, match="delete node dead-1"):
        backend.delete_node("dead-1", "another-uid", rv_of(node(apiserver, "dead-1")))
    assert apiserver.node("dead-1") is not None

    backend.delete_node("dead-1", uid, rv_of(node(apiserver, "dead-1")))
    assert apiserver.node("dead-1") is None
    with pytest.raises(NotFoundError):
        backend.delete_node("dead-1", uid, old_rv)


# --------------------------------------------------------------------- faults


def read_call(backend: KubeBackend) -> Any:
    return backend.get_node("n1")


def list_call(backend: KubeBackend) -> Any:
    return backend.export_nodes()


def patch_call(backend: KubeBackend) -> Any:
    current = backend.get_node("n1")
    return backend.write_node(NodeWrite("n1", current.resource_version, labels={"mine": "x"}))


CALLS: dict[str, tuple[Callable[[KubeBackend], Any], str, str]] = {
    "get": (read_call, "GET", "get"),
    "list": (list_call, "GET", "list"),
    "patch": (patch_call, "PATCH", "patch"),
}


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_burst_of_server_errors_is_retried_to_success(
    apiserver: ApiServer, backend: KubeBackend, call: str, status: int
) -> None:
    apiserver.seed_node("n1")
    fn, method, verb = CALLS[call]
    apiserver.faults.fail(status, times=FAST.attempts - 1, method=method, path="/nodes")

    fn(backend)

    assert statuses(apiserver, verb=verb) == [status] * (FAST.attempts - 1) + [200]
    if call == "patch":
        assert node(apiserver, "n1")["metadata"]["labels"]["mine"] == "x"


def test_429_waits_at_least_the_retry_after_header(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    apiserver.seed_node("n1")
    apiserver.faults.throttle(retry_after=1, method="PATCH")

    patch_call(backend)

    throttled, accepted = apiserver.log.filter(verb="patch")
    assert (throttled.status, accepted.status) == (429, 200)
    # the backoff alone would wait at most FAST.cap (50 ms): this gap is the header's
    assert accepted.timestamp - throttled.timestamp >= 1.0
    assert node(apiserver, "n1")["metadata"]["labels"]["mine"] == "x"


def test_an_excessive_retry_after_is_capped(apiserver: ApiServer, kubeconfig_path: Path) -> None:
    apiserver.seed_node("n1")
    apiserver.faults.throttle(retry_after=3600, method="GET")
    capped = RetryPolicy(attempts=2, initial=0.01, cap=0.05, max_retry_after=0.05)
    backend = KubeBackend(KubeBackend.connect(kubeconfig_path).api, retry=capped)

    assert backend.get_node("n1").name == "n1"

    throttled, accepted = apiserver.log.filter(verb="get")
    assert (throttled.status, accepted.status) == (429, 200)
    assert accepted.timestamp - throttled.timestamp < 60  # not the hour the server asked for


def test_a_slow_response_within_the_timeout_succeeds(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    apiserver.seed_node("n1")
    apiserver.faults.latency(0.3, path="/nodes")

    assert backend.get_node("n1").name == "n1"
    assert len(backend.export_nodes()) == 1
    patch_call(backend)

    assert all(e.status == 200 for e in apiserver.log.entries)  # one attempt each
    assert len(apiserver.log) == 4


def test_a_response_slower_than_the_timeout_is_retried(
    apiserver: ApiServer, kubeconfig_path: Path
) -> None:
    apiserver.seed_node("n1")
    apiserver.faults.latency(1.5, times=1, method="GET")  # only the first attempt is slow
    impatient = KubeBackend(KubeBackend.connect(kubeconfig_path).api, retry=FAST, timeout=(2, 0.5))

    assert impatient.get_node("n1").name == "n1"
    assert apiserver.log.wait_for(lambda entries: len(entries) == 2)
    assert apiserver.log.count(verb="get") == 2  # the slow one (answered late) and the retry


@pytest.mark.parametrize("call", sorted(CALLS))
def test_reset_connections_are_retried(
    apiserver: ApiServer, backend: KubeBackend, call: str
) -> None:
    apiserver.seed_node("n1")
    fn, method, verb = CALLS[call]
    apiserver.faults.reset(times=2, method=method, path="/nodes")

    fn(backend)

    assert statuses(apiserver, verb=verb) == [0, 0, 200]


def test_a_patch_whose_answer_was_lost_comes_back_as_a_conflict(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    """The retry carries the resourceVersion the lost write already bumped: 409, which the
    executor answers by re-reading the node (and finding nothing left to do)."""
    seeded = apiserver.seed_node("n1")
    apiserver.faults.reset(method="PATCH", after=True)

    with pytest.raises(ConflictError):
        backend.write_node(NodeWrite("n1", rv_of(seeded), labels={"mine": "x"}))

    assert node(apiserver, "n1")["metadata"]["labels"]["mine"] == "x"
    assert statuses(apiserver, verb="patch") == [0, 409]


def test_a_delete_whose_answer_was_lost_comes_back_as_not_found(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    """The node is gone, but the caller hears 404 from the retry: whoever deletes must
    read NotFoundError as done."""
    seeded = apiserver.seed_node("dead-1", ready=None)
    apiserver.faults.reset(method="DELETE", after=True)

    with pytest.raises(NotFoundError, match="delete node dead-1"):
        backend.delete_node("dead-1", seeded["metadata"]["uid"], rv_of(seeded))

    assert apiserver.node("dead-1") is None
    assert statuses(apiserver, verb="delete") == [0, 404]


def test_a_fault_outlasting_the_retry_policy_is_a_clear_backend_error(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    apiserver.seed_node("n1")
    apiserver.faults.fail(503, times=None, message="etcdserver: leader changed")

    with pytest.raises(BackendError) as err:
        backend.get_node("n1")

    assert not isinstance(err.value, ConflictError | NotFoundError)
    assert str(err.value) == (
        "read node n1: HTTP 503: etcdserver: leader changed "
        f"(gave up after {FAST.attempts} attempts)"
    )
    assert statuses(apiserver, verb="get") == [503] * FAST.attempts


def test_connection_resets_outlasting_the_retry_policy_are_a_backend_error(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    apiserver.seed_node("n1")
    apiserver.faults.reset(times=None)

    with pytest.raises(BackendError) as err:
        backend.export_nodes()

    assert str(err.value) == (
        "list nodes: connection aborted: Connection reset by peer "
        f"(gave up after {FAST.attempts} attempts)"
    )
    assert statuses(apiserver, verb="list") == [0] * FAST.attempts


def test_a_client_error_is_not_retried(apiserver: ApiServer, backend: KubeBackend) -> None:
    apiserver.faults.fail(403, times=None, message='nodes is forbidden: User "ci" cannot list')

    with pytest.raises(BackendError, match='list nodes: HTTP 403: nodes is forbidden: User "ci"'):
        backend.export_nodes()

    assert statuses(apiserver, verb="list") == [403]


def test_cli_reports_an_unavailable_api_without_a_traceback(
    apiserver: ApiServer, kubeconfig_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kube, "RetryPolicy", lambda: FAST)  # the CLI's backend, fast retries
    apiserver.faults.fail(503, times=None, message="etcdserver: request timed out")

    result = CliRunner().invoke(main, ["plan", str(SITES), "--kubeconfig", str(kubeconfig_path)])

    assert result.exit_code == 1
    assert result.stderr == (
        "topoctl: error: reading nodes: list nodes: HTTP 503: etcdserver: request timed out "
        f"(gave up after {FAST.attempts} attempts)\n"
    )
    assert isinstance(result.exception, SystemExit)
    assert apiserver.log.count(verb="list") == FAST.attempts


def test_the_entry_point_reports_a_refusal_in_one_line(
    apiserver: ApiServer, kubeconfig_path: Path
) -> None:
    """The console script's entry point, in its own process: one error line, no traceback."""
    apiserver.faults.fail(403, times=None, message='nodes is forbidden: User "ci" cannot list')
    topoctl = [sys.executable, "-c", "from reconciler.cli import run; run()"]

    done = subprocess.run(
        [*topoctl, "plan", str(SITES), "--kubeconfig", str(kubeconfig_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stderr == (
        'topoctl: error: reading nodes: list nodes: HTTP 403: nodes is forbidden: User "ci" '
        "cannot list\n"
    )
    assert done.stdout == ""


# ---------------------------------------------------------------------- watch


class Waiter:
    """``wait_for_change`` in a thread, so a test can act while it waits."""

    def __init__(self, backend: KubeBackend, name: str, rv: str, timeout: float) -> None:
        self.error: BaseException | None = None
        self.changed: bool | None = None

        def run() -> None:
            try:
                self.changed = backend.wait_for_change(name, rv, timeout)
            except BaseException as err:
                self.error = err

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def returned(self, within: float = 10.0) -> bool:
        self.thread.join(within)
        if self.error is not None:
            raise self.error
        return not self.thread.is_alive()


def test_wait_for_change_returns_on_a_modification(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    seeded = apiserver.seed_node("n1")
    apiserver.seed_node("n2")
    waiter = Waiter(backend, "n1", rv_of(seeded), timeout=30)
    assert apiserver.wait_for_watches(1)

    apiserver.mutate_node("n2", lambda n: n["metadata"]["labels"].update(other="node"))
    apiserver.mutate_node("n1", lambda n: n["metadata"]["labels"].update(kilo="moved"))

    assert waiter.returned()
    assert waiter.changed is True
    (opened,) = apiserver.log.filter(verb="watch")
    assert opened.query["fieldSelector"] == "metadata.name=n1"  # other nodes never wake it
    assert opened.query["resourceVersion"] == rv_of(seeded)


def test_wait_for_change_returns_at_once_for_a_change_it_missed(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    seeded = apiserver.seed_node("n1")
    apiserver.mutate_node("n1", lambda n: n["metadata"]["labels"].update(kilo="moved"))

    waiter = Waiter(backend, "n1", rv_of(seeded), timeout=30)
    assert waiter.returned()
    assert waiter.changed is True


def test_wait_for_change_returns_on_timeout(apiserver: ApiServer, backend: KubeBackend) -> None:
    seeded = apiserver.seed_node("n1")

    assert backend.wait_for_change("n1", rv_of(seeded), timeout=1) is False

    (opened,) = apiserver.log.filter(verb="watch")
    assert opened.query["timeoutSeconds"] == "1"


def test_wait_for_change_survives_a_compaction(apiserver: ApiServer, backend: KubeBackend) -> None:
    seeded = apiserver.seed_node("n1")
    apiserver.seed_node("n2")
    apiserver.compact()  # the node's resourceVersion is older than the watch history

    waiter = Waiter(backend, "n1", rv_of(seeded), timeout=30)
    assert waiter.returned()
    assert waiter.changed is True  # 410: the caller re-reads instead


def test_wait_for_change_ends_without_a_change_when_the_server_closes_the_watch(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    seeded = apiserver.seed_node("n1")
    waiter = Waiter(backend, "n1", rv_of(seeded), timeout=30)
    assert apiserver.wait_for_watches(1)

    apiserver.drop_watches(abrupt=False)

    assert waiter.returned()
    assert waiter.changed is False  # the caller still waits out its interval


def test_wait_for_change_reports_a_broken_watch_for_the_caller_to_back_off(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    seeded = apiserver.seed_node("n1")
    waiter = Waiter(backend, "n1", rv_of(seeded), timeout=30)
    assert apiserver.wait_for_watches(1)

    apiserver.drop_watches(abrupt=True)

    with pytest.raises(BackendError, match="watch node n1"):
        waiter.returned()


def test_wait_for_change_reports_a_refused_watch(
    apiserver: ApiServer, backend: KubeBackend
) -> None:
    seeded = apiserver.seed_node("n1")
    apiserver.faults.fail(403, times=None, watch=True, message="watch is forbidden")

    with pytest.raises(BackendError, match="watch node n1: HTTP 403"):
        backend.wait_for_change("n1", rv_of(seeded), timeout=5)


def test_connect_selects_the_given_context(apiserver: ApiServer, tmp_path: Path) -> None:
    apiserver.seed_node("n1")
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- {name: gone, cluster: {server: 'http://127.0.0.1:9'}}\n"  # nothing listens there
        f"- {{name: live, cluster: {{server: '{apiserver.url}'}}}}\n"
        "users:\n"
        "- {name: me, user: {}}\n"
        "contexts:\n"
        "- {name: old, context: {cluster: gone, user: me}}\n"
        "- {name: live, context: {cluster: live, user: me}}\n"
        "current-context: old\n"
    )
    backend = KubeBackend.connect(path, context="live")
    try:
        assert [n["metadata"]["name"] for n in backend.export_nodes()] == ["n1"]
    finally:
        backend.close()


# ---------------------------------------------------------------------- typed port


def test_typed_reads_and_writes_round_trip(apiserver: ApiServer, backend: KubeBackend) -> None:
    """The port's values over real HTTP: a NodeWrite sets and deletes keys and replaces
    taints; a StatusWrite replaces the address list whole (a second InternalIP stays)."""
    apiserver.seed_node("n1", labels={"keep": "1", "drop": "x"}, internal_ip="10.0.0.1")
    before = backend.get_node("n1")
    assert [n.name for n in backend.list_nodes()] == ["n1"]
    assert before.ready == "True" and before.address("InternalIP") == "10.0.0.1"

    written = backend.write_node(
        NodeWrite(
            "n1",
            before.resource_version,
            annotations={"topoctl.io/x": "1"},
            labels={"drop": None, "new": "y"},
            taints=(TaintValue("dedicated", "NoSchedule", "gw"),),
        )
    )
    assert {k: written.labels.get(k) for k in ("keep", "drop", "new")} == {
        "keep": "1",
        "drop": None,
        "new": "y",
    }
    assert written.annotations["topoctl.io/x"] == "1"
    assert written.taints == (TaintValue("dedicated", "NoSchedule", "gw"),)
    assert written == backend.get_node("n1")

    addresses = (("InternalIP", "10.0.0.1"), ("InternalIP", "fd00::1"), ("ExternalIP", "1.2.3.4"))
    status = backend.write_status(StatusWrite("n1", written.resource_version, addresses))
    assert status.addresses == addresses
    assert status.conditions == written.conditions

    with pytest.raises(ConflictError):
        backend.write_node(NodeWrite("n1", written.resource_version, labels={"late": "1"}))
