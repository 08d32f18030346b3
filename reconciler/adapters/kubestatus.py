"""The status ConfigMap and Node Events through the official client, as JSON.

The ConfigMap is replaced whole under its resourceVersion (409: ConflictError, the
caller reads it again and merges): others' keys in it (``fetchRequestedAt``) and its
annotations (``topoctl.io/requested-at``) are the caller's to keep. Events are
``events.k8s.io/v1`` in the ``default`` namespace, where client-go records events about
cluster-scoped objects; a repeat is a merge patch of the event's ``series``. No retries
here: the status module publishes again later. With a WriteGate (the controller's
lease), each write is admitted by it immediately before it is sent, with its time left
as the request's whole timeout when shorter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reconciler.adapters.kube import MERGE_PATCH, _translate
from reconciler.adapters.kubelease import format_microtime
from reconciler.model.names import event_name
from reconciler.model.records import EventRecord, StatusRecord
from reconciler.ports import BackendError, NotFoundError, WriteGate

EVENTS_NAMESPACE = "default"
CONTROLLER = "topoctl.io/controller"


TIMEOUT = (5.0, 15.0)  # connect, read (seconds)


def _timeout(gate: WriteGate | None, what: str) -> float | tuple[float, float]:
    """A write's timeout: admitted by the gate just now, if there is one."""
    return TIMEOUT if gate is None else min(gate.admit(what), sum(TIMEOUT))


def _call(
    what: str,
    method: Any,
    *args: Any,
    _timeout: float | tuple[float, float] = TIMEOUT,
    **kwargs: Any,
) -> dict[str, Any]:
    try:
        response = method(*args, _preload_content=False, _request_timeout=_timeout, **kwargs)
        data = response.data
    except ApiException as err:
        raise _translate(what, err) from None
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise BackendError(f"{what}: {err}") from None
    return json.loads(data) if data else {}


class KubeStatusStore:
    """One ConfigMap."""

    def __init__(
        self, api: client.ApiClient, namespace: str, name: str, gate: WriteGate | None = None
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.name = name
        self.gate = gate

    def read(self) -> StatusRecord | None:
        """The ConfigMap's data, or None when it does not exist."""
        try:
            doc = _call(
                f"read configmap {self.namespace}/{self.name}",
                self.core.read_namespaced_config_map,
                self.name,
                self.namespace,
            )
        except NotFoundError:
            return None
        meta = doc.get("metadata") or {}
        data = {str(k): str(v) for k, v in (doc.get("data") or {}).items()}
        notes = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        return StatusRecord(data, str(meta.get("resourceVersion") or ""), notes)

    def write(
        self,
        data: Mapping[str, str],
        resource_version: str | None,
        annotations: Mapping[str, str] | None = None,
    ) -> StatusRecord:
        """Create, or replace under ``resource_version`` (a replace sets the annotations
        too: the caller passes those it read, so none is lost)."""
        meta: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/name": "topoctl"},
        }
        if annotations:
            meta["annotations"] = dict(annotations)
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}
        what = f"write configmap {self.namespace}/{self.name}"
        if resource_version is None:
            method: Any = self.core.create_namespaced_config_map
            args: tuple[Any, ...] = (self.namespace, body)
        else:
            meta["resourceVersion"] = resource_version
            method = self.core.replace_namespaced_config_map
            args = (self.name, self.namespace, body)
        doc = _call(what, method, *args, _timeout=_timeout(self.gate, what))
        version = str((doc.get("metadata") or {}).get("resourceVersion") or "")
        return StatusRecord(dict(data), version, dict(annotations or {}))


class KubeEventSink:
    """Events about Nodes, as one reporting instance."""

    def __init__(
        self,
        api: client.ApiClient,
        instance: str,
        namespace: str = EVENTS_NAMESPACE,
        gate: WriteGate | None = None,
    ) -> None:
        self.events = client.EventsV1Api(api)
        self.instance = instance
        self.namespace = namespace
        self.gate = gate

    def create(self, event: EventRecord) -> str:
        """A new Event; its name is the node's plus a hash, as client-go names them (the
        node's cut to fit, see :func:`~reconciler.model.names.event_name`)."""
        stamp = format_microtime(event.time)
        digest = hashlib.sha256(f"{event.node}/{event.reason}/{stamp}".encode()).hexdigest()
        name = event_name(event.node, digest[:16])
        regarding = {"apiVersion": "v1", "kind": event.kind, "name": event.node}
        if event.kind != "Node":  # namespaced: the Event lives beside the object
            regarding["namespace"] = self.namespace
        if event.node_uid:
            regarding["uid"] = event.node_uid
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": self.namespace},
            "eventTime": stamp,
            "reportingController": CONTROLLER,
            "reportingInstance": self.instance,
            "action": event.action,
            "reason": event.reason,
            "regarding": regarding,
            "note": event.note[:1024],
            "type": event.type,
        }
        what = f"create event {name}"
        _call(what, self._post, body, _timeout=_timeout(self.gate, what))
        return name

    def _post(self, body: dict[str, Any], **kwargs: Any) -> Any:
        """POST the JSON as built: the typed create validates it into a model first and
        renders eventTime without the six fractional digits MicroTime needs (a 400)."""
        api = self.events.api_client
        request = api.param_serialize(
            method="POST",
            resource_path="/apis/events.k8s.io/v1/namespaces/{namespace}/events",
            path_params={"namespace": self.namespace},
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*request, _request_timeout=kwargs.get("_request_timeout"))
        response.read()
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response

    def update_series(self, name: str, event: EventRecord) -> None:
        """The series of an event seen again."""
        patch = {
            "series": {"count": event.count, "lastObservedTime": format_microtime(event.time)},
            "note": event.note[:1024],
        }
        what = f"patch event {name}"
        _call(
            what,
            self.events.patch_namespaced_event,
            name,
            self.namespace,
            patch,
            _content_type=MERGE_PATCH,
            _timeout=_timeout(self.gate, what),
        )
