"""One change as a line of a plan: its sign, key and values, shown as people read them.

Values are quoted; the agent settings and the ownership record, long JSON, are shown as
a summary (routes and bytes, keys added and dropped).
"""

from __future__ import annotations

import json

from reconciler.core.planning.plan import Change
from reconciler.model import keys

SIGNS = {
    "set": "+",
    "update": "~",
    "adopt": "~",
    "remove": "-",
    "remove-mirror": "-",
    "conflict": "!",
}
STYLES = {"+": "green", "~": "yellow", "-": "red", "!": "bold magenta"}
MAX_VALUE = 72


def shown_value(key: str, value: str | None) -> str:
    """A value as a plan shows it: quoted and cut, or summarised; "(absent)" for none."""
    if value is None:
        return "(absent)"
    if key == keys.TOPOCTL_AGENT:
        try:
            routes = len(json.loads(value).get("routes", []))
        except (ValueError, AttributeError):
            routes = 0
        return f"<agent settings, {routes} route{'s' * (routes != 1)}, {len(value)} bytes>"
    if key == keys.TOPOCTL_OWNED:
        try:
            owned = sum(len(v) for v in json.loads(value).values())
        except (ValueError, AttributeError, TypeError):
            owned = 0
        return f"<ownership record, {owned} key{'s' * (owned != 1)}>"
    text = json.dumps(value)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + '…"'


def change_line(change: Change) -> str:
    """The change as one line: its sign, what it is, and its values."""
    sign = SIGNS[change.verb]
    label = "" if change.verb in ("set", "update") else f"[{change.verb}] "
    if change.kind == "taint":
        if change.verb == "set":
            return f"{sign} {label}taint {change.after}"
        if change.verb == "remove":
            return f"{sign} {label}taint {change.before}"
        return f"{sign} {label}taint {change.before} -> {change.after}"
    what = f"{change.kind} {change.key}"
    if change.verb in ("set",):
        body = f"{what} = {shown_value(change.key, change.after)}"
    elif change.verb in ("remove", "remove-mirror"):
        body = f"{what} (was {shown_value(change.key, change.before)})"
    else:
        after = shown_value(change.key, change.after)
        if change.key == keys.TOPOCTL_OWNED:
            after = after[:-1] + _owned_delta(change.before, change.after) + ">"
        body = f"{what}: {shown_value(change.key, change.before)} -> {after}"
    return f"{sign} {label}{body}"


def _owned_keys(value: str | None) -> set[str]:
    try:
        record = json.loads(value or "{}")
        return {f"{kind}/{key}" for kind, items in record.items() for key in items}
    except (ValueError, AttributeError, TypeError):
        return set()


def _owned_delta(before: str | None, after: str | None) -> str:
    """``: 1 added, 1 dropped`` - a record's size alone can hide a swap."""
    old, new = _owned_keys(before), _owned_keys(after)
    parts = []
    if new - old:
        parts.append(f"{len(new - old)} added")
    if old - new:
        parts.append(f"{len(old - new)} dropped")
    return ": " + ", ".join(parts) if parts else ""
