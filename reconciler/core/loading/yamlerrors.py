"""YAML that cannot be read, as diagnostics with file, line and column."""

from __future__ import annotations

from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError

from reconciler.core.loading.yamlstrict import MAX_FILE_BYTES, Position, RefusedError
from reconciler.model.diagnostics import Diagnostic
from reconciler.model.shown import clip, describe_character


def too_large(file: str, size: int) -> Diagnostic:
    """The error for a file over :data:`MAX_FILE_BYTES` (refused without parsing it)."""
    return file_error(
        file,
        f"file is {size} bytes; topoctl reads files of "
        f"at most {MAX_FILE_BYTES} bytes (1 MiB) - split it",
        "file-size",
    )


def file_error(file: str, message: str, code: str, at: Position = (0, 0)) -> Diagnostic:
    """An error in ``file`` at ``at`` (line, column; 0, 0: the whole file)."""
    return Diagnostic(file, at[0], at[1], "error", "", message, code)


def line_col(text: str, offset: int) -> Position:
    """1-based line and column of the character at ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def not_utf8(file: str, content: bytes, err: UnicodeDecodeError) -> Diagnostic:
    # Everything before the first bad byte is valid UTF-8: count lines and columns in it.
    before = content[: err.start].decode("utf-8")
    return file_error(
        file,
        f"not UTF-8 text: byte 0x{content[err.start]:02x} ({err.reason}, byte offset "
        f"{err.start}) - save the file as UTF-8",
        "encoding",
        line_col(before, len(before)),
    )


def bad_character(file: str, text: str, err: ReaderError) -> Diagnostic:
    offset = err.position if isinstance(err.position, int) else 0
    char = chr(err.character) if isinstance(err.character, int) else "?"
    return file_error(
        file,
        f"{describe_character(char)} is not allowed in YAML text - remove it",
        "encoding",
        line_col(text, min(offset, len(text))),
    )


def yaml_error(file: str, err: MarkedYAMLError) -> Diagnostic:
    mark = err.problem_mark or err.context_mark
    at = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    problem = clip(err.problem or "invalid YAML", 300)
    if isinstance(err, RefusedError):
        return file_error(file, problem, "yaml-refused", at)
    if "duplicate key" in problem:
        return file_error(
            file,
            f"{problem}: each key may appear once "
            "in a mapping (a typo would otherwise pass silently)",
            "duplicate-key",
            at,
        )
    context = f" ({clip(err.context, 100)})" if err.context else ""
    return file_error(file, f"YAML syntax: {problem}{context}", "yaml", at)
