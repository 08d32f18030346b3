"""Checks on the JSON shape of a Node as it is read, each naming the field that is wrong.

A malformed object (a hand-edited snapshot, a list of something else) fails here with
``metadata.annotations: expected a map of strings, got list``; the reader adds where the
object came from (``nodes.json: items[3].``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


class ShapeError(ValueError):
    """A field of an object does not have the shape Kubernetes gives it."""

    def __init__(self, field: str, expected: str, value: Any, got: str = "") -> None:
        super().__init__(f"{field}: expected {expected}, got {got or kind_of(value)}")
        self.field = field


def kind_of(value: Any) -> str:
    """The JSON name of a value's type, as a message shows it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a map"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def mapping(value: Any, field: str) -> Mapping[str, Any]:
    """A map, or the empty map for an absent (null) field."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ShapeError(field, "a map", value)
    return value


def items(value: Any, field: str) -> list[Mapping[str, Any]]:
    """A list of maps (taints, conditions, addresses); absent is empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(field, "a list", value)
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ShapeError(f"{field}[{index}]", "a map", item)
    return value


def strings(value: Any, field: str) -> tuple[str, ...]:
    """A list of strings (``spec.podCIDRs``); absent is empty."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ShapeError(field, "a list", value)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ShapeError(f"{field}[{index}]", "a string", item)
    return tuple(value)


def string_map(value: Any, field: str) -> dict[str, str]:
    """Labels or annotations: every key and value a string."""
    found = mapping(value, field)
    for key, item in found.items():
        if not isinstance(key, str):
            raise ShapeError(f"{field}: key {key!r}", "a string", key)
        if not isinstance(item, str):
            raise ShapeError(f"{field}[{key!r}]", "a string (a map of strings)", item)
    return dict(found)


def text(obj: Mapping[str, Any], key: str, field: str, *, scalar: bool = False) -> str:
    """A string field (absent: ""); ``scalar`` also takes a number (resourceVersion: 12)."""
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if scalar and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime):  # an unquoted timestamp in a hand-written YAML file
        stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
        return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    raise ShapeError(f"{field}.{key}", "a string", value)


def required_text(obj: Mapping[str, Any], key: str, field: str) -> str:
    """A string field that must be present and not empty (metadata.name)."""
    found = text(obj, key, field)
    if not found:
        got = "" if key in obj else "nothing (the field is missing)"
        raise ShapeError(f"{field}.{key}", "a non-empty string", obj.get(key), got)
    return found
