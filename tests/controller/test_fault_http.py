"""The fault matrix, the HTTP surface: slow clients, too many clients, replayed webhooks,
a flood of fetch requests.

Real sockets against the controller's server on 127.0.0.1, its request deadline cut to
1 s so the test is short. Slow clients (slowloris: a request head sent a byte at a time,
each byte in time for any per-read timeout) come from other loopback addresses than the
kubelet's probes and Prometheus, as they would in a cluster.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.adapters.gitsource import GitRemote
from reconciler.controller.http import Hook, HttpServer
from reconciler.controller.metrics import Metrics
from reconciler.controller.source import Source
from reconciler.controller.webhook import github_signature
from reconciler.core.loading.load import SourceFile
from reconciler.model.diagnostics import Diagnostic
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.controller.fault_support import settled
from tests.controller.gitrepos import CLUSTER, EAST, Remote
from tests.controller.loop_support import wait_until

SECRET = b"s3cret-for-hooks"
PUSH = b'{"ref": "refs/heads/main", "after": "0123456789abcdef0123456789abcdef01234567"}'
DEADLINE = 1.0
HEAD = b"GET /healthz HTTP/1.1\r\nHost: topoctl\r\nX-Slow: " + b"x" * 200 + b"\r\n\r\n"


class Served:
    """The server, and what its webhook asked for."""

    def __init__(self) -> None:
        self.fetches = 0
        self.metrics = Metrics()
        self.server = HttpServer(
            "127.0.0.1:0",
            self.metrics,
            live=lambda: True,
            ready=lambda: True,
            hook=Hook(SECRET, self.fetch),
            deadline=DEADLINE,
        )

    def fetch(self) -> None:
        self.fetches += 1

    def get(self, path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def hook(self, body: bytes, **headers: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=5)
        try:
            sent = {"X-Hub-Signature-256": github_signature(SECRET, body), **headers}
            conn.request("POST", "/hooks/git", body=body, headers=sent)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def cut(self, reason: str) -> float:
        sample = self.metrics.registry.get_sample_value(
            "topoctl_http_connections_cut_total", {"reason": reason}
        )
        return sample or 0.0


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served()
    s.server.start()
    yield s
    s.server.stop()


class Slowloris:
    """One slow client: a request head, one byte every ``pace`` seconds, from ``source``."""

    def __init__(self, port: int, source: str, pace: float = 0.2) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), 5, source_address=(source, 0))
        self.pace = pace
        self.closed_after: float | None = None  # seconds until the server closed it
        self.thread = threading.Thread(target=self._dribble, daemon=True)
        self.thread.start()

    def _dribble(self) -> None:
        started = time.monotonic()
        try:
            for byte in HEAD:
                self.sock.sendall(bytes([byte]))
                time.sleep(self.pace)
                self.sock.settimeout(0.0)
                try:
                    if self.sock.recv(1024) == b"":
                        break  # closed by the server
                except BlockingIOError:
                    pass
                finally:
                    self.sock.settimeout(5.0)
        except OSError:
            pass  # reset by the server
        self.closed_after = time.monotonic() - started
        self.sock.close()


def attack(port: int, sources: list[str]) -> list[Slowloris]:
    return [Slowloris(port, source) for source in sources]


def test_forty_slow_clients_hold_nothing_past_the_deadline(served: Served) -> None:
    threads = threading.active_count()
    slow = attack(served.server.port, [f"127.0.0.{10 + i}" for i in range(40)])
    # while they dribble, the probes and the scrape are answered
    for _ in range(5):
        assert served.get("/healthz") == 200
        assert served.get("/metrics") == 200
    # each is cut at the request deadline, however steadily its bytes come
    assert wait_until(lambda: all(s.closed_after is not None for s in slow), timeout=10.0)
    assert max(s.closed_after or 0.0 for s in slow) < DEADLINE + 2.0
    assert served.cut("deadline") >= 40
    assert wait_until(lambda: threading.active_count() <= threads + 1, timeout=5.0)


def test_one_client_gets_a_share_and_the_rest_are_refused(served: Served) -> None:
    slow = attack(served.server.port, ["127.0.0.2"] * 40)
    assert wait_until(lambda: served.cut("capacity") >= 40 - 16, timeout=5.0)
    assert served.get("/healthz") == 200  # another address: not this client's share
    assert wait_until(lambda: all(s.closed_after is not None for s in slow), timeout=10.0)
    refused = sorted(s.closed_after or 0.0 for s in slow)[: 40 - 16]
    assert max(refused) < DEADLINE  # closed at once, unanswered


def test_a_replayed_delivery_costs_nothing(served: Served) -> None:
    delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert served.hook(PUSH, **{"X-GitHub-Delivery": delivery})[0] == 202
    for _ in range(50):  # the same delivery replayed
        status, body = served.hook(PUSH, **{"X-GitHub-Delivery": delivery})
        assert (status, body) == (200, b"delivery seen before: ignored\n")
    for i in range(50):  # the same signed body under made-up ids
        assert served.hook(PUSH, **{"X-GitHub-Delivery": f"forged-{i}"})[0] == 200
    assert served.fetches == 1
    # a new push is a new delivery (GitLab's id as well)
    other = PUSH.replace(b"0123", b"4567")
    assert served.hook(other, **{"X-Gitlab-Event-UUID": "13792a34-cac6-4fda"})[0] == 202
    assert served.fetches == 2
    duplicates = served.metrics.registry.get_sample_value(
        "topoctl_webhook_deliveries_total", {"result": "duplicate"}
    )
    assert duplicates == 100


class HeldFetch:
    """A real git remote whose fetch waits until released (a slow fetch), counting them."""

    def __init__(self, remote: GitRemote) -> None:
        self.remote = remote
        self.fetches = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def describe(self) -> str:
        return self.remote.describe()

    def fetch(self) -> str:
        self.fetches += 1
        self.started.set()
        assert self.release.wait(10.0)
        return self.remote.fetch()

    def read(self, revision: str) -> tuple[list[SourceFile], list[Diagnostic]]:
        return self.remote.read(revision)


def test_fetch_requests_while_a_fetch_runs_cause_one_more_fetch(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    port = HeldFetch(GitRemote(remote.url, tmp_path / "cache"))
    base = TimeBase()
    source = Source(port, FakeClock(base), poll=3600)
    loop = threading.Thread(target=source.run, daemon=True)
    loop.start()
    try:
        assert port.started.wait(10.0)
        for _ in range(100):  # a flood of verified webhooks while the fetch runs
            source.request_fetch()
        port.release.set()
        assert wait_until(lambda: port.fetches >= 2)
        settled(base, loop)  # back to waiting for the poll: no third fetch follows
        assert wait_until(lambda: source.state.fetched is not None)
        time.sleep(0.2)
        assert port.fetches == 2
    finally:
        source.stop()
        loop.join(10.0)
