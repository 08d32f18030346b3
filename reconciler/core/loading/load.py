"""Source files -> a validated :class:`Topology` and every diagnostic, all in one pass.

Pure: the caller (a directory or git adapter) hands over ``(path, bytes)`` pairs.
Errors never stop the run early: each document is checked on its own, then the
cross-document rules run over the documents that parsed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reconciler.core.loading import rules
from reconciler.core.loading.yamldoc import YamlDocument, parse
from reconciler.model import topology as t
from reconciler.model.diagnostics import Diagnostic, Path, errors, ordered, warnings
from reconciler.model.shown import clip

REFUSED_FILE_CODES = frozenset({"file-size", "read", "symlink-loop"})


@dataclass(frozen=True)
class SourceFile:
    """One file's path (as shown to the user) and raw content."""

    path: str
    content: bytes


@dataclass(frozen=True, eq=False)
class LoadResult:
    """What loading produced: the topology (None when there are errors) and diagnostics."""

    topology: t.Topology | None
    diagnostics: list[Diagnostic]
    files: int

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return self.topology is not None


def load(files: Iterable[SourceFile], extra: Iterable[Diagnostic] = ()) -> LoadResult:
    """Parse, validate and cross-check every file; collect every diagnostic."""
    diagnostics = list(extra)
    # Files refused before parsing (too large, unreadable, a symlink loop) count as files.
    count = len({d.file for d in diagnostics if d.code in REFUSED_FILE_CODES})
    clusters: list[tuple[t.Cluster, YamlDocument]] = []
    sites: list[tuple[t.Site, YamlDocument]] = []
    for source in files:
        count += 1
        documents, problems = parse(source.path, source.content)
        diagnostics += problems
        for doc in documents:
            model = validate_document(doc, diagnostics)
            if isinstance(model, t.Cluster):
                clusters.append((model, doc))
            elif isinstance(model, t.Site):
                sites.append((model, doc))
    diagnostics += rules.check(clusters, sites)
    diagnostics = ordered(diagnostics)
    if errors(diagnostics):
        return LoadResult(None, diagnostics, count)
    cluster = clusters[0][0] if clusters else t.Cluster()
    topology = t.Topology(
        cluster=cluster,
        sites=tuple(site for site, _ in sites),
        files={site.name: doc.file for site, doc in sites},
        warnings=tuple(warnings(diagnostics)),
    )
    return LoadResult(topology, diagnostics, count)


def validate_document(doc: YamlDocument, out: list[Diagnostic]) -> t.Cluster | t.Site | None:
    """Check a document's header, then its kind's model; append diagnostics to ``out``."""
    data = doc.data
    if not isinstance(data, dict):
        out.append(
            doc.diagnostic(
                (),
                "a document must be a mapping with apiVersion, kind, metadata and spec",
                "document",
            )
        )
        return None
    header_ok = True
    version = data.get("apiVersion")
    if version != t.API_VERSION:
        header_ok = False
        said = "is missing" if version is None else f"is {version!r}"
        out.append(
            doc.diagnostic(
                ("apiVersion",),
                f"apiVersion {said} - write apiVersion: {t.API_VERSION}",
                "document",
            )
        )
    kind = data.get("kind")
    model: type[BaseModel] | None = t.KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        said = "is missing" if kind is None else f"{kind!r} is not a topoctl kind"
        out.append(
            doc.diagnostic(
                ("kind",), f"kind {said} - write kind: Site or kind: Cluster", "document"
            )
        )
        return None
    if not header_ok:
        return None
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as err:
        out += [_translate(doc, model, e) for e in err.errors(include_url=False)]
        return None


# Errors raised by a model's own cross-field check point at the field that is off.
_FOCUS = {
    "route_via_leader": "via",
    "route_family": "via",
    "route_target": "to",
    "route_protocol": "protocol",
}
_BOUNDS = {"ge": "at least", "le": "at most", "gt": "more than", "lt": "less than"}
_TYPES = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "float_type": "a number",
    "float_parsing": "a number",
    "dict_type": "a mapping (key: value)",
    "list_type": "a list",
    "tuple_type": "a list",
    "string_type": "text",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}


def _known_fields() -> set[str]:
    names: set[str] = set()
    for model in (t.Cluster, t.Site):
        stack: list[type[BaseModel]] = [model]
        while stack:
            current = stack.pop()
            for name, info in current.model_fields.items():
                names.add(info.alias or name)
                annotation = info.annotation
                for arg in (annotation, *getattr(annotation, "__args__", ())):
                    if isinstance(arg, type) and issubclass(arg, BaseModel):
                        stack.append(arg)
    return names


_FIELDS = _known_fields()


def _fields_of(root: type[BaseModel], path: Path) -> set[str]:
    """The YAML field names of the model found at ``path`` (all known names if none is)."""
    current: type[BaseModel] | None = root
    for item in path:
        if current is None:
            break
        if isinstance(item, int):  # a list index: the element has the list's model
            continue
        fields = {info.alias or name: info for name, info in current.model_fields.items()}
        info = fields.get(item)
        current = _model_in(info.annotation) if info is not None else None
    if current is None:
        return _FIELDS
    return {info.alias or name for name, info in current.model_fields.items()}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _resolve(data: Any, loc: Path) -> Path:
    """Pydantic's ``loc`` spelled as the loader's paths (non-text YAML keys as ``str(key)``).

    Pydantic reports a mapping key ``true`` as ``1`` and ``1.5`` as ``'1.5'``; the
    positions recorded while parsing use ``str(key)`` for every key that is not text.
    """
    out: list[str | int] = []
    for item in loc:
        if isinstance(data, dict):
            key = next(
                (k for k in data if k == item and type(k) is type(item)),
                next((k for k in data if k == item or str(k) == str(item)), item),
            )
            out.append(key if isinstance(key, str) else str(key))
            data = data.get(key)
        else:
            out.append(item)
            data = data[item] if isinstance(data, list) and isinstance(item, int) else None
    return tuple(out)


def _translate(doc: YamlDocument, model: type[BaseModel], error: ErrorDetails) -> Diagnostic:
    loc: Path = tuple(error["loc"])
    kind = error["type"]
    value: Any = error.get("input")
    on_key = bool(loc) and loc[-1] == "[key]"
    if on_key:
        loc = loc[:-1]
    loc = _resolve(doc.data, loc)
    message = error["msg"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        close = difflib.get_close_matches(name, _fields_of(model, loc[:-1]), n=1)
        hint = f" - did you mean {close[0]!r}?" if close else ""
        message = f"unknown field {clip(name)!r}{hint}"
        on_key = True
    elif kind == "invalid_key":
        message = f"unknown field {_describe(value)}: field names are text"
        on_key = True
    elif kind == "missing":
        message = f"missing required field {loc[-1]!r}"
        return doc.diagnostic(loc[:-1], message, kind)
    elif kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        message = f"{_describe(value)} is not allowed here: expected {expected}"
    elif kind in _TYPES:
        message = f"expected {_TYPES[kind]}, got {_describe(value)}"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        ctx = error.get("ctx") or {}
        bound = ", ".join(f"{_BOUNDS.get(k, k)} {v}" for k, v in ctx.items())
        message = f"{clip(repr(value))} is out of range: it must be {bound}"
    elif kind in _FOCUS and isinstance(value, dict) and _FOCUS[kind] in value:
        loc = (*loc, _FOCUS[kind])
    return doc.diagnostic(loc, message, kind, key=on_key)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):  # as YAML spells it, not Python
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(clip(value)) if isinstance(value, str) else clip(repr(value))
