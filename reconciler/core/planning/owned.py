"""topoctl's ownership record on each node (``topoctl.io/owned``): what it set there.

A key that leaves git is removed only when this record says topoctl set it. The record
also keeps what topoctl wrote where the API server names other writers
(core/planning/contested.py): for each key, a digest of git's value it wrote and the
field manager it wrote against.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from reconciler.model import keys

OwnedRecord = dict[str, set[str]]  # "annotations" | "labels" | "taints" -> keys
# (kind, key) -> (the manager written against, or topoctl; digest of git's value written)
HeldRecord = dict[tuple[str, str], tuple[str, str]]
_HELD = "written"  # (kind, key) -> [manager written against, digest]


def empty_record() -> OwnedRecord:
    """A record that owns nothing."""
    return {"annotations": set(), "labels": set(), "taints": set()}


def owned_record(annotations: Mapping[str, str]) -> OwnedRecord:
    """Parse ``topoctl.io/owned``; an unreadable record counts as owning nothing."""
    empty = empty_record()
    raw = annotations.get(keys.TOPOCTL_OWNED)
    if not raw:
        return empty
    try:
        data = json.loads(raw)
        return {k: {str(x) for x in data.get(k, [])} for k in empty}
    except (ValueError, AttributeError, TypeError):
        return empty


def held_record(annotations: Mapping[str, str]) -> HeldRecord:
    """The held keys of ``topoctl.io/owned``; an unreadable part counts as none."""
    raw = annotations.get(keys.TOPOCTL_OWNED)
    if not raw or _HELD not in raw:
        return {}
    try:
        held = json.loads(raw).get(_HELD) or {}
        return {
            (str(kind), str(key)): (str(entry[0]), str(entry[1]))
            for kind, entries in held.items()
            for key, entry in entries.items()
        }
    except (ValueError, AttributeError, TypeError, IndexError, KeyError):
        return {}


def render_owned(record: Mapping[str, Iterable[str]], held: HeldRecord | None = None) -> str:
    """Canonical compact JSON of an ownership record (held keys only when there are)."""
    data: dict[str, object] = {k: sorted(v) for k, v in sorted(record.items())}
    if held:
        by_kind: dict[str, dict[str, list[str]]] = {}
        for (kind, key), (manager, digest) in sorted(held.items()):
            by_kind.setdefault(kind, {})[key] = [manager, digest]
        data[_HELD] = by_kind
    return json.dumps(dict(sorted(data.items())), separators=(",", ":"))


def keep_written(after: str, before: str | None, keys_kept: Iterable[tuple[str, str]]) -> str:
    """The record ``after`` with the written entries of ``keys_kept`` as in ``before``:
    a write of those keys that waits must not be recorded as made."""
    old, new = (
        held_record({keys.TOPOCTL_OWNED: before or ""}),
        held_record({keys.TOPOCTL_OWNED: after}),
    )
    for key in keys_kept:
        if key in old:
            new[key] = old[key]
        else:
            new.pop(key, None)
    return render_owned(owned_record({keys.TOPOCTL_OWNED: after}), new)
