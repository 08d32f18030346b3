"""ruamel.yaml's round-trip reader, hardened: the limits topoctl reads YAML under, tags
and directives refused, depth cut off while scanning, conversion failures reported at
their place instead of raised from deep inside ruamel."""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scanner import RoundTripScanner

from reconciler.model.shown import clip

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


def strict_yaml() -> YAML:
    """ruamel's round-trip reader with the scanner and constructor above."""
    yaml = YAML(typ="rt")
    yaml.Scanner = _DepthLimitedScanner
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = False
    return yaml
