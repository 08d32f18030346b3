"""YAML text -> plain Python documents, with the line and column of every key and value.

Parsing is ruamel.yaml's (round-trip mode keeps positions, YAML 1.2); this module adds
the limits that keep hostile input cheap: file size, document count, nesting depth and
the number of nodes after alias expansion (the "billion laughs" bomb is cut off, not
expanded).

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

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scanner import RoundTripScanner

from reconciler.core.diagnostics import Diagnostic, Path, format_path
from reconciler.core.yamlfast import fast_documents
from reconciler.model.shown import clip, describe_character

MAX_FILE_BYTES = 1024 * 1024
MAX_DOCUMENTS_PER_FILE = 1000
MAX_NODES_PER_DOCUMENT = 100_000
MAX_DEPTH = 64

Position = tuple[int, int]  # 1-based line, column


class LimitExceededError(Exception):
    """A document is larger or deeper than topoctl reads."""

    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.position = position


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


# The YAML 1.2 core-schema tags, which only say what plain YAML already says. topoctl
# defines no tags of its own; every other tag (``!Ref``, ``!!binary``, ``!!set``,
# ``!!python/...``) is refused rather than silently dropped or turned into an object.
CORE_TAGS = frozenset({"str", "int", "float", "bool", "null", "map", "seq"})
_CORE_PREFIX = "tag:yaml.org,2002:"


class RefusedError(MarkedYAMLError):
    """YAML that parses but that topoctl does not read: a tag or a directive."""


def _refused(problem: str, mark: Any) -> RefusedError:
    return RefusedError(None, None, problem, mark)


def _core_tag(handle: str | None, suffix: str) -> bool:
    if handle == "!!":
        return suffix in CORE_TAGS
    return (
        handle is None
        and suffix.removeprefix(_CORE_PREFIX) in CORE_TAGS
        and (suffix.startswith(_CORE_PREFIX))
    )


class _DepthLimitedScanner(RoundTripScanner):
    """Refuses collections nested deeper than :data:`MAX_DEPTH` as soon as it reads them.

    The scanner's cost grows with the square of the flow depth (a file of ``[[[[...``
    would take seconds to scan), and deep block nesting would exhaust Python's stack in
    the composer, before the depth check on the parsed data could point at the place.
    Open block collections are counted by indentation level, flow ones by bracket.
    """

    def _too_deep(self, column: int | None = None) -> LimitExceededError:
        mark = self.reader.get_mark()
        col = mark.column if column is None else column
        return LimitExceededError(
            f"nesting deeper than {MAX_DEPTH} levels", (mark.line + 1, col + 1)
        )

    def scan_tag(self) -> Any:
        token = super().scan_tag()
        handle, suffix = token.value
        if not _core_tag(handle, suffix):
            written = f"{handle}{suffix}" if handle else suffix
            if handle is None and suffix not in ("!", "!!"):
                written = f"!<{suffix}>"  # a verbatim tag
            raise _refused(
                f"unknown YAML tag {clip(written, 40)!r}: topoctl defines no tags - remove it "
                "and write the value itself (only the core tags !!str, !!int, !!float, "
                "!!bool, !!null, !!map and !!seq are read, as plain YAML would read them)",
                token.start_mark,
            )
        return token

    def scan_directive(self) -> Any:
        token = super().scan_directive()
        if token.name == "YAML" and tuple(token.value or ()) == (1, 2):
            return token
        written = f"%{token.name}" + (
            " " + ".".join(map(str, token.value)) if token.name == "YAML" and token.value else ""
        )
        raise _refused(
            f"the {clip(written, 40)!r} directive is refused: topoctl reads every file as "
            "YAML 1.2 and defines no tags - remove the directive",
            token.start_mark,
        )

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:  # noqa: N803
        if self.flow_level + len(self.indents) >= MAX_DEPTH:
            raise self._too_deep()
        super().fetch_flow_collection_start(TokenClass, to_push)

    def add_indent(self, column: int) -> bool:
        added: bool = super().add_indent(column)
        if added and self.flow_level + len(self.indents) > MAX_DEPTH:
            raise self._too_deep(column)  # where the collection starts, on this line
        return added


class _Constructor(RoundTripConstructor):
    """Reports a value ruamel cannot convert as a positioned YAML error, not a crash.

    Such as ``2024-13-45`` (a timestamp), an integer of 5000 digits, ``!!bool maybe``.
    """

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except (YAMLError, LimitExceededError, RecursionError):
            raise
        except Exception as err:  # ruamel's own constructors raise anything
            kind = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            value = node.value if isinstance(node.value, str) else "this value"
            raise ConstructorError(
                None, None, f"cannot read {value[:80]!r} as {kind} ({err})", node.start_mark
            ) from None


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Scanner = _DepthLimitedScanner
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = False
    return yaml


def too_large(file: str, size: int) -> Diagnostic:
    """The error for a file over :data:`MAX_FILE_BYTES` (refused without parsing it)."""
    return Diagnostic(
        file,
        0,
        0,
        "error",
        "",
        f"file is {size} bytes; topoctl reads files of "
        f"at most {MAX_FILE_BYTES} bytes (1 MiB) - split it",
        "file-size",
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
            return [], [_not_utf8(file, raw, err)]
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
        for index, raw in enumerate(_yaml().load_all(text)):
            if index >= MAX_DOCUMENTS_PER_FILE:
                return documents, [
                    _file_error(
                        file, f"more than {MAX_DOCUMENTS_PER_FILE} documents in one file", "limits"
                    )
                ]
            if raw is None:
                continue
            documents.append(_document(file, index, raw))
    except MarkedYAMLError as err:
        return documents, [_yaml_error(file, err)]
    except LimitExceededError as err:
        line, col = err.position
        return documents, [Diagnostic(file, line, col, "error", "", str(err), "limits")]
    except ReaderError as err:
        return documents, [_bad_character(file, text, err)]
    except YAMLError as err:
        return documents, [_file_error(file, f"YAML error: {clip(str(err), 200)}", "yaml")]
    except RecursionError:
        return documents, [_file_error(file, f"nesting deeper than {MAX_DEPTH} levels", "limits")]
    except Exception as err:  # a reader bug must still name the file
        return documents, [_file_error(file, f"cannot read this YAML ({err!r})", "yaml")]
    return documents, []


def _file_error(file: str, message: str, code: str) -> Diagnostic:
    return Diagnostic(file, 0, 0, "error", "", message, code)


def _line_col(text: str, offset: int) -> Position:
    """1-based line and column of the character at ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _not_utf8(file: str, content: bytes, err: UnicodeDecodeError) -> Diagnostic:
    # Everything before the first bad byte is valid UTF-8: count lines and columns in it.
    before = content[: err.start].decode("utf-8")
    line, col = _line_col(before, len(before))
    return Diagnostic(
        file,
        line,
        col,
        "error",
        "",
        f"not UTF-8 text: byte 0x{content[err.start]:02x} ({err.reason}, byte offset "
        f"{err.start}) - save the file as UTF-8",
        "encoding",
    )


