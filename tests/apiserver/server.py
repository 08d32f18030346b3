"""The HTTP front of the double: routing, content negotiation, watch streaming, faults.

A stdlib `ThreadingHTTPServer` on 127.0.0.1 speaking HTTP/1.1 with keep-alive,
so the official `kubernetes` client (urllib3) and `kubectl` use it as they
would a real kube-apiserver.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import select
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.apiserver import admission, errors, listoptions, openapi, rbac, resources, schema
from tests.apiserver.errors import ApiError
from tests.apiserver.faults import Decision, Faults, LoggedRequest, RequestInfo, RequestLog
from tests.apiserver.resources import NODES, ResourceType
from tests.apiserver.selectors import parse_field_selector, parse_label_selector
from tests.apiserver.store import APPLY_PATCH, PATCH_TYPES, STRATEGIC_PATCH, Store, Warnings

JSON = dict[str, Any]

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def _bool(query: dict[str, str], key: str) -> bool:
    value = query.get(key)
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f"invalid value for {key}: {value!r}")


@dataclass(frozen=True)
class Route:
    """What a request path names."""

    kind: str  # "resource" | "discovery" | "plain"
    verb: str
    rt: ResourceType | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    document: JSON | None = None
    text: str | None = None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ApiServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    server_version = "apiserver-double"
    attrs: rbac.Attributes | None = None  # the request's, once authorized (None: the admin)

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without NODELAY, Nagle plus the
        # client's delayed ACK would add ~40 ms to every response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.api._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    # ------------------------------------------------------------- plumbing

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            for _ in range(1_000_000):
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, code: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for key, value in headers.items():
            if key == "Warning":
                for line in value.split("\n"):
                    self.send_header("Warning", line)
            else:
                self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(code, _encode(body), "application/json", headers or {})

    def _reset(self) -> None:
        """Close the socket with a TCP RST and no answer."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        # The descriptor really closes once rfile/wfile are released in finish(); with
        # SO_LINGER 0 that sends RST instead of FIN.
        self.connection.close()

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except (OSError, ValueError):
            return True

    # -------------------------------------------------------------- request

    def _handle(self) -> None:
        api = self.server.api
        method = self.command.upper()
        split = urlsplit(self.path)
        path = split.path or "/"
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        content_type = self.headers.get("Content-Type")
        raw = self._read_body()
        try:
            route = api.route(method, path, query)
        except ApiError as exc:
            route = Route("error", "unknown")
            route_error: ApiError | None = exc
        else:
            route_error = None
        body: Any = None
        if raw and (content_type is None or "json" in content_type):
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        info = RequestInfo(
            method=method,
            path=path,
            query=query,
            content_type=content_type,
            body=body,
            verb=route.verb,
            resource=route.rt.plural if route.rt else None,
            name=route.name,
            namespace=route.namespace,
            subresource=route.subresource,
        )
        headers_in = dict(self.headers.items())
        try:
            self.attrs = api.access.check(method, path, query, headers_in)
        except ApiError as exc:  # 401 or 403: before any fault, as authn/authz come first
            api._log(info, exc.code, headers_in)
            self._send_json(exc.code, exc.status())
            return
        decision = api.faults.decide(info)
        if decision.latency > 0:
            time.sleep(min(decision.latency, 30.0))
        for hook in decision.hooks:
            try:
                hook(info)
            except Exception as exc:  # surface a broken hook as a 500 the test can see
                decision = dataclasses.replace(
                    decision,
                    status=500,
                    message=f"fault hook failed: {exc!r}",
                    reset=False,
                    reset_after=False,
                )
                break
        if decision.reset:
            api._log(info, 0, headers_in)
            self._reset()
            return
        if route.verb == "watch" and not decision.status and route_error is None:
            try:
                self._watch(route, query, info, expire=decision.expire)  # logs once open
            except ApiError as exc:
                api._log(info, exc.code, headers_in)
                self._send_json(exc.code, exc.status())
            return
        code, payload, ctype, headers = self._respond(
            route, route_error, decision, query, content_type, raw, body
        )
        for hook in decision.after:
            hook(info)  # another writer, reacting to this request once it was served
        if decision.reset_after:
            api._log(info, 0, headers_in)  # served, but the client never gets the answer
            self._reset()
            return
        # log before answering, so a client that has its answer always finds it logged
        api._log(info, code, headers_in)
        try:
            self._send(code, payload, ctype, headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _respond(
        self,
        route: Route,
        route_error: ApiError | None,
        decision: Decision,
        query: dict[str, str],
        content_type: str | None,
        raw: bytes,
        body: Any,
    ) -> tuple[int, bytes, str, dict[str, str]]:
        """Compute (status, payload, content type, headers) for a non-watch request."""
        api = self.server.api
        try:
            if decision.status:
                details = (
                    {"retryAfterSeconds": decision.retry_after}
                    if decision.retry_after is not None
                    else None
                )
                err = ApiError(
                    decision.status,
                    decision.message or f"injected fault: {decision.status}",
                    details=details,
                )
                headers = {}
                if decision.retry_after is not None:
                    headers["Retry-After"] = str(decision.retry_after)
                return decision.status, _encode(err.status()), "application/json", headers
            if route_error is not None:
                raise route_error
            if route.kind == "plain":
                if route.text is None:
                    return 404, b"404 page not found\n", "text/plain; charset=utf-8", {}
                return 200, route.text.encode(), "text/plain; charset=utf-8", {}
            if route.kind == "discovery":
                return 200, _encode(route.document), "application/json", {}
            status, result, headers = api.serve(
                route, query, content_type, raw, body, self.headers.get("Accept", ""), self.attrs
            )
            return status, _encode(result), "application/json", headers
        except ApiError as exc:
            return exc.code, _encode(exc.status()), "application/json", {}
        except Exception as exc:  # a bug in the double: answer 500 so the test sees it
            bug = ApiError(500, f"apiserver double bug: {exc!r}")
            return 500, _encode(bug.status()), "application/json", {}

    # ---------------------------------------------------------------- watch

    def _watch(
        self, route: Route, query: dict[str, str], info: RequestInfo, *, expire: bool = False
    ) -> None:
        api = self.server.api
        rt = route.rt
        assert rt is not None
        listoptions.validate(query, watch=True)
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), rt.field_getters())
        bookmarks = _bool(query, "allowWatchBookmarks")
        send_initial = _bool(query, "sendInitialEvents")
        timeout = api.max_watch_seconds
        if query.get("timeoutSeconds"):
            try:
                timeout = min(float(query["timeoutSeconds"]), timeout)
            except ValueError:
                raise errors.bad_request("invalid timeoutSeconds") from None
        sub, start_rv = api.store.subscribe(
            rt,
            route.namespace,
            resource_version=query.get("resourceVersion"),
            labels=labels,
            fields=fields,
            send_initial_events=send_initial,
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        api._log(info, 200, dict(self.headers.items()))

        def write(event_type: str, obj: JSON) -> None:
            line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":"))
            data = line.encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def bookmark(rv: int, annotations: dict[str, str] | None = None) -> None:
            meta: JSON = {"resourceVersion": str(rv)}
            if annotations:
                meta["annotations"] = annotations
            write("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta})

        try:
            if expire and sub.expired is None:  # an injected 410 (Faults.expire)
                sub.expired = errors.expired(f"too old resource version: {start_rv}")
            if sub.expired is not None:
                write("ERROR", sub.expired.status())
                self.wfile.write(b"0\r\n\r\n")
                return
            deadline = time.monotonic() + timeout
            next_bookmark = time.monotonic() + api.bookmark_interval
            initial_pending = send_initial and bookmarks
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                wait = min(deadline - now, 0.2)
                if bookmarks:
                    wait = min(wait, max(next_bookmark - now, 0.0))
                if initial_pending:
                    wait = 0.0
                events = sub.wait(wait)
                if sub.dropped:
                    if sub.abrupt:
                        sub.close()
                        self._reset()
                        return
                    break
                if api.stopping:
                    break
                for event in events:
                    seen = sub.translate(event)
                    if seen is not None:
                        write(seen[0], rt.view(seen[1]))
                if sub.ending:
                    break  # its CRD is gone: the events it had are out, the stream ends
                if initial_pending:
                    bookmark(start_rv, {"k8s.io/initial-events-end": "true"})
                    initial_pending = False
                if bookmarks and time.monotonic() >= next_bookmark:
                    bookmark(sub.current_rv())
                    next_bookmark = time.monotonic() + api.bookmark_interval
                if not events and self._client_gone():
                    return
            sub.close()  # unregistered before the client can see the end of the stream
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
        finally:
            sub.close()


class ApiServer:
    """A Kubernetes API-server double (127.0.0.1 unless started on another host), for the
    real client, kubectl and Kilo's agent.

    `store` holds the objects, `faults` injects failures, `log` records requests.
    """

    def __init__(
        self,
        *,
        history_limit: int = 100_000,
        bookmark_interval: float = 1.0,
        max_watch_seconds: float = 60.0,
        kube_version: tuple[int, int, int] = (1, 32, 4),
    ) -> None:
        self.store = Store(history_limit=history_limit)
        self.access = rbac.Access(self.store)
        self.admission = admission.Admission(self.store)
        self.faults = Faults()
        self.log = RequestLog()
        self.bookmark_interval = bookmark_interval
        self.max_watch_seconds = max_watch_seconds
        self.kube_version = kube_version
        self.stopping = False
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.host = "127.0.0.1"

    # ------------------------------------------------------------ lifecycle

    def start(self, port: int = 0, host: str = "127.0.0.1") -> ApiServer:
        """Bind `host`:`port` (0: an ephemeral port) and serve in a background thread.

        `host` is an address of this network namespace: another namespace reaches the
        double on an address routed to it (the mesh harness binds a veth's address).
        """
        httpd = _HTTPServer((host, port), _Handler)
        self.host = host
        httpd.api = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            daemon=True,
            name=f"apiserver-double:{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: end watches, close connections, release the port."""
        if self._httpd is None:
            return
        self.stopping = True
        self.store.close()
        self._httpd.shutdown()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """`http://HOST:PORT` (`http://127.0.0.1:PORT` unless started on another host)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _log(self, info: RequestInfo, status: int, headers: dict[str, str]) -> None:
        self.log.append(
            LoggedRequest(
                method=info.method,
                path=info.path,
                query=info.query,
                content_type=info.content_type,
                status=status,
                timestamp=time.time(),
                verb=info.verb,
                resource=info.resource,
                name=info.name,
                namespace=info.namespace,
                subresource=info.subresource,
                body=info.body,
                headers=headers,
            )
        )

    # -------------------------------------------------------------- routing

    def route(self, method: str, path: str, query: dict[str, str]) -> Route:
        """Map a request path to discovery, a plain endpoint or a resource."""
        if path in ("/healthz", "/livez", "/readyz"):
            return Route("plain", "health", text="ok")
        if path == "/version":
            major, minor, patch = self.kube_version
            return Route(
                "discovery",
                "discovery",
                document={
                    "major": str(major),
                    "minor": str(minor),
                    "gitVersion": f"v{major}.{minor}.{patch}",
                    "gitCommit": "0" * 40,
                    "gitTreeState": "clean",
                    "buildDate": "2025-01-01T00:00:00Z",
                    "goVersion": "go1.23.0",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                },
            )
        if path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            return self._openapi(path.removeprefix("/openapi/v3").strip("/"))
        segs = [s for s in path.split("/") if s]
        if not segs or segs[0] not in ("api", "apis"):
            return Route("plain", "other")
        if segs[0] == "api":
            if len(segs) == 1:
                return Route(
                    "discovery",
                    "discovery",
                    document=resources.api_versions(f"{self.host}:{self.port}"),
                )
            group, version, rest = "", segs[1], segs[2:]
        else:
            if len(segs) == 1:
                return Route("discovery", "discovery", document=self.store.types.api_group_list())
            if len(segs) == 2:
                doc = self.store.types.api_group(segs[1])
                if doc is None:
                    return Route("plain", "other")
                return Route("discovery", "discovery", document=doc)
            group, version, rest = segs[1], segs[2], segs[3:]
        if not rest:
            doc = self.store.types.api_resource_list(group, version)
            if doc is None:
                return Route("plain", "other")
            return Route("discovery", "discovery", document=doc)
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            nested = self.store.types.lookup(group, version, rest[2])
            if nested is not None and nested.namespaced:
                namespace, rest = rest[1], rest[2:]
        rt = self.store.types.lookup(group, version, rest[0])
        if rt is None or len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and not (
            (sub == "status" and rt.status_subresource) or (sub == "token" and rt.token_subresource)
        ):
            raise ApiError(404, "the server could not find the requested resource")
        if name is not None and rt.namespaced and namespace is None:
            raise ApiError(404, "the server could not find the requested resource")
        verbs = {
            ("GET", True): "get",
            ("PUT", True): "update",
            ("PATCH", True): "patch",
            ("DELETE", True): "delete",
            ("POST", False): "create",
            ("DELETE", False): "deletecollection",
        }
        if sub == "token":
            if method != "POST":
                raise errors.method_not_allowed(method)
            verb = "create"
        elif method == "GET" and name is None:
            verb = "watch" if _bool(query, "watch") else "list"
        else:
            found = verbs.get((method, name is not None))
            if found is None or (sub is not None and found not in ("get", "update", "patch")):
                raise errors.method_not_allowed(method)
            verb = found
        return Route("resource", verb, rt=rt, namespace=namespace, name=name, subresource=sub)

    def _openapi(self, gv: str) -> Route:
        version = "v{}.{}.{}".format(*self.kube_version)
        types = self.store.types.all()
        if not gv:
            return Route("discovery", "discovery", document=openapi.index(types, version))
        doc = openapi.document(types, version, gv)
        if doc is None:
            return Route("plain", "other")
        return Route("discovery", "discovery", document=doc)

    # -------------------------------------------------------------- serving

    def serve(
        self,
        route: Route,
        query: dict[str, str],
        content_type: str | None,
        raw: bytes,
        body: Any,
        accept: str,
        attrs: rbac.Attributes | None = None,
        *,
        admitted: bool = False,
    ) -> tuple[int, Any, dict[str, str]]:
        """Serve one non-watch resource request: (status, body, headers)."""
        rt = route.rt
        assert rt is not None
        reviewed = route.verb in admission.WRITES and route.subresource != "token"
        if reviewed and not admitted and self.admission.active():
            return self._admitted(route, query, content_type, raw, body, accept, attrs)
        store = self.store
        ns = route.namespace
        dry_run = query.get("dryRun") == "All"
        if query.get("dryRun") not in (None, "", "All"):
            raise errors.bad_request(f"dryRun: Unsupported value: {query['dryRun']!r}")
        strict = query.get("fieldValidation") == "Strict"
        warnings = Warnings()
        wants_table = "as=Table" in accept
        media = (content_type or "").split(";")[0].strip().lower()

        def parsed_body() -> Any:
            if media and "json" not in media:
                raise ApiError(
                    415,
                    f"the body of the request was in an unknown format - accepted media types "
                    f'include: application/json, application/yaml (got "{media}")',
                )
            if isinstance(body, str):
                raise errors.bad_request(f"invalid JSON body: {body[:200]!r}")
            return body

        status = 200
        if route.verb == "get":
            obj = store.get(rt, ns, route.name or "")
            if wants_table:
                result: Any = resources.table(
                    rt, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                )
            else:
                result = obj
        elif route.verb == "list":
            listoptions.validate(query, watch=False)
            listed = store.list_objects(
                rt,
                ns,
                labels=parse_label_selector(query.get("labelSelector")),
                fields=parse_field_selector(query.get("fieldSelector"), rt.field_getters()),
                limit=_int(query, "limit"),
                continue_token=query.get("continue") or None,
                resource_version=query.get("resourceVersion"),
                resource_version_match=query.get("resourceVersionMatch"),
            )
            result = (
                resources.table(rt, listed["items"], listed["metadata"]) if wants_table else listed
            )
        elif route.subresource == "token":
            result = self.access.token_request(ns or "", route.name or "", parsed_body())
            status = 201
        elif route.verb == "create":
            result = store.create(
                rt, ns, parsed_body(), dry_run=dry_run, strict=strict, warnings=warnings
            )
            status = 201
        elif route.verb == "update":
            result, created = store.update(
                rt,
                ns,
                route.name or "",
                parsed_body(),
                subresource=route.subresource,
                dry_run=dry_run,
                strict=strict,
                warnings=warnings,
            )
            status = 201 if created else 200
        elif route.verb == "patch":
            if media == APPLY_PATCH:
                raise ApiError(
                    415,
                    "the body of the request was in an unknown format - accepted media types "
                    "include: application/json-patch+json, application/merge-patch+json, "
                    "application/strategic-merge-patch+json (server-side apply is not "
                    "supported by the API-server double)",
                )
            if rt.custom and media == STRATEGIC_PATCH:
                raise ApiError(
                    415,
                    "the body of the request was in an unknown format - accepted media types "
                    "include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml",
                )
            if media not in PATCH_TYPES:
                raise ApiError(
                    415,
                    "the body of the request was in an unknown format - accepted media types "
                    "include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml, application/strategic-merge-patch+json",
                )
            if isinstance(body, str) or body is None:
                raise errors.bad_request("invalid JSON patch body")
            result = store.patch(
                rt,
                ns,
                route.name or "",
                media,
                body,
                subresource=route.subresource,
                dry_run=dry_run,
                strict=strict,
                warnings=warnings,
            )
        elif route.verb == "delete":
            options = parsed_body() if raw else None
            options = dict(options or {})
            if query.get("propagationPolicy"):
                options.setdefault("propagationPolicy", query["propagationPolicy"])
            result, _ = store.delete(rt, ns, route.name or "", options, dry_run=dry_run)
        elif route.verb == "deletecollection":
            options = parsed_body() if raw else None
            result = store.delete_collection(
                rt,
                ns,
                parse_label_selector(query.get("labelSelector")),
                parse_field_selector(query.get("fieldSelector"), rt.field_getters()),
                options,
                dry_run=dry_run,
            )
        else:
            raise errors.method_not_allowed(route.verb)
        headers = {}
        if warnings.messages:
            headers["Warning"] = "\n".join(
                f'299 - "{m.replace(chr(34), chr(92) + chr(34))}"' for m in warnings.messages
            )
        return status, result, headers

    def _admitted(
        self,
        route: Route,
        query: dict[str, str],
        content_type: str | None,
        raw: bytes,
        body: Any,
        accept: str,
        attrs: rbac.Attributes | None,
    ) -> tuple[int, Any, dict[str, str]]:
        """A write the stored admission policies review first, on the object the same
        write would store (computed as a dry run), under the store's lock."""
        rt = route.rt
        assert rt is not None
        with self.store.lock:
            old = None
            if route.name:
                with contextlib.suppress(ApiError):
                    old = self.store.get(rt, route.namespace, route.name)
            obj = None
            if route.verb != "delete":
                dry = {**query, "dryRun": "All"}
                _, obj, _ = self.serve(route, dry, content_type, raw, body, accept, admitted=True)
            name = route.name or ((obj or {}).get("metadata") or {}).get("name", "")
            request = admission.request_for(
                rt, route.verb, attrs, name, route.namespace or "", route.subresource or "",
                query.get("dryRun") == "All",
            )  # fmt: skip
            if request is not None:
                self.admission.review(request, obj, old)
            return self.serve(route, query, content_type, raw, body, accept, attrs, admitted=True)

    # ------------------------------------------------------------ test API

    def compact(self, rv: int | None = None) -> int:
        """Forget watch history up to `rv` (default: now). Returns the compacted resourceVersion.

        A watch (or continue token) from an older resourceVersion then gets 410 Expired.
        """
        return self.store.compact(rv)

    def drop_watches(self, *, abrupt: bool = False) -> int:
        """End every open watch: cleanly (end of stream) or `abrupt`ly (TCP reset)."""
        return self.store.drop_watches(abrupt=abrupt)

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion."""
        return self.store.rv

    @property
    def open_watches(self) -> int:
        """Number of open watch streams."""
        return self.store.open_watches

    def wait_for_watches(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Poll until at least `count` watches are open; returns whether that happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.store.open_watches >= count:
                return True
            time.sleep(0.005)
        return self.store.open_watches >= count

    def seed(self, *objects: JSON) -> list[JSON]:
        """Create objects directly (by their kind/apiVersion); status is kept as given."""
        out = []
        for obj in objects:
            rt = self.store.types.by_kind(obj.get("kind") or "", obj.get("apiVersion"))
            ns = (obj.get("metadata") or {}).get("namespace") if rt.namespaced else None
            out.append(schema.clone(self.store.create(rt, ns, obj)))
        return out

    def token(
        self, namespace: str, name: str, *, node: str | None = None, seconds: int = 3600
    ) -> str:
        """A token for ServiceAccount namespace/name, minted as TokenRequest mints it (bound
        to Node `node`, whose name admission then sees, as for a pod on that node)."""
        spec: JSON = {"expirationSeconds": seconds}
        if node is not None:
            spec["boundObjectRef"] = {"kind": "Node", "apiVersion": "v1", "name": node}
        issued = self.access.token_request(namespace, name, {"spec": spec})
        return str(issued["status"]["token"])

    def seed_node(self, node: JSON | str, **kwargs: Any) -> JSON:
        """Create one Node: a full object, or a name plus `make_node` keyword arguments."""
        from tests.apiserver.builders import make_node

        obj = make_node(node, **kwargs) if isinstance(node, str) else node
        return self.seed({"kind": "Node", "apiVersion": "v1", **obj})[0]

    def get(self, kind: str, name: str, namespace: str | None = None) -> JSON | None:
        """One object by kind or plural (`Node`, `leases`), or None."""
        rt = self.store.types.by_kind(kind)
        try:
            return schema.clone_doc(self.store.get(rt, namespace, name))
        except ApiError:
            return None

    def node(self, name: str) -> JSON | None:
        """One Node, or None."""
        return self.get("Node", name)

    def nodes(self) -> list[JSON]:
        """All Nodes, sorted by name."""
        return self.store.objects(NODES)

    def objects(self, kind: str, namespace: str | None = None) -> list[JSON]:
        """All objects of a kind (optionally in one namespace)."""
        return self.store.objects(self.store.types.by_kind(kind), namespace)

    def mutate(
        self, kind: str, name: str, fn: Callable[[JSON], None], namespace: str | None = None
    ) -> JSON:
        """Change an object as another writer would (bumps resourceVersion, emits MODIFIED)."""
        return self.store.mutate(self.store.types.by_kind(kind), namespace, name, fn)

    def mutate_node(self, name: str, fn: Callable[[JSON], None]) -> JSON:
        """`mutate` for a Node: both spec and status changes apply."""
        return self.mutate("Node", name, fn)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete an object directly (emits DELETED)."""
        self.store.delete(self.store.types.by_kind(kind), namespace, name)


def _encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def _int(query: dict[str, str], key: str) -> int | None:
    value = query.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"invalid {key}: {value!r}") from None
