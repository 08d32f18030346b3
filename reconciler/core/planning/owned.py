"""topoctl's ownership record on each node (``topoctl.io/owned``): what it set there.

A key that leaves git is removed only when this record says topoctl set it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from reconciler.model import keys

OwnedRecord = dict[str, set[str]]  # "annotations" | "labels" | "taints" -> keys


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


def render_owned(record: Mapping[str, Iterable[str]]) -> str:
    """Canonical compact JSON of an ownership record."""
    return json.dumps({k: sorted(v) for k, v in sorted(record.items())}, separators=(",", ":"))
