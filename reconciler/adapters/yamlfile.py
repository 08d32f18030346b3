"""YAML snapshots read with libyaml and written back by splicing only the changed items.

libyaml's C parser reads the file (PyYAML's CSafeLoader) and gives every item of the
node list its place in the text; a write replaces the text of the items that changed,
each dumped by libyaml's C emitter at the item's own indentation (block or flow, as it
was), and leaves every other byte of the file as it was: the header, comments between
items, the untouched nodes with their quoting. Within a changed item every field is
kept, in its order; comments inside that item are not (they belong to no field).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True, slots=True)
class Span:
    """Where one item's text is: [start, end) in characters, its column, its style."""

    start: int
    end: int
    column: int
    flow: bool


def error(path: Path, err: Exception) -> str:
    """A YAML error as ``file:line:col: not valid YAML: problem``."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
    return f"{path}{where}: not valid YAML: {getattr(err, 'problem', None) or err}"


def load(text: str) -> tuple[Any, list[Span]]:
    """The document and the spans of its node items (the items of a List, or a lone Node).

    Raises yaml.YAMLError (or ValueError) as PyYAML does.
    """
    loader = _LOADER(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()
    return data, _spans(text, root)


def _spans(text: str, root: yaml.Node | None) -> list[Span]:
    if not isinstance(root, yaml.MappingNode):
        return []
    items = [v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "items"]
    nodes = items[0].value if items and isinstance(items[0], yaml.SequenceNode) else [root]
    spans = []
    for node in nodes:
        start, end = node.start_mark.index, node.end_mark.index
        flow = bool(getattr(node, "flow_style", False))  # a scalar item: refused later
        if not flow:  # a block item's span runs on over the comments after it
            body = text[start:end].rstrip()
            lines = body.split("\n")
            while len(lines) > 1 and lines[-1].lstrip().startswith("#"):
                lines.pop()
                body = "\n".join(lines).rstrip()
            end = start + len(body)
        spans.append(Span(start, end, node.start_mark.column, flow))
    return spans


def splice(
    text: str, spans: list[Span], items: list[Any], changed: set[int]
) -> tuple[str, list[Span]]:
    """``text`` with the items at the ``changed`` indexes dumped anew in place, and the
    spans of every item in the new text."""
    out: list[str] = []
    moved: list[Span] = []
    done = shift = 0
    for index, span in enumerate(spans):
        if index not in changed:
            moved.append(Span(span.start + shift, span.end + shift, span.column, span.flow))
            continue
        out.append(text[done : span.start])
        new = _dump(items[index], span)
        out.append(new)
        done = span.end
        moved.append(
            Span(span.start + shift, span.start + shift + len(new), span.column, span.flow)
        )
        shift += len(new) - (span.end - span.start)
    out.append(text[done:])
    return "".join(out), moved


def _dump(item: Any, span: Span) -> str:
    dumped: str = yaml.dump(
        item,
        Dumper=_DUMPER,
        sort_keys=False,
        default_flow_style=span.flow,
        allow_unicode=True,
        width=1 << 20,
    )
    dumped = dumped.rstrip("\n")
    if span.flow:
        return dumped
    return dumped.replace("\n", "\n" + " " * span.column)
