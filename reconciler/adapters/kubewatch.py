"""List and watch Nodes through the official client, as the ClusterWatcher port.

The list pages through :class:`KubeBackend` (its retries, its 410-between-pages
relist) and keeps the list's resourceVersion. The watch is the API's chunked JSON lines
read raw: no model objects, and no ``watch.Watch().stream``, which raises ``KeyError:
'raw_object'`` on an in-stream ERROR event when ``deserialize=False`` and so hides the
410 Expired a compaction sends. Here an ERROR event with code 410 is ExpiredError (the
caller lists again); any other ERROR, a dropped stream or a timeout is BackendError
(the caller reconnects with backoff). Only what planning needs is kept of each Node
(:class:`NodeState`: no images, no nodeInfo).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any, Literal, cast

import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from reconciler.adapters.kube import KubeBackend, _translate, node_state
from reconciler.model.state import NodeEvent, NodeState
from reconciler.ports import BackendError, ExpiredError

EventKind = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
_KINDS = frozenset({"ADDED", "MODIFIED", "DELETED"})
READ_SLACK = 10.0  # seconds a read may outlast the watch's own timeout before it is dead


class KubeWatcher:
    """ClusterWatcher over the Kubernetes API."""

    def __init__(self, backend: KubeBackend, connect_timeout: float = 5.0) -> None:
        self.backend = backend
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._response: Any = None
        self._closed = False

    def list_nodes_versioned(self) -> tuple[list[NodeState], str]:
        """Every node and the list's resourceVersion."""
        objects, version = self.backend.list_node_objects()
        return [node_state(o, "list nodes") for o in objects], version

    def watch_nodes(self, resource_version: str, timeout: float) -> Iterator[NodeEvent]:
        """Events after ``resource_version``, bookmarks included, for up to ``timeout`` s."""
        seconds = max(1, int(timeout))
        try:
            response: Any = self.backend.core.list_node(
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=seconds,
                _preload_content=False,
                _request_timeout=(self.connect_timeout, seconds + READ_SLACK),
            )
        except ApiException as err:
            raise _translate("watch nodes", err) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise BackendError(f"watch nodes: {err}") from None
        with self._lock:
            self._response = response
            closed = self._closed
        if closed:
            _shutdown(response)
        try:
            status = int(getattr(response, "status", 200))
            if not 200 <= status <= 299:
                raise _translate("watch nodes", _api_error(response, status))
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                event = _event(line)
                if event is not None:
                    yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
            raise BackendError(f"watch nodes: the stream broke ({err})") from None
        finally:
            with self._lock:
                self._response = None
            with contextlib.suppress(Exception):
                response.close()
                response.release_conn()

    def close(self) -> None:
        """End the open watch, and any later one, at once (from another thread)."""
        with self._lock:
            self._closed = True
            response = self._response
        _shutdown(response)


def _shutdown(response: Any) -> None:
    """Shut the stream's socket down: a read blocked on it returns (urllib3 >= 2.3 keeps
    the socket for this; the connection object has let go of it by then)."""
    if response is not None:
        # ValueError: the stream ended and gave its socket back meanwhile
        with contextlib.suppress(OSError, AttributeError, ValueError):
            response.shutdown()


def _api_error(response: Any, status: int) -> ApiException:
    err = ApiException(status=status, reason=getattr(response, "reason", ""))
    with contextlib.suppress(Exception):
        err.body = response.data.decode()
    return err


def _event(line: str) -> NodeEvent | None:
    """One watch line as the port's event; ERROR lines raise."""
    if not line.strip():
        return None
    doc = json.loads(line)
    kind = doc.get("type")
    obj = doc.get("object") or {}
    if kind == "ERROR":
        code = obj.get("code")
        message = f"watch nodes: {obj.get('reason', '')}: {obj.get('message', '')}"
        if code == 410:
            raise ExpiredError(message)
        raise BackendError(f"{message} (HTTP {code})")
    version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    if kind == "BOOKMARK":
        return NodeEvent("BOOKMARK", version)
    if kind in _KINDS:
        return NodeEvent(cast(EventKind, kind), version, node_state(obj, f"watch nodes ({kind})"))
    return None
