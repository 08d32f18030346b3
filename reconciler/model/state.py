"""Frozen values of what topoctl observes on a Node, built from the API's JSON.

Only the fields topoctl reads are kept, so planning for thousands of nodes stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from reconciler.model import keys

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, order=True)
class TaintValue:
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


@dataclass(frozen=True, slots=True)
class NodeState:
    """What topoctl reads of one live Node."""

    name: str
    uid: str = ""
    resource_version: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    taints: tuple[TaintValue, ...] = ()
    ready: str = "Unknown"  # the Ready condition's status: True | False | Unknown
    ready_since: str = ""  # lastTransitionTime of the Ready condition
    addresses: tuple[tuple[str, str], ...] = ()  # (type, address)
    pod_cidr: str = ""

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> NodeState:
        """Read a Node as the API (or ``kubectl get -o json``) returns it."""
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        ready, since = "Unknown", ""
        for cond in status.get("conditions") or ():
            if cond.get("type") == "Ready":
                ready, since = (
                    str(cond.get("status", "Unknown")),
                    cond.get("lastTransitionTime") or "",
                )
        return cls(
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid") or ""),
            resource_version=str(meta.get("resourceVersion") or ""),
            labels=MappingProxyType(dict(meta.get("labels") or {})),
            annotations=MappingProxyType(dict(meta.get("annotations") or {})),
            taints=tuple(
                TaintValue(
                    str(t.get("key", "")), str(t.get("effect", "")), str(t.get("value") or "")
                )
                for t in spec.get("taints") or ()
            ),
            ready=ready,
            ready_since=str(since),
            addresses=tuple(
                (str(a.get("type", "")), str(a.get("address", "")))
                for a in status.get("addresses") or ()
            ),
            pod_cidr=str(spec.get("podCIDR") or ""),
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
