"""YAML text -> plain Python documents, with the line and column of every key and value.

Parsing is ruamel.yaml's (round-trip mode keeps positions, YAML 1.2), under the limits
that keep hostile input cheap (:mod:`reconciler.core.loading.yamlstrict`): file size, document
count, nesting depth and the number of nodes after alias expansion (the "billion
laughs" bomb is cut off, not expanded). What cannot be read becomes a diagnostic
(:mod:`reconciler.core.loading.yamlerrors`).

Round-trip parsing is slow (pure Python), and positions are only needed to report a
diagnostic. So a file is first read by libyaml (PyYAML's C parser) into plain data,
with YAML 1.2 scalar resolution; positions are computed by the full reader only when a
diagnostic asks for them. Anything the fast reader is not sure to read exactly as the
full reader would - a syntax error, a duplicate key, an alias, an explicit tag, a
merge key, a number or date in an unusual spelling, a non-text key, a limit - sends
the whole file to the full reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from reconciler.core.loading.yamlerrors import (
    bad_character,
    file_error,
    not_utf8,
    too_large,
    yaml_error,
)
from reconciler.core.loading.yamlfast import fast_documents
from reconciler.core.loading.yamlstrict import (
    MAX_DEPTH,
    MAX_DOCUMENTS_PER_FILE,
    MAX_FILE_BYTES,
    MAX_NODES_PER_DOCUMENT,
    LimitExceededError,
    Position,
    strict_yaml,
)
from reconciler.model.diagnostics import Diagnostic, Path, format_path
from reconciler.model.shown import clip


@dataclass(frozen=True)
class Positions:
    """Where each value (and each mapping key) stands in the file."""

    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def at(self, path: Path, *, key: bool = False) -> Position:
        """The nearest known position for ``path``, walking up to its parents."""
        if key and path in self.keys:
            return self.keys[path]
        probe = path
        while probe:
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), (1, 1))


@dataclass(frozen=True)
class YamlDocument:
    """One YAML document as plain data, with where it came from.

    ``locate`` gives the document's positions; it may parse the file again, once, on
    first use (see the module docstring).
    """

    file: str
    index: int
    data: Any
    locate: Callable[[], Positions] = field(repr=False, compare=False, default=Positions)

    @property
    def positions(self) -> Positions:
        """Where each key and value of this document stands in its file."""
        return self.locate()

    def diagnostic(
        self, path: Path, message: str, code: str, *, key: bool = False, warning: bool = False
    ) -> Diagnostic:
        """A diagnostic located at ``path`` in this document."""
        line, col = self.positions.at(path, key=key)
        return Diagnostic(
            file=self.file,
            line=line,
            col=col,
            severity="warning" if warning else "error",
            path=format_path(path),
            message=message,
            code=code,
        )


def parse(file: str, text: str | bytes) -> tuple[list[YamlDocument], list[Diagnostic]]:
    """Parse every document of one file; never raises for bad input."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_FILE_BYTES:
        return [], [too_large(file, size)]
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return [], [not_utf8(file, raw, err)]
    fast = _fast_documents(text)
    if fast is not None:
        lazy = _LazyPositions(file, text)
        return [
            YamlDocument(file, index, data, lambda i=index: lazy.of(i))  # type: ignore[misc]
            for index, data in enumerate(fast)
            if data is not None
        ], []
    return _full_parse(file, text)


def _full_parse(file: str, text: str) -> tuple[list[YamlDocument], list[Diagnostic]]:
    """The round-trip reader: exact positions, ruamel's error messages, every limit."""
    documents: list[YamlDocument] = []
    try:
        for index, raw in enumerate(strict_yaml().load_all(text)):
            if index >= MAX_DOCUMENTS_PER_FILE:
                return documents, [
                    file_error(
                        file, f"more than {MAX_DOCUMENTS_PER_FILE} documents in one file", "limits"
                    )
                ]
            if raw is None:
                continue
            documents.append(_document(file, index, raw))
    except MarkedYAMLError as err:
        return documents, [yaml_error(file, err)]
    except LimitExceededError as err:
        line, col = err.position
        return documents, [Diagnostic(file, line, col, "error", "", str(err), "limits")]
    except ReaderError as err:
        return documents, [bad_character(file, text, err)]
    except YAMLError as err:
        return documents, [file_error(file, f"YAML error: {clip(str(err), 200)}", "yaml")]
    except RecursionError:
        return documents, [file_error(file, f"nesting deeper than {MAX_DEPTH} levels", "limits")]
    except Exception as err:  # a reader bug must still name the file
        return documents, [file_error(file, f"cannot read this YAML ({err!r})", "yaml")]
    return documents, []


