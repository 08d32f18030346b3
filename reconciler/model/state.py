"""Frozen values of what topoctl observes on a Node, built from the API's JSON.

Only the fields topoctl reads are kept, so planning for thousands of nodes stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

import msgspec

from reconciler.model import keys, shape

_EMPTY: Mapping[str, str] = MappingProxyType({})
_NOTHING: Mapping[str, str | None] = MappingProxyType({})


class TaintValue(msgspec.Struct, frozen=True, order=True):
    """A taint as Kubernetes stores it; identity is (key, effect)."""

    key: str
    effect: str
    value: str = ""

    @property
    def ident(self) -> str:
        """``key:effect``: how topoctl names a taint in its ownership record."""
        return f"{self.key}:{self.effect}"

    def as_dict(self) -> dict[str, str]:
        """The JSON Kubernetes expects in ``spec.taints``."""
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


class NodeCondition(msgspec.Struct, frozen=True):
    """One entry of ``status.conditions``, as the API stores it."""

    type: str
    status: str  # True | False | Unknown
    reason: str = ""
    message: str = ""
    last_transition_time: str = ""
    last_heartbeat_time: str = ""

    @classmethod
    def reported(
        cls, type: str, status: str, reason: str, message: str, since: str, heartbeat: str
    ) -> NodeCondition:
        """A condition as a Node reports it: an absent status reads as Unknown."""
        return cls(type, status or "Unknown", reason, message, since, heartbeat)

    def as_dict(self) -> dict[str, str]:
        """The JSON Kubernetes expects in ``status.conditions`` (empty fields left out)."""
        out = {"type": self.type, "status": self.status}
        for key, value in (
            ("reason", self.reason),
            ("message", self.message),
            ("lastTransitionTime", self.last_transition_time),
            ("lastHeartbeatTime", self.last_heartbeat_time),
        ):
            if value:
                out[key] = value
        return out


class NodeState(msgspec.Struct, frozen=True):
    """What topoctl reads of one live Node."""

    name: str
    uid: str = ""
    resource_version: str = ""
    labels: Mapping[str, str] = msgspec.field(default_factory=lambda: _EMPTY)
    annotations: Mapping[str, str] = msgspec.field(default_factory=lambda: _EMPTY)
    taints: tuple[TaintValue, ...] = ()
    conditions: tuple[NodeCondition, ...] = ()
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address)
    pod_cidr: str = ""
    pod_cidrs: tuple[str, ...] = ()  # spec.podCIDRs: both families on a dual-stack node

    def condition(self, kind: str) -> NodeCondition | None:
        """The condition of type ``kind`` (Ready, TopologyReady, ...), if reported."""
        for cond in self.conditions:
            if cond.type == kind:
                return cond
        return None

    @property
    def ready(self) -> str:
        """The Ready condition's status: True | False | Unknown (absent: Unknown)."""
        cond = self.condition("Ready")
        return cond.status if cond is not None else "Unknown"

    @property
    def ready_since(self) -> str:
        """lastTransitionTime of the Ready condition ("" when absent)."""
        cond = self.condition("Ready")
        return cond.last_transition_time if cond is not None else ""

    @classmethod
    def from_object(cls, obj: Any) -> NodeState:
        """Read a Node as the API (or ``kubectl get -o json``) returns it.

        Raises ShapeError naming the field when the object is not shaped like a Node.
        """
        if not isinstance(obj, Mapping):
            raise shape.ShapeError("(the object)", "a Node (a map)", obj)
        meta = shape.mapping(obj.get("metadata"), "metadata")
        spec = shape.mapping(obj.get("spec"), "spec")
        status = shape.mapping(obj.get("status"), "status")
        taints = shape.items(spec.get("taints"), "spec.taints")
        conditions = shape.items(status.get("conditions"), "status.conditions")
        addresses = shape.items(status.get("addresses"), "status.addresses")
        return cls(
            name=shape.required_text(meta, "name", "metadata"),
            uid=shape.text(meta, "uid", "metadata"),
            resource_version=shape.text(meta, "resourceVersion", "metadata", scalar=True),
            labels=MappingProxyType(shape.string_map(meta.get("labels"), "metadata.labels")),
            annotations=MappingProxyType(
                shape.string_map(meta.get("annotations"), "metadata.annotations")
            ),
            taints=tuple(
                TaintValue(
                    shape.text(t, "key", f"spec.taints[{i}]"),
                    shape.text(t, "effect", f"spec.taints[{i}]"),
                    shape.text(t, "value", f"spec.taints[{i}]"),
                )
                for i, t in enumerate(taints)
            ),
            conditions=tuple(
                _condition(c, f"status.conditions[{i}]") for i, c in enumerate(conditions)
            ),
            addresses=tuple(
                (
                    shape.text(a, "type", f"status.addresses[{i}]"),
                    shape.text(a, "address", f"status.addresses[{i}]"),
                )
                for i, a in enumerate(addresses)
            ),
            pod_cidr=shape.text(spec, "podCIDR", "spec"),
            pod_cidrs=shape.strings(spec.get("podCIDRs"), "spec.podCIDRs"),
        )

    def address(self, kind: str) -> str | None:
        """The first status address of ``kind`` (InternalIP, ExternalIP, Hostname)."""
        for address_type, address in self.addresses:
            if address_type == kind:
                return address
        return None

    @property
    def is_control_plane(self) -> bool:
        """Control-plane nodes are always protected from deletion."""
        return keys.LABEL_CONTROL_PLANE in self.labels or keys.LABEL_MASTER in self.labels

    def talos_owned(self, kind: str) -> frozenset[str]:
        """Keys Talos manages on this node, for ``label``, ``annotation`` or ``taint``."""
        return _talos_keys(self.annotations.get(_TALOS_SOURCES[kind], ""))


