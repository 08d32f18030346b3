"""Diagnostics: errors and warnings that point at a file, line, column and field path."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from reconciler.model.shown import clip

Severity = Literal["error", "warning"]
PathItem = str | int
Path = tuple[PathItem, ...]


_KEY_SHOWN = 320  # the longest valid qualified key (253 + '/' + 63) is shown whole


def format_path(path: Path) -> str:
    """``('spec', 'nodes', 0, 'name')`` -> ``spec.nodes[0].name``; odd keys are quoted.

    A quoted key is escaped (a newline in a key never breaks the diagnostic's line) and
    cut when long.
    """
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        elif item.isascii() and item.replace("_", "").replace("-", "").isalnum():
            out += f".{clip(item, _KEY_SHOWN)}" if out else clip(item, _KEY_SHOWN)
        else:
            out += f"[{json.dumps(clip(item, _KEY_SHOWN), ensure_ascii=False)}]"
    return out


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    """One finding. Line and column are 1-based; 0 means 'the whole file'."""

    file: str
    line: int
    col: int
    severity: Severity
    path: str
    message: str
    code: str

    @property
    def location(self) -> str:
        """``file:line:col`` (or just the file when there is no position)."""
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def brief(self) -> str:
        """``file:line:col: path: message`` - the line a plan shows for a warning."""
        where = f"{self.path}: " if self.path else ""
        return f"{self.location}: {where}{self.message}"

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.location}: {self.severity}: {where}{self.message}"


def errors(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Only the errors."""
    return [d for d in diagnostics if d.severity == "error"]


def warnings(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Only the warnings."""
    return [d for d in diagnostics if d.severity == "warning"]


def ordered(diagnostics: Sequence[Diagnostic]) -> list[Diagnostic]:
    """Sorted by file and position, duplicates dropped."""
    return sorted(set(diagnostics))
