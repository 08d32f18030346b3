"""Nodes through the Kubernetes API, with the official ``kubernetes`` client.

Responses are read as raw JSON (no model objects: thousands of nodes stay cheap) and
handed on as the port's NodeState values. Writes are merge patches (adapters/patches.py)
that carry the resourceVersion they were computed against.
Transient faults - 5xx, 429 (honouring Retry-After), timeouts, resets - are retried
with capped, jittered exponential backoff; 409 and 404 become the port's
ConflictError and NotFoundError for the executor to handle, and a Retry-After that
outlasted the retries ThrottledError, carrying it. With a WriteGate (the controller's
lease), every write request - each attempt - is admitted by it immediately before it
is sent, and its whole timeout is the gate's time left, when shorter than its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from reconciler.adapters.patches import node_patch, status_patch
from reconciler.model.shape import ShapeError
from reconciler.model.state import NodeState, NodeWrite, StatusWrite
from reconciler.ports import (
    BackendError,
    ConflictError,
    ExpiredError,
    NodeObject,
    NotFoundError,
    ThrottledError,
    WriteGate,
)

log = logging.getLogger("topoctl.kube")
MERGE_PATCH = "application/merge-patch+json"
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class ClusterNotFoundError(BackendError):
    """No kubeconfig and not in a pod: there is no cluster to talk to."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry a transient fault."""

    attempts: int = 6
    max_delay: float = 60.0  # the whole call, seconds
    initial: float = 0.2
    cap: float = 10.0  # one wait, seconds
    max_retry_after: float = 30.0


