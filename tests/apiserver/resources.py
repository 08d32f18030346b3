"""The resource types the double serves, their strategies, discovery documents and tables."""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.apiserver import errors, rbac_validation, validation
from tests.apiserver.selectors import FieldGetter

JSON = dict[str, Any]
Cause = validation.Cause


def _path(*keys: str) -> FieldGetter:
    def get(obj: Mapping[str, Any]) -> str:
        cur: Any = obj
        for key in keys:
            cur = cur.get(key) if isinstance(cur, Mapping) else None
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


def _identity(obj: JSON) -> JSON:
    return obj


def _no_causes(obj: JSON) -> list[Cause]:
    return []


def _noop(obj: JSON, old: JSON | None) -> None:
    return None


def keep_other_half(new: JSON, old: JSON, subresource: str | None) -> None:
    """A built-in type's status strategy: a main write keeps the old status, a /status write
    the old spec (its metadata changes persist, as in the real nodeStatusStrategy)."""
    kept = "spec" if subresource == "status" else "status"
    if kept in old:
        new[kept] = old[kept]
    else:
        new.pop(kept, None)


@dataclass(frozen=True)
class ResourceType:
    """One served resource (group/version/plural) and how writes to it behave."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    definition: str  # OpenAPI definition name in the bundled schemas
    storage: str  # resources sharing a storage see the same objects (core and events.k8s.io Events)
    short_names: tuple[str, ...] = ()
    status_subresource: bool = False
    token_subresource: bool = False  # serviceaccounts/token (TokenRequest)
    allow_create_on_update: bool = False
    allow_unconditional_update: bool = True
    fields: Mapping[str, FieldGetter] = field(default_factory=dict)
    validate: Callable[[JSON], list[Cause]] = _no_causes
    name_check: Callable[[str, str], list[Cause]] | None = None  # None: a DNS subdomain
    prepare: Callable[[JSON, JSON | None], None] = _noop  # (new, old or None on create)
    to_storage: Callable[[JSON], JSON] = _identity
    from_storage: Callable[[JSON], JSON] = _identity
    # with status_subresource: what a main or /status write keeps of the old object
    split_write: Callable[[JSON, JSON, str | None], None] = keep_other_half
    # a CustomResourceDefinition's resource (tests/apiserver/crds.py): schemaless beyond
    # metadata, and no strategic merge patch
    custom: bool = False

    @property
    def api_version(self) -> str:
        """`v1` or `group/version`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def field_getters(self) -> dict[str, FieldGetter]:
        """Field selector labels this resource supports, mapped to getters on the stored form."""
        getters: dict[str, FieldGetter] = {"metadata.name": _path("metadata", "name")}
        if self.namespaced:
            getters["metadata.namespace"] = _path("metadata", "namespace")
        getters.update(self.fields)
        return getters

    def view(self, stored: JSON) -> JSON:
        """The stored object as this resource serves it (kind/apiVersion set)."""
        out = self.from_storage(stored)
        body = {k: v for k, v in out.items() if k not in ("kind", "apiVersion")}
        return {"kind": self.kind, "apiVersion": self.api_version, **body}


# ------------------------------------------------------------------- events


_EVENT_RENAMES = (
    # (core v1 field, events.k8s.io/v1 field)
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
)


def _event_to_v1events(stored: JSON) -> JSON:
    out = copy.copy(stored)
    for core, new in _EVENT_RENAMES:
        if core in out:
            out[new] = out.pop(core)
    return out


def _event_from_v1events(obj: JSON) -> JSON:
    out = copy.copy(obj)
    for core, new in _EVENT_RENAMES:
        if new in out:
            out[core] = out.pop(new)
    out["kind"] = "Event"
    out["apiVersion"] = "v1"
    return out


_CORE_EVENT_FIELDS: dict[str, FieldGetter] = {
    "involvedObject.kind": _path("involvedObject", "kind"),
    "involvedObject.namespace": _path("involvedObject", "namespace"),
    "involvedObject.name": _path("involvedObject", "name"),
    "involvedObject.uid": _path("involvedObject", "uid"),
    "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
    "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
    "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
    "reason": _path("reason"),
    "reportingComponent": _path("reportingComponent"),
    "source": _path("source", "component"),
    "type": _path("type"),
}

_EVENTS_V1_FIELDS: dict[str, FieldGetter] = {
    **{k.replace("involvedObject", "regarding"): v for k, v in _CORE_EVENT_FIELDS.items()},
    "reportingController": _path("reportingComponent"),
    "deprecatedSource": _path("source", "component"),
}