def _condition(raw: Mapping[str, Any], field: str) -> NodeCondition:
    return NodeCondition.reported(
        shape.text(raw, "type", field),
        shape.text(raw, "status", field),
        shape.text(raw, "reason", field),
        shape.text(raw, "message", field),
        shape.text(raw, "lastTransitionTime", field),
        shape.text(raw, "lastHeartbeatTime", field),
    )


_TALOS_SOURCES = {
    "label": keys.TALOS_OWNED_LABELS,
    "annotation": keys.TALOS_OWNED_ANNOTATIONS,
    "taint": keys.TALOS_OWNED_TAINTS,
}


@lru_cache(maxsize=4096)
def _talos_keys(raw: str) -> frozenset[str]:
    """Parse a Talos ownership list (read several times per node, and shared by many)."""
    names = (item.strip() for item in raw.split(","))
    # Taint entries may be written key=value:effect; the key is what identifies them.
    return frozenset(n.split("=")[0].split(":")[0] for n in names if n)


# --- what crosses the cluster ports besides NodeState ---


@dataclass(frozen=True, slots=True)
class NodeWrite:
    """One atomic write to a Node's metadata and spec, guarded by ``resource_version``.

    Only the keys that change are named: a value of None deletes the key. ``taints``
    is the whole list after the write, or None when taints do not change.
    """

    name: str
    resource_version: str
    annotations: Mapping[str, str | None] = field(default_factory=lambda: _NOTHING)
    labels: Mapping[str, str | None] = field(default_factory=lambda: _NOTHING)
    taints: tuple[TaintValue, ...] | None = None


@dataclass(frozen=True, slots=True)
class StatusWrite:
    """One atomic write to a Node's status subresource, guarded by ``resource_version``.

    Each list is the whole list after the write (None: unchanged), so a second address of
    one type (dual-stack) or another writer's condition is kept by naming it.
    """

    name: str
    resource_version: str
    addresses: tuple[tuple[str, str], ...] | None = None
    conditions: tuple[NodeCondition, ...] | None = None


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """One event of a Node watch; ``node`` is None only for a BOOKMARK."""

    kind: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    resource_version: str
    node: NodeState | None = None
