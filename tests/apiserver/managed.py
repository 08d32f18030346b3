"""``metadata.managedFields`` as kube-apiserver keeps them for Update operations.

Every create, update and non-apply patch that names a ``fieldManager`` is recorded as
the structured-merge-diff Updater does (``Updater.Update``, force semantics): the fields
the write adds or changes move to that manager's entry (manager, operation ``Update``,
apiVersion, time, ``fieldsType: FieldsV1``, the subresource for ``/status``); fields it
changes or removes leave every other entry; empty entries go. A write without a
fieldManager changes the same fields but records no manager of its own (kube-apiserver
would name one after the User-Agent). Lists are atomic here (one field for the whole
list, as ``spec.taints`` is); maps are followed to their leaves. A write that changes
nothing changes no entry.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]
Path = tuple[str, ...]
_UNTRACKED = frozenset(
    {
        "managedFields",
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "name",
        "namespace",
    }
)


def leaves(obj: Any, path: Path = ()) -> dict[Path, Any]:
    """Every leaf of ``obj`` by its path; a list (or empty map) is one leaf."""
    if isinstance(obj, dict) and obj:
        out: dict[Path, Any] = {}
        for key, value in obj.items():
            if (not path and key in ("kind", "apiVersion")) or (
                path == ("metadata",) and key in _UNTRACKED
            ):
                continue
            out.update(leaves(value, (*path, key)))
        return out
    return {path: obj} if path else {}


def _paths(fields: Any, path: Path = ()) -> set[Path]:
    out: set[Path] = set()
    if isinstance(fields, dict):
        for key, value in fields.items():
            if key.startswith("f:"):
                child = (*path, key[2:])
                inner = _paths(value, child)
                out |= inner or {child}
    return out


def _fields(paths: set[Path]) -> JSON:
    tree: JSON = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


def _overlap(a: Path, b: Path) -> bool:
    """One field inside (or equal to) the other."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def updated(
    entries: list[JSON] | None,
    old: JSON | None,
    new: JSON,
    *,
    manager: str | None,
    subresource: str | None,
    api_version: str,
    now: str,
) -> list[JSON]:
    """The managedFields after a write of ``new`` over ``old`` (None: a create)."""
    before, after = leaves(old or {}), leaves(new)
    changed = {p for p in after if p not in before or before[p] != after[p]}
    removed = set(before) - set(after)
    out: list[JSON] = []
    mine: JSON | None = None
    for entry in entries or []:
        owned = _paths(entry.get("fieldsV1"))
        if (
            manager is not None
            and entry.get("manager") == manager
            and entry.get("operation") == "Update"
            and entry.get("subresource", "") == (subresource or "")
        ):
            mine = {**entry, "_owned": owned}
            continue
        kept = {p for p in owned if not any(_overlap(p, c) for c in changed | removed)}
        if kept:
            out.append({**entry, "fieldsV1": _fields(kept)})
    if manager is not None and (changed or removed):
        owned = (mine or {}).pop("_owned", set()) if mine else set()
        owned = {p for p in owned if not any(_overlap(p, c) for c in changed | removed)}
        owned |= changed
        if owned:
            entry = {"manager": manager, "operation": "Update", "apiVersion": api_version,
                     "time": now, "fieldsType": "FieldsV1", "fieldsV1": _fields(owned)}  # fmt: skip
            if subresource:
                entry["subresource"] = subresource
            out.append(entry)
    elif mine is not None:
        mine.pop("_owned")
        out.append(mine)
    return out
