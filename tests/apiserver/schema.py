"""Kubernetes' own OpenAPI schemas, as bundled by the `kubernetes-validate` package.

The double uses them for two things the real server gets from its Go types:
strategic-merge patch metadata (`x-kubernetes-patch-strategy`,
`x-kubernetes-patch-merge-key`) and the round trip through typed structs
(unknown fields dropped with a warning, wrong JSON types rejected, empty
lists/maps omitted, timestamps re-rendered in UTC). Loaded once per process.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
_MICROTIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def clone(value: Any) -> Any:
    """Deep-copy a JSON document (dicts, lists, scalars): several times faster than deepcopy."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def clone_doc(doc: JSON) -> JSON:
    """`clone` for a JSON object, typed."""
    return {k: clone(v) for k, v in doc.items()}


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", name.split("-", maxsplit=1)[0]))


@functools.cache
def schema_dir() -> Path:
    """The newest non-strict schema directory shipped by kubernetes-validate."""
    spec = importlib.util.find_spec("kubernetes_validate")  # locate without importing jsonschema
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("kubernetes-validate is not installed")
    root = Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"
    candidates = [
        p
        for p in root.iterdir()
        if p.name.endswith("-local") and (p / "_definitions.json").exists()
    ]
    if not candidates:
        raise RuntimeError(f"no schema directory under {root}")
    return max(candidates, key=lambda p: _version_key(p.name))


@functools.cache
def definitions() -> dict[str, JSON]:
    """All definitions (`$defs`) keyed by their OpenAPI name, e.g. `io.k8s.api.core.v1.Node`."""
    with (schema_dir() / "_definitions.json").open() as f:
        doc = json.load(f)
    defs: dict[str, JSON] = doc.get("$defs") or doc.get("definitions") or {}
    return defs


def ref_name(node: JSON | None) -> str | None:
    """The definition name a `$ref` node points at, if any."""
    if not node:
        return None
    ref = node.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None


def resolve(node: JSON | None) -> JSON | None:
    """Follow `$ref`s to the schema they name."""
    seen = 0
    while node is not None and "$ref" in node and seen < 16:
        node = definitions().get(ref_name(node) or "")
        seen += 1
    return node


@functools.cache
def ref_node(definition_name: str) -> JSON:
    """A (cached, hence stable) `$ref` node pointing at one definition."""
    return {"$ref": f"#/$defs/{definition_name}"}


def definition(name: str) -> JSON:
    """One definition by name; KeyError if the bundled schemas lack it."""
    return definitions()[name]


def child(schema: JSON | None, key: str) -> JSON | None:
    """The raw (unresolved) schema node of `key` inside an object schema."""
    schema = resolve(schema)
    if schema is None:
        return None
    props = schema.get("properties")
    if props and key in props:
        node: JSON = props[key]
        return node
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    return None


def items(node: JSON | None) -> JSON | None:
    """The raw schema node of a list's elements."""
    node = resolve(node)
    if node is None:
        return None
    item = node.get("items")
    return item if isinstance(item, dict) else None


def patch_meta(node: JSON | None) -> tuple[frozenset[str], str | None]:
    """(`x-kubernetes-patch-strategy` values, `x-kubernetes-patch-merge-key`) of a field."""
    if not node:
        return frozenset(), None
    raw = node.get("x-kubernetes-patch-strategy") or ""
    strategies = frozenset(s.strip() for s in raw.split(",") if s.strip())
    return strategies, node.get("x-kubernetes-patch-merge-key")


_TYPES: dict[int, frozenset[str]] = {}


def _types(node: JSON) -> frozenset[str]:
    """JSON types a schema node allows (cached: schema nodes live as long as the process)."""
    cached = _TYPES.get(id(node))
    if cached is None:
        cached = _TYPES[id(node)] = frozenset(_compute_types(node))
    return cached


def _compute_types(node: JSON) -> set[str]:
    found: set[str] = set()
    t = node.get("type")
    if isinstance(t, str):
        found.add(t)
    elif isinstance(t, list):
        found.update(x for x in t if isinstance(x, str))
    for alt in (node.get("oneOf") or []) + (node.get("anyOf") or []):
        if isinstance(alt, dict):
            resolved = resolve(alt)
            if resolved is not None:
                found |= _types(resolved)
    return found


_DROP = object()


@dataclass
class Conformance:
    """What the typed round trip changed or rejected."""

    unknown: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


_RFC3339 = "2006-01-02T15:04:05Z07:00"
_RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"
_STAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?P<frac>[.,]\d+)?(?P<zone>.*)"
)
_ZONE = re.compile(r"Z|([+-])(\d{2}):(\d{2})")


