"""``topoctl run`` as a process: real git, the real client over HTTP against the double.

Each test starts the controller as `topoctl run` would run in its pod (a subprocess, its
own signals, its namespace, its own service account's token and exactly the RBAC
deploy/base ships), pushes commits to a bare repository and reads what happened from the
double: the Nodes, the request log, the Lease and the status ConfigMap, and the
controller's /metrics. A request the shipped RBAC does not grant fails the test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver import ApiServer, make_lease
from tests.controller.gitrepos import BROKEN_EAST, CLUSTER, EAST, Remote
from tests.shipped_rbac import NAMESPACE, Shipped

TOPOCTL = str(Path(sys.executable).parent / "topoctl")
SECRET = b"s3cret"
LOCATION = "kilo.squat.ai/location"
ENDPOINT = "kilo.squat.ai/force-endpoint"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(check: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Run:
    """One `topoctl run` process and its endpoints."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError:
            return 0, ""

    def metric(self, name: str) -> float | None:
        _, text = self.get("/metrics")
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def hook(self, body: bytes | None = None, secret: bytes = SECRET) -> int:
        """A push delivery as GitHub sends one: each a new delivery id and body."""
        delivery = str(uuid.uuid4())
        if body is None:
            body = json.dumps({"ref": "refs/heads/main", "delivery": delivery}).encode()
        signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": signature, "X-GitHub-Delivery": delivery}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/hooks/git", body, headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as err:
            return err.code

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    remote = Remote(tmp_path)
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    return remote


@pytest.fixture
def apiserver(shipped: Shipped) -> Iterator[ApiServer]:
    """The double with deploy/base's RBAC; no test may see a request it refuses."""
    yield shipped.apiserver
    log = shipped.apiserver.log.entries
    assert log and all("authorization" in map(str.lower, e.headers) for e in log)  # the controller
    refused = [(e.method, e.path) for e in log if e.status in (401, 403)]
    assert not refused, refused


