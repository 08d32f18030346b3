"""Frozen values that cross the status ports: the status ConfigMap and Node Events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """The status ConfigMap's data as read (every key, others' too), its version, and its
    annotations (``topoctl reconcile``'s request, and whatever others put there)."""

    data: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    resource_version: str = ""
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One ``events.k8s.io/v1`` Event about a Node (a series once ``count`` > 1), or
    about another object of the sink's namespace (``kind``: the status ConfigMap)."""

    node: str  # the object's name
    reason: str  # TopologyApplied | TopologyConflict | KiloLeaderChange | NodeDeleted | ...
    note: str
    time: datetime  # eventTime; the series' lastObservedTime once count > 1
    type: str = "Normal"  # Normal | Warning
    action: str = "Reconcile"
    node_uid: str = ""
    count: int = 1
    kind: str = "Node"
