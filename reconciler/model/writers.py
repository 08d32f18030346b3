"""Who wrote each label and annotation of a Node last, from its ``metadata.managedFields``.

kube-apiserver records, for every write, the field manager that made it (the
``fieldManager`` of the request; kubectl names its own, such as ``kubectl-annotate``),
its operation, the time, and the fields it owns (``fieldsV1``: ``f:metadata`` ->
``f:annotations`` -> ``f:<key>``). A field another manager writes moves to that manager,
so the one that owns a key is the one that wrote its current value. topoctl reads only
the labels and annotations each manager owns and each manager's last write: enough to
name who else keeps writing a key (core/planning/contested.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from sys import intern

import msgspec

from reconciler.model import keys

# topoctl's own field manager: the controller's and ``topoctl apply``'s writes of labels,
# annotations and taints. The node agent writes as AGENT_MANAGER.
FIELD_MANAGER = "topoctl"
AGENT_MANAGER = "topoctl-agent"
_OWN = frozenset({FIELD_MANAGER, AGENT_MANAGER})
# Annotations topoctl never writes, whoever owns them: Kilo's own, and Talos's lists.
_NEVER_WRITTEN = frozenset(
    {
        keys.KILO_ENDPOINT,
        keys.KILO_INTERNAL_IP,
        keys.KILO_KEY,
        keys.KILO_LAST_SEEN,
        keys.KILO_WIREGUARD_IP,
        keys.KILO_DISCOVERED_ENDPOINTS,
        keys.KILO_GRANULARITY,
        keys.KILO_CNI_COMPATIBILITY_IP,
        keys.TALOS_OWNED_LABELS,
        keys.TALOS_OWNED_ANNOTATIONS,
        keys.TALOS_OWNED_TAINTS,
    }
)


class ManagedEntry(msgspec.Struct, frozen=True):
    """One ``metadata.managedFields`` entry, as far as topoctl reads it."""

    manager: str
    time: str  # RFC 3339 in UTC, as the API server writes it ("" when absent)
    annotations: tuple[str, ...] = ()  # the annotation keys it owns
    labels: tuple[str, ...] = ()


class FieldWriters(msgspec.Struct, frozen=True):
    """The managedFields entries of a Node, kept small: a plan holds thousands of nodes
    and asks about a few keys. Only what can name another writer of a key topoctl
    writes is kept: key names interned (every node has the same ones), not the keys
    topoctl's own managers own (a key topoctl wrote last has no other writer) nor those
    topoctl never writes (Kilo's own), and of the entries that own none of the rest,
    only topoctl's (its last write)."""

    entries: tuple[ManagedEntry, ...] = ()
    recorded: bool = False  # the API server keeps managedFields for the node

    @classmethod
    def of(cls, entries: Iterable[ManagedEntry]) -> FieldWriters:
        """Read the entries (those without a manager say nothing)."""
        kept: list[ManagedEntry] = []
        recorded = False
        for e in entries:
            if not e.manager:
                continue
            recorded = True
            own = e.manager in _OWN
            annotations = () if own else _written(e.annotations)
            labels = () if own else tuple(intern(k) for k in e.labels)
            if annotations or labels or e.manager == FIELD_MANAGER:
                kept.append(ManagedEntry(intern(e.manager), e.time, annotations, labels))
        return cls(tuple(kept), True) if recorded else _NOBODY

    def writer(self, kind: str, key: str) -> str | None:
        """The manager owning ``key`` (``kind``: annotation or label), when it is not
        topoctl: of two owners (server-side appliers share keys), the last to write."""
        found: ManagedEntry | None = None
        for entry in self.entries:
            owned = entry.annotations if kind == "annotation" else entry.labels
            if key in owned and (found is None or found.time <= entry.time):
                found = entry
        return found.manager if found is not None else None

    def last_write(self, manager: str) -> str:
        """When ``manager`` last wrote the node ("" if never)."""
        return max((e.time for e in self.entries if e.manager == manager), default="")

    def wrote_after(self, manager: str, other: str) -> bool:
        """Whether ``manager``'s last write is later than ``other``'s (one that never
        wrote is older than any write). The API server's times are to the second: two
        writes within the same second are not ordered."""
        return self.last_write(manager) > self.last_write(other)


_NOBODY = FieldWriters()


def _written(annotations: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(intern(k) for k in annotations if k not in _NEVER_WRITTEN)


def fields_keys(fields: Mapping[str, object], kind: str) -> tuple[str, ...]:
    """The keys of ``f:metadata`` -> ``f:<kind>`` in a ``fieldsV1`` set."""
    meta = fields.get("f:metadata")
    owned = meta.get(f"f:{kind}") if isinstance(meta, Mapping) else None
    if not isinstance(owned, Mapping):
        return ()
    return tuple(k[2:] for k in owned if isinstance(k, str) and k.startswith("f:"))