@functools.lru_cache(maxsize=8192)
def format_time(value: str, *, micro: bool) -> str:
    """Parse a timestamp as Go's ``time.Parse`` does with metav1.Time's layout (RFC 3339,
    any fraction) or MicroTime's (RFC3339Micro: exactly six fractional digits), and
    re-render it the way they marshal. ValueError carries Go's message on failure."""
    layout = _RFC3339_MICRO if micro else _RFC3339
    match = _STAMP.fullmatch(value)
    if match is None:
        raise ValueError(f'parsing time "{value}" as "{layout}": cannot parse "{value}" as "2006"')
    frac, zone = match.group("frac") or "", match.group("zone")
    if micro and len(frac) != 7:
        rest = value[match.start("frac") if frac else match.start("zone") :]
        raise ValueError(
            f'parsing time "{value}" as "{layout}": cannot parse "{rest}" as ".000000"'
        )
    zone_match = _ZONE.fullmatch(zone)
    if zone_match is None:
        raise ValueError(f'parsing time "{value}" as "{layout}": cannot parse "{zone}" as "Z07:00"')
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    micros = int((frac[1:] + "000000")[:6]) if frac else 0
    offset = timedelta(0)
    if zone != "Z":
        sign = -1 if zone_match.group(1) == "-" else 1
        offset = sign * timedelta(hours=int(zone_match.group(2)), minutes=int(zone_match.group(3)))
    try:
        parsed = datetime(year, month, day, hour, minute, second, micros, timezone(offset))
    except ValueError as exc:
        raise ValueError(f'parsing time "{value}": {exc}') from None
    parsed = parsed.astimezone(UTC)
    if micro:
        return parsed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _NodeInfo:
    """What `conform` needs of one schema node, computed once per node."""

    name: str | None
    allowed: frozenset[str]
    props: JSON
    extra: JSON | None
    extra_is_string: bool
    items: JSON | None
    free_form: bool


_INFO: dict[int, _NodeInfo | None] = {}


def _info(node: JSON | None) -> _NodeInfo | None:
    if node is None:
        return None
    key = id(node)
    if key in _INFO:
        return _INFO[key]
    schema = resolve(node)
    info: _NodeInfo | None = None
    if schema is not None:
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        extra_node = extra if isinstance(extra, dict) else None
        extra_schema = resolve(extra_node)
        item_node = schema.get("items")
        info = _NodeInfo(
            name=ref_name(node),
            allowed=_types(schema),
            props=props,
            extra=extra_node,
            extra_is_string=extra_schema is not None and "string" in _types(extra_schema),
            items=item_node if isinstance(item_node, dict) else None,
            free_form=not props and extra_node is None,
        )
    _INFO[key] = info
    return info


def conform(value: Any, node: JSON | None, report: Conformance, path: str = "") -> Any:
    """Return `value` as it would look after decoding into the Go type and encoding again.

    Unknown object fields are dropped (and recorded), nulls and empty lists/maps
    are omitted, timestamps are normalised, numeric quantities become strings.
    Type mismatches are recorded in `report.errors`. `node` must be a schema node
    that lives as long as the process (from `definitions()` or `ref_node()`).
    """
    info = _info(node)
    if info is None:
        return value
    if value is None:
        return _DROP
    name = info.name
    if name is not None:
        if name in (_TIME, _MICROTIME):
            if not isinstance(value, str):
                report.errors.append(
                    f"{path}: expected an RFC 3339 timestamp, got {_json_type(value)}"
                )
                return value
            try:
                return format_time(value, micro=name == _MICROTIME)
            except ValueError as exc:
                report.errors.append(f"{path}: {exc}")
                return value
        if name == _QUANTITY and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(int(value)) if float(value).is_integer() else repr(value)
    allowed = info.allowed
    if not allowed:
        return value
    if isinstance(value, dict):
        if "object" not in allowed:
            return _mismatch(value, allowed, path, report)
        if info.free_form:
            return value  # free-form (RawExtension, FieldsV1)
        props = info.props
        out: JSON = {}
        for key, sub in value.items():
            if key in props:
                got = conform(sub, props[key], report, f"{path}.{key}" if path else key)
            elif info.extra is not None:
                if sub is None and info.extra_is_string:
                    got = ""
                elif isinstance(sub, str) and info.extra_is_string:
                    got = sub
                else:
                    got = conform(sub, info.extra, report, f"{path}.{key}" if path else key)
            else:
                report.unknown.append(f"{path}.{key}" if path else key)
                continue
            if got is not _DROP:
                out[key] = got
        if not out and not props:
            return _DROP  # an empty Go map is omitted
        return out
    if isinstance(value, list):
        if "array" not in allowed:
            return _mismatch(value, allowed, path, report)
        if not value:
            return _DROP
        item_node = info.items
        result = []
        for i, sub in enumerate(value):
            got = conform(sub, item_node, report, f"{path}[{i}]")
            result.append(None if got is _DROP else got)
        return result
    if isinstance(value, str):
        return value if "string" in allowed else _mismatch(value, allowed, path, report)
    if isinstance(value, bool):
        return value if "boolean" in allowed else _mismatch(value, allowed, path, report)
    if isinstance(value, int):
        ok = "integer" in allowed or "number" in allowed
        return value if ok else _mismatch(value, allowed, path, report)
    if isinstance(value, float):
        return value if "number" in allowed else _mismatch(value, allowed, path, report)
    return value


def _mismatch(value: Any, allowed: frozenset[str], path: str, report: Conformance) -> Any:
    want = "/".join(sorted(t for t in allowed if t != "null"))
    report.errors.append(
        f"json: cannot unmarshal {_json_type(value)} into Go struct field {path or '.'} "
        f"of type {want}"
    )
    return value


def conform_object(obj: JSON, definition_name: str) -> tuple[JSON, Conformance]:
    """Conform a whole top-level object against one definition."""
    report = Conformance()
    out = conform(obj, ref_node(definition_name), report)
    return ({} if out is _DROP else out), report
