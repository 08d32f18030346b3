"""The field-by-field reference of the topology (docs/topology-reference.md), generated.

Pure: from the pydantic models (the order of the documents and fields, YAML names by
alias, required or default, descriptions) and from the JSON Schema pydantic derives from
those same models (types, allowed values, ranges, patterns), so the reference cannot say
something the loader does not do. Deterministic: the same models give the same text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from reconciler.core.rendering.schema import topology_schema
from reconciler.model import topology as t

HEADER = """\
# Topology reference

<!-- Generated from reconciler/model (topology.py, route.py) by `make docs`: do not edit. -->

Every field of the two kinds of document a `sites/*.yaml` file holds, `Cluster` (at
most one in the whole tree) and `Site` (one per Kilo location), as the loader reads
them: the YAML name, the type and the values it accepts, and what an omitted field
means. Unknown fields are errors. [topology.md](topology.md) explains the meaning and
the rules that span fields and files; `topoctl schema` prints the same contract as JSON
Schema.
"""


def _models(root: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """The model and every model its fields hold, depth-first in field order."""
    yield root
    for field in root.model_fields.values():
        for inner in _nested(field.annotation):
            yield from _models(inner)


def _nested(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in get_args(annotation):
        yield from _nested(arg)


def ordered_models() -> list[type[BaseModel]]:
    """Cluster's models, then Site's, each once, in the order a reader meets them."""
    seen: dict[str, type[BaseModel]] = {}
    for root in (t.Cluster, t.Site):
        for model in _models(root):
            seen.setdefault(model.__name__, model)
    return list(seen.values())


def _anchor(name: str) -> str:
    return name.lower()


def _code(value: Any) -> str:
    if isinstance(value, str) and value:
        return f"`{value}`"
    return f"`{json.dumps(value, sort_keys=True)}`"  # "" shows as `""`, not as nothing


def _type(prop: dict[str, Any], *, field_level: bool = False) -> str:
    """A JSON Schema property as a short type: `string`, [`Route`](#route), list of ...

    A type's own description (say "an IP address") is shown; the field's is not (the
    Description column has it).
    """
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[1]
        return f"[`{name}`](#{_anchor(name)})"
    if "anyOf" in prop:
        kinds = [_type(p) for p in prop["anyOf"] if p.get("type") != "null"]
        nullable = any(p.get("type") == "null" for p in prop["anyOf"])
        return " or ".join(kinds + (["null"] if nullable else []))
    if "const" in prop:
        return _code(prop["const"])
    kind = prop.get("type", "any")
    if kind == "array":
        text = f"list of {_type(prop.get('items', {}))}"
    elif kind == "object" and "additionalProperties" in prop:
        text = f"map of string to {_type(prop['additionalProperties'])}"
    else:
        text = str(kind)
    limits = _limits(prop, with_description=not field_level)
    return f"{text} ({limits})" if limits else text


def _limits(prop: dict[str, Any], *, with_description: bool) -> str:
    parts = []
    if "enum" in prop:
        parts.append("one of " + ", ".join(_code(v) for v in prop["enum"]))
    if "minimum" in prop and "maximum" in prop:
        parts.append(f"{prop['minimum']} to {prop['maximum']}")
    elif "minimum" in prop:
        parts.append(f"at least {prop['minimum']}")
    elif "maximum" in prop:
        parts.append(f"at most {prop['maximum']}")
    if "minLength" in prop:
        parts.append(f"at least {prop['minLength']} characters")
    if "maxLength" in prop:
        parts.append(f"at most {prop['maxLength']} characters")
    if "pattern" in prop:
        parts.append(f"matching `{prop['pattern']}`")
    if with_description and "description" in prop:
        parts.append(str(prop["description"]))
    return "; ".join(parts)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        made = field.default_factory()  # type: ignore[call-arg]
        if isinstance(made, BaseModel):
            return f"its defaults ([`{type(made).__name__}`](#{_anchor(type(made).__name__)}))"
        return _code(made)
    value = field.default
    if value is PydanticUndefined or value is None:
        return "none (`null`)" if value is None else "none"
    if isinstance(value, tuple | list | dict):
        return _code(list(value) if isinstance(value, tuple) else value)
    return _code(value)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _section(model: type[BaseModel], definition: dict[str, Any]) -> list[str]:
    doc = (model.__doc__ or "").strip().splitlines()[0]
    lines = [f"## {model.__name__}", "", doc, ""]
    lines += ["| Field | Type | Default | Description |", "| --- | --- | --- | --- |"]
    properties = definition.get("properties", {})
    for name, field in model.model_fields.items():
        key = field.alias or name
        prop = properties[key]
        description = field.description or prop.get("description", "")
        if key in ("kind", "apiVersion"):
            description = description or f"Always {_code(field.default)}."
        if not description:  # a nested document: its model says what it is
            description = next((m.__doc__ or "" for m in _nested(field.annotation)), "")
        row = [f"`{key}`", _type(prop, field_level=True), _default(field), description]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return [*lines, ""]


def reference_markdown() -> str:
    """docs/topology-reference.md, whole."""
    definitions = topology_schema()["$defs"]
    models = ordered_models()
    lines = [HEADER, "Contents: " + ", ".join(
        f"[`{m.__name__}`](#{_anchor(m.__name__)})" for m in models
    ) + ".", ""]  # fmt: skip
    for model in models:
        lines += _section(model, definitions[model.__name__])
    return "\n".join(lines).rstrip("\n") + "\n"
