"""The controller's HTTP endpoints on ``--listen``: /metrics, /healthz, /readyz, /hooks/git.

A small threaded server from the standard library. ``/healthz`` asks a liveness callable
(see :class:`Heartbeat`), ``/readyz`` a readiness callable; ``POST /hooks/git`` verifies
the request (``reconciler.controller.webhook``) and only then calls ``request_fetch``.
Without a webhook secret the hook does not exist (404).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from reconciler.controller.webhook import MAX_BODY, verify
from reconciler.ports import Clock

log = logging.getLogger("topoctl.http")
HOOK_PATH = "/hooks/git"
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request


@dataclass(frozen=True)
class Hook:
    """The webhook: its secret, and what a verified request calls."""

    secret: bytes
    request_fetch: Callable[[], None]
    max_body: int = MAX_BODY


class Heartbeat:
    """Liveness of a loop: alive while it has ticked within ``stuck_after`` seconds."""

    def __init__(self, clock: Clock, stuck_after: float) -> None:
        self.clock = clock
        self.stuck_after = stuck_after
        self._last = clock.monotonic()

    def tick(self) -> None:
        """The loop made progress."""
        self._last = self.clock.monotonic()

    def __call__(self) -> bool:
        """Whether the loop ticked recently enough."""
        return self.clock.monotonic() - self._last <= self.stuck_after


def parse_listen(listen: str) -> tuple[str, int]:
    """``0.0.0.0:8080`` / ``[::]:8080`` / ``:8080`` -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


class HttpServer:
    """The endpoints, served from a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        listen: str,
        registry: CollectorRegistry,
        *,
        live: Callable[[], bool],
        ready: Callable[[], bool],
        hook: Hook | None = None,
    ) -> None:
        self.registry = registry
        self.live = live
        self.ready = ready
        self.hook = hook
        handler = type("Handler", (_Handler,), {"endpoints": self})
        self._server = ThreadingHTTPServer(parse_listen(listen), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port bound (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="topoctl-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    endpoints: HttpServer
    timeout = REQUEST_TIMEOUT
    protocol_version = "HTTP/1.1"
    server_version = "topoctl"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._reply(200, encoder(self.endpoints.registry), content_type)
        elif path == "/healthz":
            self._check(self.endpoints.live, "stuck")
        elif path == "/readyz":
            self._check(self.endpoints.ready, "not ready")
        elif path == HOOK_PATH and self.endpoints.hook is not None:
            self._reply(405, b"POST only\n", allow="POST")
        else:
            self._reply(404, b"not found\n")

    def do_POST(self) -> None:
        hook = self.endpoints.hook
        if self.path.split("?", 1)[0] != HOOK_PATH or hook is None:
            self._drain_or_close()
            self._reply(404, b"not found\n")
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._reply(411, b"Content-Length required\n")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._reply(411, b"Content-Length required\n")
            return
        if length < 0 or length > hook.max_body:
            self.close_connection = True  # the body is not read
            self._reply(413, b"body too large\n")
            return
        body = self.rfile.read(length)
        if len(body) != length or not verify(hook.secret, self.headers.get, body):
            log.warning("webhook from %s refused: bad or missing signature", self.client_address[0])
            self._reply(401, b"unauthorized\n")
            return
        hook.request_fetch()
        self._reply(202, b"fetch requested\n")

    def _check(self, probe: Callable[[], bool], failure: str) -> None:
        try:
            ok = probe()
        except Exception:  # a failing probe is a failed check, never a crashed server
            log.exception("health check failed")
            ok = False
        if ok:
            self._reply(200, b"ok\n")
        else:
            self._reply(503, failure.encode() + b"\n")

    def _drain_or_close(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if 0 <= length <= MAX_BODY:
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _reply(
        self,
        code: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        allow: str | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if allow:
            self.send_header("Allow", allow)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.client_address[0], *args)