@contextmanager
def topoctl_run(
    apiserver: ApiServer, remote: Remote, tmp_path: Path, identity: str = "one", *extra: str
) -> Iterator[Run]:
    shipped = Shipped(apiserver)
    kubeconfig = shipped.kubeconfig(tmp_path / f"kubeconfig-{identity}", shipped.controller_token())
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    port = free_port()
    log = tmp_path / f"run-{identity}.log"
    args = [
        TOPOCTL, "run", "--git-url", remote.url, "--cache-dir", str(tmp_path / identity),
        "--kubeconfig", str(kubeconfig), "--listen", f"127.0.0.1:{port}",
        "--lease-namespace", NAMESPACE, "--identity", identity, "--poll", "1h",
        "--webhook-secret-file", str(secret), "--lease-duration", "3s", *extra,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    run = Run(process, port, log)
    try:
        eventually(lambda: run.get("/healthz")[0] == 200, 30, "/healthz")
        yield run
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def annotation(apiserver: ApiServer, node: str, key: str) -> str | None:
    obj = apiserver.node(node)
    return None if obj is None else (obj["metadata"].get("annotations") or {}).get(key)


def node_writes(apiserver: ApiServer) -> int:
    return sum(
        1 for e in apiserver.log.entries if e.verb in ("patch", "update") and e.resource == "nodes"
    )


def refused_events(apiserver: ApiServer) -> list[dict[str, Any]]:
    return [
        e for e in apiserver.objects("Event", NAMESPACE) if e.get("reason") == "RevisionRefused"
    ]


def status(apiserver: ApiServer) -> dict[str, Any]:
    cm = apiserver.get("ConfigMap", "topoctl-status", NAMESPACE)
    if cm is None:
        return {}  # not published yet
    return dict(json.loads(cm["data"]["status.json"]))


def test_a_push_converges_a_refused_commit_writes_nothing_and_the_fix_lands(
    apiserver: ApiServer, remote: Remote, tmp_path: Path
) -> None:
    apiserver.seed_node("east-gw-1", pod_cidr="10.244.0.0/24")
    with topoctl_run(apiserver, remote, tmp_path) as run:
        eventually(lambda: run.get("/readyz")[0] == 200, 30, "/readyz")
        eventually(lambda: annotation(apiserver, "east-gw-1", LOCATION) == "east", what="east")
        assert annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51820"

        bad = remote.push({"sites/east.yaml": BROKEN_EAST}, "break east")
        time.sleep(0.5)
        writes = node_writes(apiserver)
        assert run.hook() == 202
        eventually(lambda: run.metric("topoctl_revision_refused_total") == 1.0, what="refused")
        eventually(lambda: (status(apiserver).get("refused") or {}).get("revision") == bad)
        refused = status(apiserver)["refused"]
        assert isinstance(refused, dict) and "sites/east.yaml:9:7" in json.dumps(refused)
        assert node_writes(apiserver) == writes  # nothing of the bad commit was applied
        eventually(lambda: bool(refused_events(apiserver)), what="a RevisionRefused Event")
        (event,) = refused_events(apiserver)
        assert event["type"] == "Warning" and bad in event["message"]  # core v1's view
        regarding = event["involvedObject"]
        assert (regarding["kind"], regarding["name"]) == ("ConfigMap", "topoctl-status")
        assert regarding["namespace"] == NAMESPACE

        fixed = remote.push({"sites/east.yaml": EAST.replace("51820", "51821")}, "fix east")
        assert run.hook() == 202
        eventually(
            lambda: annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51821",
            what="the fix",
        )
        eventually(lambda: status(apiserver).get("revision") == fixed, what="status revision")
        assert f'revision="{fixed}"' in run.get("/metrics")[1]


def test_a_joining_node_is_annotated_and_a_bad_signature_fetches_nothing(
    apiserver: ApiServer, remote: Remote, tmp_path: Path
) -> None:
    with topoctl_run(apiserver, remote, tmp_path) as run:
        eventually(lambda: run.get("/readyz")[0] == 200, 30, "/readyz")
        apiserver.seed_node("east-gw-1", pod_cidr="10.244.0.0/24")
        eventually(lambda: annotation(apiserver, "east-gw-1", LOCATION) == "east", what="join")

        remote.push({"sites/east.yaml": EAST.replace("51820", "51829")}, "unannounced")
        assert run.hook(secret=b"wrong") == 401
        assert run.hook(body=b"{}", secret=b"") == 401
        time.sleep(1.0)
        assert annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51820"


def test_only_the_holder_writes_and_sigterm_hands_the_lease_over(
    apiserver: ApiServer, remote: Remote, tmp_path: Path
) -> None:
    apiserver.seed_node("east-gw-1", pod_cidr="10.244.0.0/24")
    with topoctl_run(apiserver, remote, tmp_path, "one") as first:
        eventually(lambda: first.metric("topoctl_leader") == 1.0, what="the first to lead")
        with topoctl_run(apiserver, remote, tmp_path, "two") as second:
            eventually(lambda: second.get("/metrics")[0] == 200, what="the standby's metrics")
            assert second.metric("topoctl_leader") == 0.0
            assert "wrote node" not in second.output()
            first.process.send_signal(signal.SIGTERM)
            assert first.process.wait(timeout=20) == 0
            lease = apiserver.get("Lease", "topoctl", NAMESPACE)
            assert lease is not None
            eventually(lambda: second.metric("topoctl_leader") == 1.0, 10, "the takeover")
            holder = apiserver.get("Lease", "topoctl", NAMESPACE)
            assert holder is not None and holder["spec"]["holderIdentity"] == "two"
    assert os.path.exists(tmp_path / "run-one.log")


def test_a_killed_holder_is_replaced_and_the_new_holder_applies_pushes(
    apiserver: ApiServer, remote: Remote, tmp_path: Path
) -> None:
    apiserver.seed_node("east-gw-1", pod_cidr="10.244.0.0/24")
    with topoctl_run(apiserver, remote, tmp_path, "one") as first:
        eventually(lambda: first.metric("topoctl_leader") == 1.0, what="the first to lead")
        with topoctl_run(apiserver, remote, tmp_path, "two") as second:
            eventually(lambda: second.get("/metrics")[0] == 200, what="the standby's metrics")
            first.process.kill()  # no release: the standby waits the lease out (the
            first.process.wait()  # timing itself is tested on a fake clock: test_leader)
            eventually(lambda: second.metric("topoctl_leader") == 1.0, 30, "the takeover")
            remote.push({"sites/east.yaml": EAST.replace("51820", "51822")}, "after failover")
            assert second.hook() == 202
            eventually(
                lambda: annotation(apiserver, "east-gw-1", ENDPOINT) == "203.0.113.91:51822",
                what="the new holder applying a push",
            )


@pytest.mark.parametrize("held_by", [None, "the-holder"], ids=["no-lease", "expired"])
def test_dry_run_reads_the_lease_and_writes_nothing_at_all(
    apiserver: ApiServer, remote: Remote, tmp_path: Path, held_by: str | None
) -> None:
    apiserver.seed_node("east-gw-1", pod_cidr="10.244.0.0/24")
    if held_by is not None:  # its holder stopped renewing: a standby would take it over
        apiserver.seed(make_lease("topoctl", NAMESPACE, holder=held_by, duration_seconds=1))
    apiserver.log.clear()
    with topoctl_run(apiserver, remote, tmp_path, "dry", "--dry-run") as run:
        eventually(lambda: "dry run: would write node east-gw-1" in run.output(), what="a plan")
        eventually(lambda: "lease" in run.output() and "not taken" in run.output(), 10)
        assert run.hook() == 202  # a webhook: it fetches itself, records nothing
        time.sleep(4.0)  # longer than the 3 s lease: an elector would have taken it
        assert run.metric("topoctl_leader") == 0.0
        run.process.send_signal(signal.SIGTERM)
        assert run.process.wait(timeout=20) == 0
    said = run.output()
    assert (f"the lease is held by {held_by}" if held_by else "nobody holds the lease") in said
    writes = [(e.method, e.path) for e in apiserver.log.writes()]
    assert writes == []  # no Lease, no status, no Event, no Node: nothing
    assert apiserver.log.count(resource="leases", verb="get") >= 1  # it did look
    lease = apiserver.get("Lease", "topoctl", NAMESPACE)
    if held_by is None:
        assert lease is None
    else:
        assert lease is not None and lease["spec"]["holderIdentity"] == held_by
