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
from types import MappingProxyType

import msgspec

_EMPTY: Mapping[str, str] = MappingProxyType({})

# topoctl's own field manager: the controller's and ``topoctl apply``'s writes of labels,
# annotations and taints. The node agent writes as AGENT_MANAGER.
FIELD_MANAGER = "topoctl"
AGENT_MANAGER = "topoctl-agent"


class ManagedEntry(msgspec.Struct, frozen=True):
    """One ``metadata.managedFields`` entry, as far as topoctl reads it."""

    manager: str
    time: str  # RFC 3339 in UTC, as the API server writes it ("" when absent)
    annotations: tuple[str, ...] = ()  # the annotation keys it owns
    labels: tuple[str, ...] = ()


class FieldWriters(msgspec.Struct, frozen=True):
    """The manager owning each label and annotation key, and each manager's last write."""

    annotations: Mapping[str, str] = msgspec.field(default_factory=lambda: _EMPTY)
    labels: Mapping[str, str] = msgspec.field(default_factory=lambda: _EMPTY)
    times: Mapping[str, str] = msgspec.field(default_factory=lambda: _EMPTY)

    @classmethod
    def of(cls, entries: Iterable[ManagedEntry]) -> FieldWriters:
        """Read the entries; a key two entries own (shared by server-side appliers) goes
        to the one that wrote last."""
        annotations: dict[str, tuple[str, str]] = {}
        labels: dict[str, tuple[str, str]] = {}
        times: dict[str, str] = {}
        for entry in entries:
            if not entry.manager:
                continue
            times[entry.manager] = max(times.get(entry.manager, ""), entry.time)
            for owned, keys in ((annotations, entry.annotations), (labels, entry.labels)):
                for key in keys:
                    if key not in owned or owned[key][0] <= entry.time:
                        owned[key] = (entry.time, entry.manager)
        if not times:
            return _NOBODY
        return cls(
            MappingProxyType({k: m for k, (_, m) in annotations.items()}),
            MappingProxyType({k: m for k, (_, m) in labels.items()}),
            MappingProxyType(times),
        )

    def writer(self, kind: str, key: str) -> str | None:
        """The manager owning ``key`` (``kind``: annotation or label), if recorded."""
        return (self.annotations if kind == "annotation" else self.labels).get(key)

    def wrote_after(self, manager: str, other: str) -> bool:
        """Whether ``manager``'s last write is later than ``other``'s (one that never
        wrote is older than any write). The API server's times are to the second: two
        writes within the same second are not ordered."""
        return self.times.get(manager, "") > self.times.get(other, "")


_NOBODY = FieldWriters()


def fields_keys(fields: Mapping[str, object], kind: str) -> tuple[str, ...]:
    """The keys of ``f:metadata`` -> ``f:<kind>`` in a ``fieldsV1`` set."""
    meta = fields.get("f:metadata")
    owned = meta.get(f"f:{kind}") if isinstance(meta, Mapping) else None
    if not isinstance(owned, Mapping):
        return ()
    return tuple(k[2:] for k in owned if isinstance(k, str) and k.startswith("f:"))
