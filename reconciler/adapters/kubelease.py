"""One Lease through the official client, read and written as JSON.

Reads use ``CoordinationV1Api.read_namespaced_lease`` with the raw answer (no
``V1Lease``: the models are strict, and a field a newer server adds must not stop
the loop). Writes cannot go through the typed ``create/replace_namespaced_lease``:
client 37 validates the body into a ``V1Lease`` and sends its datetimes with
``isoformat()``, which drops the fraction when the microsecond is 0, and
kube-apiserver parses MicroTime with Go's ``RFC3339Micro`` layout, which demands
six fractional digits (one renewal in a million would get a 400). So the body is
built here, MicroTime as ``2006-01-02T15:04:05.000000Z``, and sent with the same
``ApiClient`` (``param_serialize`` + ``call_api``: its transport, auth and TLS).

No retries here: the election loop retries every retry period, and a retry
that outlives the renew deadline would be worse than none. 409 becomes
LeaseConflictError; every other failure (5xx, timeouts, resets) LeaseError.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from reconciler.core.election.lease import LeaseObject, LeaseSpec, default_namespace
from reconciler.ports import LeaseConflictError, LeaseError

MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def format_microtime(value: datetime) -> str:
    """metav1.MicroTime as the API server renders it (UTC, six fractional digits)."""
    if value.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant")
    return value.astimezone(UTC).strftime(MICROTIME)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 Time or MicroTime from the API, as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    with contextlib.suppress(ValueError):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def spec_to_json(spec: LeaseSpec) -> dict[str, Any]:
    """The Lease spec as the API takes it (absent fields left out, as Go omits them)."""
    out: dict[str, Any] = {}
    if spec.holder:
        out["holderIdentity"] = spec.holder
    if spec.duration_seconds is not None:
        out["leaseDurationSeconds"] = spec.duration_seconds
    if spec.acquire_time is not None:
        out["acquireTime"] = format_microtime(spec.acquire_time)
    if spec.renew_time is not None:
        out["renewTime"] = format_microtime(spec.renew_time)
    out["leaseTransitions"] = spec.transitions
    return out


def lease_from_json(doc: dict[str, Any]) -> LeaseObject:
    """A Lease document as the core's value; odd field types read as absent."""
    spec = doc.get("spec") if isinstance(doc.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    duration = spec.get("leaseDurationSeconds")
    transitions = spec.get("leaseTransitions")
    holder = spec.get("holderIdentity")
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return LeaseObject(
        LeaseSpec(
            holder=holder if isinstance(holder, str) else "",
            duration_seconds=duration if isinstance(duration, int) else None,
            acquire_time=parse_time(spec.get("acquireTime")),
            renew_time=parse_time(spec.get("renewTime")),
            transitions=transitions if isinstance(transitions, int) else 0,
        ),
        str(meta.get("resourceVersion") or ""),
    )


class KubeLease:
    """The LeasePort over the Kubernetes API."""

    def __init__(self, api: client.ApiClient, name: str, namespace: str) -> None:
        self.api = api
        self.coordination = client.CoordinationV1Api(api)
        self.name = name
        self.namespace = namespace

    def _body(self, spec: LeaseSpec, resource_version: str | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            meta["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": spec_to_json(spec),
        }

    def get(self, timeout: float) -> LeaseObject | None:
        """The Lease, or None on 404."""
        read = self.coordination.read_namespaced_lease
        try:
            return _call(
                lambda t: read(
                    self.name, self.namespace, _preload_content=False, _request_timeout=t
                ),
                timeout,
            )
        except _NotFoundError:
            return None

    def create(self, spec: LeaseSpec, timeout: float) -> LeaseObject:
        """POST the Lease (409 AlreadyExists -> LeaseConflictError)."""
        return self._write("POST", "", self._body(spec, None), timeout)

    def replace(self, spec: LeaseSpec, resource_version: str, timeout: float) -> LeaseObject:
        """PUT the Lease guarded by ``resource_version`` (409 -> LeaseConflictError)."""
        return self._write("PUT", "/{name}", self._body(spec, resource_version), timeout)

    def _write(self, method: str, suffix: str, body: dict[str, Any], timeout: float) -> LeaseObject:
        request = self.api.param_serialize(
            method=method,
            resource_path="/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases" + suffix,
            path_params={"namespace": self.namespace, "name": self.name},
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )

        def send(t: float) -> Any:
            response = self.api.call_api(*request, _request_timeout=t)
            response.read()  # type: ignore[no-untyped-call]
            if not 200 <= response.status <= 299:
                raise ApiException.from_response(http_resp=response, body=None, data=None)
            return response

        return _call(send, timeout)


class _NotFoundError(LeaseError):
    pass


def _call(send: Callable[[float], Any], timeout: float) -> LeaseObject:
    try:
        response = send(max(timeout, 0.001))
        doc = json.loads(response.data)
    except ApiException as err:
        if err.status == 409:
            raise LeaseConflictError(f"lease: {_message(err)}") from None
        if err.status == 404:
            raise _NotFoundError(f"lease: {_message(err)}") from None
        raise LeaseError(f"lease: HTTP {err.status}: {_message(err)}") from None
    except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, ValueError) as err:
        raise LeaseError(f"lease: {err}") from None
    if not isinstance(doc, dict):
        raise LeaseError("lease: the answer is not an object")
    return lease_from_json(doc)


def _message(err: ApiException) -> str:
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        return str(json.loads(err.body or "").get("message") or err.reason)
    return str(err.reason)


def discover_namespace(
    kubeconfig: Path | None = None,
    context: str | None = None,
    service_account_file: Path = SERVICE_ACCOUNT_NAMESPACE,
) -> str:
    """The default ``--lease-namespace`` here: the pod's, else the context's, else
    ``default`` (:func:`~reconciler.core.election.lease.default_namespace`)."""
    in_pod: str | None = None
    with contextlib.suppress(OSError, UnicodeDecodeError):
        in_pod = service_account_file.read_text()
    from_context: str | None = None
    if not (in_pod or "").strip():
        from_context = _context_namespace(kubeconfig, context)
    return default_namespace(in_pod, from_context)


def _context_namespace(kubeconfig: Path | None, context: str | None) -> str | None:
    """The namespace of the chosen (or current) kubeconfig context, if any."""
    return _context_field(kubeconfig, context, "namespace")


def context_user(kubeconfig: Path | None, context: str | None) -> str | None:
    """The user name of the chosen (or current) kubeconfig context, if any."""
    return _context_field(kubeconfig, context, "user")


def _context_field(kubeconfig: Path | None, context: str | None, name: str) -> str | None:
    path = str(kubeconfig) if kubeconfig is not None else os.environ.get("KUBECONFIG")
    path = path or str(Path("~/.kube/config").expanduser())
    try:
        contexts, active = config.list_kube_config_contexts(path)  # type: ignore[no-untyped-call]
    except Exception:  # no kubeconfig, or one the loader trips over: nothing from it
        return None
    chosen = active
    for entry in contexts or []:
        if context is not None and isinstance(entry, dict) and entry.get("name") == context:
            chosen = entry
    value = ((chosen or {}).get("context") or {}).get(name)
    return value if isinstance(value, str) else None


NODE_LEASE_NAMESPACE = "kube-node-lease"


class KubeNodeLeases:
    """The NodeLeases port over the API."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def renewals(self) -> dict[str, datetime]:
        """See :func:`node_lease_renewals`."""
        return node_lease_renewals(self.api)


def node_lease_renewals(api: client.ApiClient, timeout: float = 10.0) -> dict[str, datetime]:
    """When each node's kubelet last renewed its Lease in ``kube-node-lease`` (a sign of
    life the lifecycle honours). Raises LeaseError when they cannot be listed."""
    coordination = client.CoordinationV1Api(api)
    try:
        response: Any = coordination.list_namespaced_lease(
            NODE_LEASE_NAMESPACE, _preload_content=False, _request_timeout=timeout
        )  # raw bytes: the typed model is not needed for two fields
        items = json.loads(response.data).get("items") or []
    except ApiException as err:
        raise LeaseError(f"node leases: {_message(err)}") from None
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as err:
        raise LeaseError(f"node leases: {err}") from None
    out: dict[str, datetime] = {}
    for item in items:
        name = (item.get("metadata") or {}).get("name")
        renewed = parse_time((item.get("spec") or {}).get("renewTime"))
        if isinstance(name, str) and renewed is not None:
            out[name] = renewed
    return out