# --------------------------------------------------------------- namespaces


def _prepare_namespace(new: JSON, old: JSON | None) -> None:
    meta = new.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    labels["kubernetes.io/metadata.name"] = meta.get("name", "")
    meta["labels"] = labels
    if old is None:
        new.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        new.setdefault("status", {})["phase"] = "Active"


# -------------------------------------------------------------------- nodes

NODE_INFO_FIELDS = (
    "architecture",
    "bootID",
    "containerRuntimeVersion",
    "kernelVersion",
    "kubeProxyVersion",
    "kubeletVersion",
    "machineID",
    "operatingSystem",
    "osImage",
    "systemUUID",
)


def _prepare_node(new: JSON, old: JSON | None) -> None:
    """Go encodes NodeStatus's struct fields whatever they hold: nodeInfo always carries its
    ten strings and daemonEndpoints its kubelet Port, as a real server returns them."""
    status = dict(new.get("status") or {})
    info = dict(status.get("nodeInfo") or {})
    for name in NODE_INFO_FIELDS:
        info.setdefault(name, "")
    status["nodeInfo"] = info
    endpoints = dict(status.get("daemonEndpoints") or {})
    kubelet = dict(endpoints.get("kubeletEndpoint") or {})
    kubelet.setdefault("Port", 0)
    endpoints["kubeletEndpoint"] = kubelet
    status["daemonEndpoints"] = endpoints
    new["status"] = status


# --------------------------------------------------------------- configmaps


def _prepare_configmap(new: JSON, old: JSON | None) -> None:
    """binaryData is []byte (400 on bad base64, re-encoded canonically); `immutable` holds."""
    binary = new.get("binaryData")
    if isinstance(binary, dict):
        for key, value in binary.items():
            try:
                raw = base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                raise errors.bad_request(
                    'ConfigMap in version "v1" cannot be handled as a ConfigMap: '
                    f"illegal base64 data at input byte {_bad_base64_at(str(value))}"
                ) from None
            binary[key] = base64.b64encode(raw).decode()
    if old is not None and old.get("immutable"):
        name = (new.get("metadata") or {}).get("name", "")
        causes: list[Cause] = []
        if new.get("immutable") is not True:
            causes.append(
                (
                    "immutable",
                    "FieldValueForbidden",
                    "Forbidden: field is immutable when `immutable` is set",
                )
            )
        for key in ("data", "binaryData"):
            if new.get(key) != old.get(key):
                causes.append(
                    (
                        key,
                        "FieldValueForbidden",
                        "Forbidden: field is immutable when `immutable` is set",
                    )
                )
        if causes:
            raise errors.invalid("ConfigMap", "", name, causes)


def _bad_base64_at(value: str) -> int:
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    for i, char in enumerate(value):
        if char not in alphabet and char != "=":
            return i
    return len(value) - len(value) % 4


NODES = ResourceType(
    group="",
    version="v1",
    kind="Node",
    plural="nodes",
    singular="node",
    namespaced=False,
    definition="io.k8s.api.core.v1.Node",
    storage="nodes",
    short_names=("no",),
    status_subresource=True,
    fields={"spec.unschedulable": _path("spec", "unschedulable")},
    validate=validation.node,
    prepare=_prepare_node,
)

NAMESPACES = ResourceType(
    group="",
    version="v1",
    kind="Namespace",
    plural="namespaces",
    singular="namespace",
    namespaced=False,
    definition="io.k8s.api.core.v1.Namespace",
    storage="namespaces",
    short_names=("ns",),
    status_subresource=True,
    fields={"status.phase": _path("status", "phase")},
    prepare=_prepare_namespace,
)

EVENTS = ResourceType(
    group="",
    version="v1",
    kind="Event",
    plural="events",
    singular="event",
    namespaced=True,
    definition="io.k8s.api.core.v1.Event",
    storage="events",
    short_names=("ev",),
    allow_create_on_update=True,
    fields=_CORE_EVENT_FIELDS,
)

EVENTS_V1 = ResourceType(
    group="events.k8s.io",
    version="v1",
    kind="Event",
    plural="events",
    singular="event",
    namespaced=True,
    definition="io.k8s.api.events.v1.Event",
    storage="events",
    short_names=("ev",),
    allow_create_on_update=True,
    fields=_EVENTS_V1_FIELDS,
    to_storage=_event_from_v1events,
    from_storage=_event_to_v1events,
)