def is_transient(err: BaseException) -> bool:
    """Worth retrying: overload, server faults, timeouts, dropped connections."""
    if isinstance(err, ApiException):
        return err.status in TRANSIENT_STATUS or err.status == 0
    return isinstance(err, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def retry_after(err: BaseException | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form), if any."""
    if not isinstance(err, ApiException) or not err.headers:
        return None
    value = err.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class KubeBackend:
    """Reader and writer of Nodes over the Kubernetes API."""

    def __init__(
        self,
        api: client.ApiClient,
        retry: RetryPolicy | None = None,
        page_size: int = 500,
        timeout: tuple[float, float] = (5.0, 30.0),
        gate: WriteGate | None = None,
    ) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.retry = retry or RetryPolicy()
        self.page_size = page_size
        self.timeout = timeout
        self.gate = gate
        self._backoff = wait_random_exponential(multiplier=self.retry.initial, max=self.retry.cap)

    @classmethod
    def connect(
        cls, kubeconfig: Path | None = None, context: str | None = None, parallel: int = 4
    ) -> KubeBackend:
        """Find the cluster as kubectl does: the given kubeconfig, ``$KUBECONFIG``,
        ``~/.kube/config``, then the pod's service account."""
        configuration = client.Configuration()
        path = str(kubeconfig) if kubeconfig is not None else _default_kubeconfig()
        try:
            if path is not None:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    path, context=context, client_configuration=configuration
                )
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            else:
                raise ClusterNotFoundError(
                    "no cluster found: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not in "
                    "a pod - pass --kubeconfig, or --cluster nodes.yaml for a snapshot"
                )
        except config.ConfigException as err:
            raise BackendError(f"kubeconfig {path}: {err}") from None
        except (OSError, yaml.YAMLError, TypeError, ValueError, AttributeError, KeyError) as err:
            # the loader assumes a well-formed file and trips over anything else
            raise BackendError(f"kubeconfig {path}: not a readable kubeconfig ({err})") from None
        configuration.retries = False  # retries are ours, with backoff and Retry-After
        configuration.connection_pool_maxsize = max(parallel, 4)
        return cls(client.ApiClient(configuration))

    def close(self) -> None:
        """Release the connection pool."""
        self.api.close()  # type: ignore[no-untyped-call]

    # --- reads ---

    def list_nodes(self) -> list[NodeState]:
        """Every node, as the values topoctl reads."""
        return [node_state(n, "list nodes") for n in self.export_nodes()]

    def export_nodes(self) -> list[NodeObject]:
        """Every node object, paging through ``limit``/``continue`` over one snapshot."""
        return self.list_node_objects()[0]

    def list_node_objects(self) -> tuple[list[NodeObject], str]:
        """Every node object and the list's resourceVersion (to watch from).

        Pages of one list share its snapshot. If the snapshot expires between pages (410:
        etcd compacted it), the pages read so far are dropped and the nodes listed again
        in one unpaged request, as client-go's pager does: mixing pages from two moments
        would not be one consistent list.
        """
        items: list[NodeObject] = []
        token: str | None = None
        version = ""
        while True:
            kwargs: dict[str, Any] = {"limit": self.page_size}
            if token:
                kwargs["_continue"] = token
            try:
                page = self._call("list nodes", self.core.list_node, **kwargs)
            except ExpiredError:
                if not token:
                    raise
                log.info("node list expired between pages; listing again without paging")
                page = self._call("list nodes", self.core.list_node)
                return list(page.get("items") or []), _list_version(page)
            items += page.get("items") or []
            version = version or _list_version(page)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, version

    def get_node(self, name: str) -> NodeState:
        """One node."""
        return node_state(self._call(f"read node {name}", self.core.read_node, name), name)

    # --- writes ---

    def write_node(self, write: NodeWrite) -> NodeState:
        """One merge patch, resourceVersion-guarded."""
        return node_state(
            self._call(
                f"patch node {write.name}",
                self.core.patch_node,
                write.name,
                node_patch(write),
                _content_type=MERGE_PATCH,
                _write=True,
            ),
            write.name,
        )

    def write_status(self, write: StatusWrite) -> NodeState:
        """One merge patch of the status subresource, resourceVersion-guarded."""
        return node_state(
            self._call(
                f"patch node {write.name} status",
                self.core.patch_node_status,
                write.name,
                status_patch(write),
                _content_type=MERGE_PATCH,
                _write=True,
            ),
            write.name,
        )

    def delete_node(self, name: str, uid: str, resource_version: str) -> None:
        """Delete a node only if it is still the very object that was judged dead."""
        body = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid, resource_version=resource_version)
        )
        self._call(f"delete node {name}", self.core.delete_node, name, body=body, _write=True)

    def wait_for_change(self, name: str, resource_version: str, timeout: float) -> bool:
        """Block until the node changes after ``resource_version`` (True), or ``timeout``
        passes or the server ends the stream (False).

        A version compacted away (410) counts as a change: the caller re-reads the node.
        A refused or broken watch raises BackendError, for the caller to back off.
        """
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        try:
            for event in stream.stream(  # type: ignore[no-untyped-call]
                self.core.list_node,
                field_selector=f"metadata.name={name}",
                resource_version=resource_version,
                timeout_seconds=max(1, int(timeout)),
                allow_watch_bookmarks=True,
            ):
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                    return True
            return False
        except ApiException as err:
            if err.status == 410:
                log.info("watch on node %s: version %s expired; re-reading", name, resource_version)
                return True
            raise _translate(f"watch node {name}", err) from None
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, ValueError) as err:
            raise BackendError(f"watch node {name}: {_reason(err)}") from None
        finally:
            stream.stop()  # type: ignore[no-untyped-call]

    def commit(self) -> None:
        """Nothing to do: every API write is already durable."""

    # --- plumbing ---

    def _wait(self, state: RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        hinted = retry_after(err)
        if hinted is not None:
            return min(hinted, self.retry.max_retry_after)
        return float(self._backoff(state))

    def _request_timeout(self, what: str, write: bool) -> float | tuple[float, float]:
        """The request's timeout: for a write through a gate, admitted just now."""
        if not write or self.gate is None:
            return self.timeout
        return min(self.gate.admit(what), sum(self.timeout))

    def _call(
        self, what: str, method: Any, *args: Any, _write: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=self._wait,
            stop=stop_after_attempt(self.retry.attempts) | stop_after_delay(self.retry.max_delay),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    timeout = self._request_timeout(what, _write)
                    response = method(
                        *args, _preload_content=False, _request_timeout=timeout, **kwargs
                    )
                    data = response.data
            return json.loads(data) if data else {}
        except ApiException as err:
            raise _translate(what, err, _gave_up(retrying, err)) from None
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as err:
            raise BackendError(f"{what}: {_reason(err)}{_gave_up(retrying, err)}") from None


def _list_version(page: NodeObject) -> str:
    return str((page.get("metadata") or {}).get("resourceVersion") or "")


def node_state(obj: Mapping[str, Any], where: str) -> NodeState:
    """The values topoctl reads of a Node the API returned; a Node of a shape topoctl
    cannot read (which an API server validating its objects never sends) is a
    BackendError naming it, never a crash."""
    try:
        return NodeState.from_object(obj)
    except ShapeError as err:
        raise BackendError(f"{where}: a Node topoctl cannot read: {err}") from None


def _default_kubeconfig() -> str | None:
    """The existing files of ``$KUBECONFIG`` (merged by the loader, as kubectl merges
    them), else ``~/.kube/config`` if it exists. Empty entries, and an empty variable,
    count as unset, as they do for kubectl."""
    entries = [e for e in os.environ.get("KUBECONFIG", "").split(os.pathsep) if e]
    found = [e for e in entries or ["~/.kube/config"] if Path(e).expanduser().is_file()]
    return os.pathsep.join(found) if found else None


def _gave_up(retrying: Retrying, err: BaseException) -> str:
    """Say so when a transient fault outlasted the retries."""
    attempts = int(retrying.statistics.get("attempt_number", 1))
    return f" (gave up after {attempts} attempts)" if attempts > 1 and is_transient(err) else ""


def _reason(err: BaseException) -> str:
    """A transport failure in words, without urllib3's tuple repr:
    ``connection aborted: Connection reset by peer``."""
    args = err.args
    if (
        isinstance(err, urllib3.exceptions.ProtocolError)
        and len(args) == 2
        and isinstance(args[1], BaseException)
    ):
        inner = args[1]
        detail = inner.strerror if isinstance(inner, OSError) and inner.strerror else str(inner)
        return f"{str(args[0]).rstrip('.').lower()}: {detail or type(inner).__name__}"
    return str(err)


def _translate(what: str, err: ApiException, gave_up: str = "") -> BackendError:
    message = err.reason or ""
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        message = json.loads(err.body or "").get("message", message)
    if err.status == 409:
        return ConflictError(f"{what}: {message}")
    if err.status == 404:
        return NotFoundError(f"{what}: {message}")
    if err.status == 410:
        return ExpiredError(f"{what}: {message}")
    hinted = retry_after(err)
    if err.status in (429, 503) and hinted is not None:
        text = f"{what}: HTTP {err.status}: {message} (Retry-After {hinted:g}s){gave_up}"
        return ThrottledError(text, hinted)
    return BackendError(f"{what}: HTTP {err.status}: {message}{gave_up}")
