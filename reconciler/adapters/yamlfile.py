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
    shared: bool = False  # the file has anchors or aliases: a write dumps every item


def error(path: Path, err: Exception) -> str:
    """A YAML error as ``file:line:col: not valid YAML: problem``."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
    return f"{path}{where}: not valid YAML: {getattr(err, 'problem', None) or err}"


def load(text: str) -> tuple[Any, list[Span]]:
    """The document and the spans of its node items (the items of a List, or a lone Node).

    Built straight from libyaml's events, so no node graph (a Python object and two marks
    per scalar: 4x the memory of the data) is ever held; a file with anchors, aliases,
    explicit tags or merge keys goes through PyYAML's full loader instead.
    Raises yaml.YAMLError (or ValueError) as PyYAML does.
    """
    loader = _LOADER(text)
    try:
        data, marks = _build(loader)
    except _UnusualError:
        data, marks = None, None
    finally:
        loader.dispose()
    if marks is None:
        loader = _LOADER(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
        spans = [_span(text, *m) for m in _node_marks(root)]
        return data, [Span(s.start, s.end, s.column, s.flow, shared=True) for s in spans]
    return data, [_span(text, *m) for m in marks]


class _UnusualError(Exception):
    """A construct the event builder leaves to PyYAML's full loader."""


_NO_KEY = object()
_STR = "tag:yaml.org,2002:str"
_Marks = tuple[int, int, int, bool]  # start, end, column, flow


def _build(loader: Any) -> tuple[Any, list[_Marks]]:
    """The document from the parser's events, and the marks of its node items."""
    stack: list[Any] = []  # open containers, with the pending key of each and its start
    keys: list[Any] = []
    starts: list[Any] = []
    items: list[_Marks] = []
    root: Any = None
    root_marks: list[_Marks] = []
    documents = 0
    while True:
        event = loader.get_event()
        kind = type(event)
        if kind is yaml.ScalarEvent:
            if event.anchor is not None or event.tag not in (None, "!"):
                raise _UnusualError
            value = event.value
            if event.implicit[0]:  # plain: resolved as the safe loader would
                tag = loader.resolve(yaml.ScalarNode, value, (True, False))
                if tag != _STR:
                    value = loader.construct_object(yaml.ScalarNode(tag, value))
            start, flow = event.start_mark, False
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if event.anchor is not None or event.tag not in (None, "!"):
                raise _UnusualError
            stack.append({} if kind is yaml.MappingStartEvent else [])
            keys.append(_NO_KEY)
            starts.append(event)
            continue
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            value = stack.pop()
            keys.pop()
            opened = starts.pop()
            start, flow = opened.start_mark, bool(opened.flow_style)
        elif kind is yaml.AliasEvent:
            raise _UnusualError
        elif kind is yaml.StreamEndEvent:
            return root, items if isinstance(root, dict) and "items" in root else root_marks
        else:
            documents += kind is yaml.DocumentStartEvent
            if documents > 1:
                raise _UnusualError  # a second document: the full loader says what is wrong
            continue
        marks = (start.index, event.end_mark.index, start.column, flow)
        if not stack:
            root, root_marks = value, [marks]
            continue
        top = stack[-1]
        if type(top) is list:
            top.append(value)
            if len(stack) == 2 and keys[0] == "items":
                items.append(marks)
        elif keys[-1] is _NO_KEY:
            if isinstance(value, (dict, list)) or value == "<<":
                raise _UnusualError
            keys[-1] = value
        else:
            top[keys[-1]] = value
            keys[-1] = _NO_KEY


def _node_marks(root: yaml.Node | None) -> list[_Marks]:
    if not isinstance(root, yaml.MappingNode):
        return []
    items = [v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "items"]
    nodes = items[0].value if items and isinstance(items[0], yaml.SequenceNode) else [root]
    return [
        (
            n.start_mark.index,
            n.end_mark.index,
            n.start_mark.column,
            bool(getattr(n, "flow_style", False)),
        )
        for n in nodes
    ]


def _span(text: str, start: int, end: int, column: int, flow: bool) -> Span:
    if not flow:  # a block item's span runs on over the comments after it
        body = text[start:end].rstrip()
        lines = body.split("\n")
        while len(lines) > 1 and lines[-1].lstrip().startswith("#"):
            lines.pop()
            body = "\n".join(lines).rstrip()
        end = start + len(body)
    return Span(start, end, column, flow)


def splice(
    text: str, spans: list[Span], items: list[Any], changed: set[int]
) -> tuple[str, list[Span]]:
    """``text`` with the items at the ``changed`` indexes dumped anew in place, and the
    spans of every item in the new text."""
    if any(span.shared for span in spans):  # an alias may point into any changed item
        changed = set(range(len(spans)))
    out: list[str] = []
    moved: list[Span] = []
    done = shift = 0
    for index, span in enumerate(spans):
        if index not in changed:
            moved.append(
                Span(span.start + shift, span.end + shift, span.column, span.flow, span.shared)
            )
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