LEASES = ResourceType(
    group="coordination.k8s.io",
    version="v1",
    kind="Lease",
    plural="leases",
    singular="lease",
    namespaced=True,
    definition="io.k8s.api.coordination.v1.Lease",
    storage="leases",
    allow_create_on_update=True,
    allow_unconditional_update=False,
    validate=validation.lease,
)

CONFIGMAPS = ResourceType(
    group="",
    version="v1",
    kind="ConfigMap",
    plural="configmaps",
    singular="configmap",
    namespaced=True,
    definition="io.k8s.api.core.v1.ConfigMap",
    storage="configmaps",
    short_names=("cm",),
    validate=validation.configmap,
    prepare=_prepare_configmap,
)

SERVICEACCOUNTS = ResourceType(
    group="",
    version="v1",
    kind="ServiceAccount",
    plural="serviceaccounts",
    singular="serviceaccount",
    namespaced=True,
    definition="io.k8s.api.core.v1.ServiceAccount",
    storage="serviceaccounts",
    short_names=("sa",),
    token_subresource=True,
)


def _rbac(kind: str, plural: str, namespaced: bool, **kwargs: Any) -> ResourceType:
    return ResourceType(
        group=rbac_validation.RBAC_GROUP,
        version="v1",
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=namespaced,
        definition=f"io.k8s.api.rbac.v1.{kind}",
        storage=plural,
        name_check=rbac_validation.path_segment_name,
        **kwargs,
    )


ROLES = _rbac("Role", "roles", True, validate=rbac_validation.role)
CLUSTERROLES = _rbac("ClusterRole", "clusterroles", False, validate=rbac_validation.cluster_role)
ROLEBINDINGS = _rbac(
    "RoleBinding",
    "rolebindings",
    True,
    validate=rbac_validation.role_binding,
    prepare=rbac_validation.keep_role_ref,
)
CLUSTERROLEBINDINGS = _rbac(
    "ClusterRoleBinding",
    "clusterrolebindings",
    False,
    validate=rbac_validation.cluster_role_binding,
    prepare=rbac_validation.keep_role_ref,
)
RBAC_RESOURCES = (ROLES, CLUSTERROLES, ROLEBINDINGS, CLUSTERROLEBINDINGS)


def _admission(kind: str, plural: str) -> ResourceType:
    return ResourceType(
        group="admissionregistration.k8s.io",
        version="v1",
        kind=kind,
        plural=plural,
        singular=kind.lower(),
        namespaced=False,
        definition=f"io.k8s.api.admissionregistration.v1.{kind}",
        storage=plural,
    )


VALIDATING_POLICIES = _admission("ValidatingAdmissionPolicy", "validatingadmissionpolicies")
VALIDATING_POLICY_BINDINGS = _admission(
    "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings"
)

RESOURCES: tuple[ResourceType, ...] = (
    NODES,
    NAMESPACES,
    CONFIGMAPS,
    EVENTS,
    EVENTS_V1,
    LEASES,
    SERVICEACCOUNTS,
    *RBAC_RESOURCES,
    VALIDATING_POLICIES,
    VALIDATING_POLICY_BINDINGS,
)

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def lookup(
    group: str, version: str, plural: str, types: Sequence[ResourceType] = RESOURCES
) -> ResourceType | None:
    """The resource served at /api(s)/group/version/plural, if any."""
    for rt in types:
        if (rt.group, rt.version, rt.plural) == (group, version, plural):
            return rt
    return None


def by_kind(
    kind_or_plural: str,
    api_version: str | None = None,
    types: Sequence[ResourceType] = RESOURCES,
) -> ResourceType:
    """Find a resource by kind (`Node`) or plural (`nodes`); core group preferred."""
    wanted = kind_or_plural.lower()
    for rt in types:
        if api_version is not None and rt.api_version != api_version:
            continue
        if wanted in (rt.kind.lower(), rt.plural, rt.singular, *rt.short_names):
            return rt
    raise KeyError(f"the double does not serve {kind_or_plural!r} ({api_version or 'any'})")


def groups(types: Sequence[ResourceType] = RESOURCES) -> list[tuple[str, list[str]]]:
    """(group, [versions]) for every named group, in first-seen order."""
    out: dict[str, list[str]] = {}
    for rt in types:
        if rt.group and rt.version not in out.setdefault(rt.group, []):
            out[rt.group].append(rt.version)
    return list(out.items())


# ---------------------------------------------------------------- discovery

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def api_versions(server_address: str) -> JSON:
    """GET /api."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_doc(group: str, versions: list[str]) -> JSON:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(types: Sequence[ResourceType] = RESOURCES) -> JSON:
    """GET /apis."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g, vs) for g, vs in groups(types)],
    }