def _bad_character(file: str, text: str, err: ReaderError) -> Diagnostic:
    offset = err.position if isinstance(err.position, int) else 0
    line, col = _line_col(text, min(offset, len(text)))
    char = chr(err.character) if isinstance(err.character, int) else "?"
    return Diagnostic(
        file,
        line,
        col,
        "error",
        "",
        f"{describe_character(char)} is not allowed in YAML text - remove it",
        "encoding",
    )


def _yaml_error(file: str, err: MarkedYAMLError) -> Diagnostic:
    mark = err.problem_mark or err.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    problem = clip(err.problem or "invalid YAML", 300)
    if isinstance(err, RefusedError):
        return Diagnostic(file, line, col, "error", "", problem, "yaml-refused")
    if "duplicate key" in problem:
        return Diagnostic(
            file,
            line,
            col,
            "error",
            "",
            f"{problem}: each key may appear once "
            "in a mapping (a typo would otherwise pass silently)",
            "duplicate-key",
        )
    context = f" ({clip(err.context, 100)})" if err.context else ""
    return Diagnostic(file, line, col, "error", "", f"YAML syntax: {problem}{context}", "yaml")


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
    """The fast reader (:mod:`reconciler.core.yamlfast`) under this module's limits."""
    return fast_documents(text, MAX_DOCUMENTS_PER_FILE, MAX_NODES_PER_DOCUMENT, MAX_DEPTH)