@dataclass
class _Walk:
    file: str
    positions: Positions
    budget: int = MAX_NODES_PER_DOCUMENT

    def spend(self, position: Position) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise LimitExceededError(
                f"document expands to more than {MAX_NODES_PER_DOCUMENT} values "
                "(aliases multiply; is this an alias bomb?) - refused",
                position,
            )


def _document(file: str, index: int, raw: Any) -> YamlDocument:
    positions = Positions()
    start = _pos(getattr(raw, "lc", None))
    positions.values[()] = start
    walk = _Walk(file, positions)
    data = _plain(raw, (), walk, 0, start)
    return YamlDocument(file=file, index=index, data=data, locate=lambda: positions)


def _pos(lc: Any, kind: str = "", arg: Any = None) -> Position:
    if lc is None:
        return (1, 1)
    if kind == "key":
        line, col = lc.key(arg)
    elif kind == "value":
        line, col = lc.value(arg)
    elif kind == "item":
        line, col = lc.item(arg)
    else:
        line, col = lc.line, lc.col
    if line is None or col is None:  # ruamel leaves a bare scalar document without a mark
        return (1, 1)
    return (line + 1, col + 1)


def _plain(node: Any, path: Path, walk: _Walk, depth: int, position: Position) -> Any:
    walk.spend(position)
    if depth > MAX_DEPTH:
        raise LimitExceededError(f"nesting deeper than {MAX_DEPTH} levels", position)
    if isinstance(node, CommentedMap):
        return dict(_mapping(node, path, walk, depth))
    if isinstance(node, CommentedSeq):
        out = []
        for i, item in enumerate(node):
            pos = _safe_pos(node, "item", i, position)
            walk.positions.values[(*path, i)] = pos
            out.append(_plain(item, (*path, i), walk, depth + 1, pos))
        return out
    return _scalar(node)


def _mapping(node: CommentedMap, path: Path, walk: _Walk, depth: int) -> Iterator[tuple[Any, Any]]:
    for key, value in node.items():
        key_pos = _safe_pos(node, "key", key, walk.positions.values.get(path, (1, 1)))
        plain_key = _scalar(key)
        if not isinstance(plain_key, str | int | float | bool) and plain_key is not None:
            raise LimitExceededError("mapping keys must be plain text", key_pos)
        child = (*path, str(plain_key) if not isinstance(plain_key, str) else plain_key)
        value_pos = _safe_pos(node, "value", key, key_pos)
        if value is None and value_pos[0] > key_pos[0]:
            # An empty value (``spec:`` then a newline): ruamel marks where the next token
            # starts, possibly past the end of the file; the key is what the user wrote.
            value_pos = key_pos
        walk.positions.keys[child] = key_pos
        walk.positions.values[child] = value_pos
        yield (
            child[-1] if isinstance(plain_key, str) else plain_key,
            _plain(value, child, walk, depth + 1, value_pos),
        )


def _safe_pos(node: Any, kind: str, arg: Any, fallback: Position) -> Position:
    try:
        return _pos(node.lc, kind, arg)
    except (KeyError, IndexError, TypeError, AttributeError):
        return fallback


def _scalar(node: Any) -> Any:
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, ScalarBoolean):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, CommentedMap | CommentedSeq):
        return node
    return str(node)


# --- the fast reader -------------------------------------------------------------------


class _LazyPositions:
    """Positions of one file's documents, from the full reader, computed on first use."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text
        self._by_index: dict[int, Positions] | None = None

    def of(self, index: int) -> Positions:
        if self._by_index is None:
            documents, _ = _full_parse(self.file, self.text)
            self._by_index = {d.index: d.positions for d in documents}
        return self._by_index.get(index) or Positions()


def _fast_documents(text: str) -> list[Any] | None:
    """The fast reader (:mod:`reconciler.core.loading.yamlfast`) under this module's limits."""
    return fast_documents(text, MAX_DOCUMENTS_PER_FILE, MAX_NODES_PER_DOCUMENT, MAX_DEPTH)