def api_group(group: str, types: Sequence[ResourceType] = RESOURCES) -> JSON | None:
    """GET /apis/{group}."""
    for name, versions in groups(types):
        if name == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(name, versions)}
    return None


def api_resource_list(
    group: str, version: str, types: Sequence[ResourceType] = RESOURCES
) -> JSON | None:
    """GET /api/v1 or /apis/{group}/{version}."""
    served = [rt for rt in types if (rt.group, rt.version) == (group, version)]
    if not served:
        return None
    resources: list[JSON] = []
    for rt in served:
        entry: JSON = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": _VERBS,
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        resources.append(entry)
        if rt.status_subresource:
            resources.append(
                {
                    "name": f"{rt.plural}/status",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if rt.token_subresource:
            resources.append(
                {
                    "name": f"{rt.plural}/token",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "group": "authentication.k8s.io",
                    "version": "v1",
                    "kind": "TokenRequest",
                    "verbs": ["create"],
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


# -------------------------------------------------------------------- tables


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 192:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    y = h // (24 * 365)
    if y < 8:
        d = (h // 24) % 365
        return f"{y}y{d}d" if d else f"{y}y"
    return f"{y}y"


def _age(obj: JSON, now: datetime) -> str:
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return human_duration((now - created).total_seconds())


def _node_row(obj: JSON, now: datetime) -> list[Any]:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ready = "Unknown"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = "Ready" if cond.get("status") == "True" else "NotReady"
    if spec.get("unschedulable"):
        ready += ",SchedulingDisabled"
    roles = sorted(
        k.split("/", 1)[1]
        for k in (meta.get("labels") or {})
        if k.startswith("node-role.kubernetes.io/") and "/" in k
    )
    info = status.get("nodeInfo") or {}
    addrs = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [
        meta.get("name", ""),
        ready,
        ",".join(roles) or "<none>",
        _age(obj, now),
        info.get("kubeletVersion", ""),
        addrs.get("InternalIP", "<none>"),
        addrs.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


_NODE_COLUMNS = [
    ("Name", "string", 0),
    ("Status", "string", 0),
    ("Roles", "string", 0),
    ("Age", "string", 0),
    ("Version", "string", 0),
    ("Internal-IP", "string", 1),
    ("External-IP", "string", 1),
    ("OS-Image", "string", 1),
    ("Kernel-Version", "string", 1),
    ("Container-Runtime", "string", 1),
]


def table(rt: ResourceType, objects: list[JSON], list_meta: JSON) -> JSON:
    """A meta.k8s.io/v1 Table, as kubectl asks for with `Accept: ...;as=Table`."""
    now = datetime.now(UTC)
    if rt is NODES:
        columns = _NODE_COLUMNS
        rows = [_node_row(o, now) for o in objects]
    elif rt is LEASES:
        columns = [("Name", "string", 0), ("Holder", "string", 0), ("Age", "string", 0)]
        rows = [
            [
                (o.get("metadata") or {}).get("name", ""),
                (o.get("spec") or {}).get("holderIdentity", ""),
                _age(o, now),
            ]
            for o in objects
        ]
    elif rt is NAMESPACES:
        columns = [("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)]
        rows = [
            [
                (o.get("metadata") or {}).get("name", ""),
                (o.get("status") or {}).get("phase", ""),
                _age(o, now),
            ]
            for o in objects
        ]
    elif rt is CONFIGMAPS:
        columns = [("Name", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)]
        rows = [
            [
                (o.get("metadata") or {}).get("name", ""),
                len(o.get("data") or {}) + len(o.get("binaryData") or {}),
                _age(o, now),
            ]
            for o in objects
        ]
    elif rt.kind == "CustomResourceDefinition" and rt.group == "apiextensions.k8s.io":
        columns = [("Name", "string", 0), ("Created At", "date", 0)]
        rows = [
            [
                (o.get("metadata") or {}).get("name", ""),
                (o.get("metadata") or {}).get("creationTimestamp", ""),
            ]
            for o in objects
        ]
    else:
        columns = [("Name", "string", 0), ("Age", "string", 0)]
        rows = [[(o.get("metadata") or {}).get("name", ""), _age(o, now)] for o in objects]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {
                "name": name,
                "type": typ,
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": prio,
            }
            for name, typ, prio in columns
        ],
        "rows": [
            {
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata") or {},
                },
            }
            for cells, o in zip(rows, objects, strict=True)
        ],
    }
