"""The controller's HTTP endpoints on ``--listen``: /metrics, /healthz, /readyz, /hooks/git.

A small threaded server from the standard library. ``/healthz`` asks a liveness callable
(see :class:`Heartbeat`), ``/readyz`` a readiness callable; ``POST /hooks/git`` verifies
the request (``reconciler.controller.webhook``), drops a delivery seen before (its
delivery id, or the very same body: a replay costs nothing) and only then calls
``request_fetch``. Without a webhook secret the hook does not exist (404).

It holds against slow and many clients, which the standard library's server does not:
each request - its head, its body and the answer - must be done within ``deadline``
seconds of when the server started waiting for it, however slowly the bytes come (a
client sending one byte every few seconds never trips a per-read timeout), and is cut
then; at most ``max_connections`` connections are served at once, ``max_per_client`` of
them from one address, and one over either is closed unanswered. So slow clients hold a
thread for ``deadline`` seconds at most, and forty of them leave /healthz and /metrics
to the others. Cut and refused connections are counted
(``topoctl_http_connections_cut_total{reason}``) and logged at most once a minute.
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import choose_encoder

from reconciler.controller.metrics import Metrics
from reconciler.controller.webhook import MAX_BODY, Deliveries, delivery_keys, verify
from reconciler.ports import Clock

log = logging.getLogger("topoctl.http")
HOOK_PATH = "/hooks/git"
REQUEST_DEADLINE = 10.0  # seconds for a whole request: its head, its body, the answer
MAX_CONNECTIONS = 64  # served at once
MAX_PER_CLIENT = 16  # of them from one address
WARN_EVERY = 60.0  # seconds between warnings about cut connections


@dataclass(frozen=True)
class Hook:
    """The webhook: its secret, what a verified request calls, and the deliveries seen."""

    secret: bytes
    request_fetch: Callable[[], None]
    max_body: int = MAX_BODY
    deliveries: Deliveries = field(default_factory=Deliveries)


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


class _Budget:
    """The time one request has left; a read or write past it raises TimeoutError."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.until = float("inf")
        self.received = 0  # bytes of this request read so far

    def start(self) -> None:
        self.until = time.monotonic() + self.seconds
        self.received = 0

    @property
    def cut(self) -> bool:
        """Whether the deadline passed with a request begun (an idle keep-alive that
        times out was no request)."""
        return self.received > 0 and time.monotonic() >= self.until

    def left(self) -> float:
        left = self.until - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the request took longer than {self.seconds:g}s")
        return left


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, each given only the time its request has left."""

    def __init__(self, sock: socket.socket, budget: _Budget) -> None:
        self.sock, self.budget = sock, budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.sock.settimeout(self.budget.left())
        read = self.sock.recv_into(buffer)
        self.budget.received += read
        return read


class _DeadlineWriter(io.BufferedIOBase):
    """A socket's writes (unbuffered), each given only the time its request has left."""

    def __init__(self, sock: socket.socket, budget: _Budget) -> None:
        self.sock, self.budget = sock, budget

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.sock.settimeout(self.budget.left())
        self.sock.sendall(data)
        with memoryview(data) as view:
            return view.nbytes


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that serves a bounded number of connections."""

    daemon_threads = True
    request_queue_size = 128  # the listen backlog (5 by default): accepted, then judged

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        metrics: Metrics,
        limits: tuple[float, int, int],
    ) -> None:
        super().__init__(address, handler)
        self.metrics = metrics
        self.deadline, self.max_connections, self.max_per_client = limits
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}  # client address -> connections served now
        self._cut = {"deadline": 0, "capacity": 0}
        self._warned_at = float("-inf")

    def process_request(self, request: Any, client_address: Any) -> None:
        client = str(client_address[0])
        with self._lock:
            total = sum(self._open.values())
            if total >= self.max_connections or self._open.get(client, 0) >= self.max_per_client:
                admitted = False
            else:
                admitted = True
                self._open[client] = self._open.get(client, 0) + 1
        if not admitted:
            self.cut("capacity", client)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            client = str(client_address[0])
            with self._lock:
                self._open[client] -= 1
                if not self._open[client]:
                    del self._open[client]

    def cut(self, reason: str, client: str) -> None:
        """A connection closed for ``reason`` (deadline or capacity): counted, and logged
        at most once every WARN_EVERY seconds."""
        self.metrics.http_cut.labels(reason).inc()
        now = time.monotonic()
        with self._lock:
            self._cut[reason] += 1
            if now - self._warned_at < WARN_EVERY:
                return
            self._warned_at = now
            counts = dict(self._cut)
        log.warning(
            "HTTP: connections cut at the %gs request deadline: %d, refused over the cap "
            "(%d at once, %d per client): %d so far; the last from %s",
            self.deadline,
            counts["deadline"],
            self.max_connections,
            self.max_per_client,
            counts["capacity"],
            client,
        )


class HttpServer:
    """The endpoints, served from a daemon thread until :meth:`stop`."""

    def __init__(
        self,
        listen: str,
        metrics: Metrics,
        *,
        live: Callable[[], bool],
        ready: Callable[[], bool],
        hook: Hook | None = None,
        deadline: float = REQUEST_DEADLINE,
        max_connections: int = MAX_CONNECTIONS,
        max_per_client: int = MAX_PER_CLIENT,
    ) -> None:
        self.metrics = metrics
        self.live = live
        self.ready = ready
        self.hook = hook
        handler = type("Handler", (_Handler,), {"endpoints": self})
        limits = (deadline, max_connections, max_per_client)
        self._server = _Server(parse_listen(listen), handler, metrics, limits)
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
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "topoctl"

    def setup(self) -> None:
        super().setup()
        self.budget = _Budget(self.server.deadline)
        self.rfile.close()  # the plain reader: every read goes through the budget instead
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self.budget))
        self.wfile = _DeadlineWriter(self.connection, self.budget)

    def handle_one_request(self) -> None:
        self.budget.start()  # from when the server waits for it (an idle keep-alive too)
        super().handle_one_request()
        if self.budget.cut:
            self.server.cut("deadline", str(self.client_address[0]))

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._reply(200, encoder(self.endpoints.metrics.registry), content_type)
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
        deliveries = self.endpoints.metrics.webhook_deliveries
        if len(body) != length or not verify(hook.secret, self.headers.get, body):
            log.warning("webhook from %s refused: bad or missing signature", self.client_address[0])
            deliveries.labels("refused").inc()
            self._reply(401, b"unauthorized\n")
            return
        if not hook.deliveries.first(delivery_keys(self.headers.get, body)):
            log.info("webhook from %s: a delivery seen before, ignored", self.client_address[0])
            deliveries.labels("duplicate").inc()
            self._reply(200, b"delivery seen before: ignored\n")
            return
        deliveries.labels("accepted").inc()
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
