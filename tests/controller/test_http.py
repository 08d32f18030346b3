"""The controller's HTTP endpoints, over real requests to 127.0.0.1."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.gitsource import GitRemote
from reconciler.controller.http import Heartbeat, Hook, HttpServer, parse_listen
from reconciler.controller.metrics import Metrics
from reconciler.controller.source import Good, Source
from reconciler.controller.webhook import GITHUB, GITLAB, github_signature
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.controller.gitrepos import CLUSTER, EAST, Remote

SECRET = b"s3cret-for-hooks"
PUSH = b'{"ref": "refs/heads/main", "after": "0123"}'

NAMES = [
    "topoctl_reconcile_total",
    "topoctl_reconcile_duration_seconds_bucket",
    "topoctl_node_writes_total",
    "topoctl_conflicts",
    "topoctl_nodes",
    "topoctl_source_revision_info",
    "topoctl_source_last_success_timestamp_seconds",
    "topoctl_source_errors_total",
    "topoctl_leader",
    "topoctl_watch_restarts_total",
    "topoctl_node_lists_total",
    "topoctl_watch_backoff_seconds",
    "topoctl_agent_ready",
    "topoctl_flapping_keys",
    "topoctl_node_deletions_total",
    "topoctl_node_deletions_withheld_total",
    "topoctl_revision_refused_total",
]


class Endpoints:
    def __init__(self, hook: bool = True) -> None:
        self.base = TimeBase()
        self.heartbeat = Heartbeat(FakeClock(self.base), stuck_after=30.0)
        self.is_ready = False
        self.fetches = 0
        self.metrics = Metrics()
        self.server = HttpServer(
            "127.0.0.1:0",
            self.metrics,
            live=self.heartbeat,
            ready=lambda: self.is_ready,
            hook=Hook(SECRET, self.fetch) if hook else None,
        )

    def fetch(self) -> None:
        self.fetches += 1

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        headers = headers or {}
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read(), response
        finally:
            conn.close()


@pytest.fixture
def endpoints() -> Iterator[Endpoints]:
    e = Endpoints()
    e.server.start()
    yield e
    e.server.stop()


def signed(body: bytes, secret: bytes = SECRET) -> dict[str, str]:
    return {GITHUB: github_signature(secret, body), "X-GitHub-Event": "push"}


def test_metrics_expose_every_name(endpoints: Endpoints) -> None:
    m = endpoints.metrics
    m.revision_in_force("a" * 40)
    m.site("east", {"member": 3, "pending": 1}, conflicts=2, agents_ready=3)
    m.node_deletions.labels("east").inc()
    m.deletions_withheld.labels("east", "site-would-empty").inc()
    m.reconcile_duration.observe(0.01)
    status, body, response = endpoints.request("GET", "/metrics")
    assert status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    for name in NAMES:
        assert f"\n{name}" in text or text.startswith(name), name
    assert f'topoctl_source_revision_info{{revision="{"a" * 40}"}} 1.0' in text
    assert 'topoctl_nodes{site="east",state="unassigned"} 0.0' in text
    assert 'topoctl_reconcile_total{result="success"} 0.0' in text

    m.keep_sites(["west"])
    _, body, _ = endpoints.request("GET", "/metrics")
    assert 'site="east",state' not in body.decode()
    # The process-wide registry is not ours: none of its collectors show up.
    assert "python_gc_objects_collected_total" not in body.decode()


def test_healthz_follows_the_heartbeat(endpoints: Endpoints) -> None:
    assert endpoints.request("GET", "/healthz")[:2] == (200, b"ok\n")
    endpoints.base.advance(31.0)
    assert endpoints.request("GET", "/healthz")[0] == 503
    endpoints.heartbeat.tick()
    assert endpoints.request("GET", "/healthz")[0] == 200


def test_readyz_follows_its_callable(endpoints: Endpoints) -> None:
    assert endpoints.request("GET", "/readyz")[0] == 503
    endpoints.is_ready = True
    assert endpoints.request("GET", "/readyz")[0] == 200


def test_a_signed_github_push_requests_a_fetch(endpoints: Endpoints) -> None:
    status, _, _ = endpoints.request("POST", "/hooks/git", PUSH, signed(PUSH))
    assert status == 202 and endpoints.fetches == 1


def test_a_gitlab_token_requests_a_fetch(endpoints: Endpoints) -> None:
    status, _, _ = endpoints.request("POST", "/hooks/git", PUSH, {GITLAB: SECRET.decode()})
    assert status == 202 and endpoints.fetches == 1


@pytest.mark.parametrize(
    "headers, body",
    [
        ({}, PUSH),
        (signed(PUSH, b"wrong secret"), PUSH),
        (signed(PUSH), PUSH.replace(b"main", b"evil")),  # replayed with a changed body
        ({GITHUB: "sha256="}, PUSH),
        ({GITLAB: "guess"}, PUSH),
    ],
)
def test_unverified_hooks_get_401_and_no_fetch(
    endpoints: Endpoints, headers: dict[str, str], body: bytes
) -> None:
    assert endpoints.request("POST", "/hooks/git", body, headers)[0] == 401
    assert endpoints.fetches == 0


def test_an_oversized_body_gets_413_unread(endpoints: Endpoints) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", endpoints.server.port, timeout=30)
    conn.putrequest("POST", "/hooks/git")
    conn.putheader("Content-Length", str(2 << 20))
    conn.putheader(GITLAB, SECRET.decode())
    conn.endheaders()  # no body sent: the server must answer without waiting for it
    response = conn.getresponse()
    assert response.status == 413
    conn.close()
    assert endpoints.fetches == 0
    chunked = {"Transfer-Encoding": "chunked", GITLAB: SECRET.decode()}
    assert endpoints.request("POST", "/hooks/git", iter([PUSH]), chunked)[0] == 411  # type: ignore[arg-type]
    assert endpoints.fetches == 0


def test_without_a_secret_the_hook_is_off() -> None:
    e = Endpoints(hook=False)
    e.server.start()
    try:
        assert e.request("POST", "/hooks/git", PUSH, signed(PUSH))[0] == 404
        assert e.request("GET", "/hooks/git")[0] == 404
        assert e.request("GET", "/metrics")[0] == 200
    finally:
        e.server.stop()


def test_unknown_paths_and_methods(endpoints: Endpoints) -> None:
    assert endpoints.request("GET", "/nope")[0] == 404
    assert endpoints.request("GET", "/hooks/git")[0] == 405
    assert endpoints.request("POST", "/metrics", b"x")[0] == 404


def test_parse_listen() -> None:
    assert parse_listen("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_listen(":9090") == ("0.0.0.0", 9090)
    assert parse_listen("[::1]:80") == ("::1", 80)
    with pytest.raises(ValueError):
        parse_listen("8080")


def test_a_webhook_makes_the_source_fetch_the_new_commit_at_once(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    taken: list[str] = []
    changed = threading.Event()

    def on_change(good: Good) -> None:
        taken.append(good.revision)
        changed.set()

    source = Source(
        GitRemote(remote.url, tmp_path / "cache"), SystemClock(), poll=3600, on_change=on_change
    )
    server = HttpServer(
        "127.0.0.1:0",
        Metrics(),
        live=lambda: True,
        ready=lambda: source.good is not None,
        hook=Hook(SECRET, source.request_fetch),
    )
    server.start()
    loop = threading.Thread(target=source.run, daemon=True)
    loop.start()
    try:
        assert changed.wait(30)
        changed.clear()
        second = remote.push({"sites/east.yaml": EAST.replace("51820", "51821")})
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("POST", "/hooks/git", body=b"x", headers=signed(b"x", b"bad"))
        refused = conn.getresponse()
        assert (refused.status, refused.read()) == (401, b"unauthorized\n")
        conn.request("POST", "/hooks/git", body=PUSH, headers=signed(PUSH))
        accepted = conn.getresponse()
        assert (accepted.status, accepted.read()) == (202, b"fetch requested\n")
        conn.close()
        assert changed.wait(30)
        assert taken[-1] == second
    finally:
        source.stop()
        loop.join(10)
        server.stop()
