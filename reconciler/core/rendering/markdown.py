"""Markdown pieces that hold whatever text they are given: code spans and fences that no
backtick in a value can close early, table cells that no ``|`` or newline can split,
and sizes in UTF-8 bytes (an upper bound of both the characters GitHub counts and the
UTF-16 units some forges count)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_TICKS = re.compile(r"`+")


def size(text: str) -> int:
    """The text's size as comment limits are checked against it (UTF-8 bytes)."""
    return len(text.encode("utf-8"))


def clip(text: str, chars: int) -> str:
    """At most ``chars`` characters, on one line; ``…`` where it was cut."""
    flat = " ".join(text.split("\n"))
    return flat if len(flat) <= chars else flat[: chars - 1] + "…"


def _longest_run(text: str) -> int:
    return max((len(m.group()) for m in _TICKS.finditer(text)), default=0)


def code(text: str) -> str:
    """An inline code span of ``text`` (one line), safe inside a table cell."""
    flat = " ".join(text.split("\n")).replace("|", "\\|")
    ticks = "`" * (_longest_run(flat) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~!])")


def cell(text: str) -> str:
    """Plain text, one line, safe in a table cell, a list item or a quote: every
    character markdown or HTML would act on is escaped."""
    flat = " ".join(text.split("\n")).replace("&", "&amp;")
    return _SPECIAL.sub(r"\\\1", flat)


def html(text: str) -> str:
    """Plain text, one line, inside raw HTML (a ``<summary>``)."""
    flat = " ".join(text.split("\n"))
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fence(lines: Sequence[str], info: str = "") -> str:
    """A fenced code block of ``lines``: its fence longer than any backtick run inside."""
    ticks = "`" * max(3, _longest_run("\n".join(lines)) + 1)
    return "\n".join([f"{ticks}{info}", *lines, ticks])


def row(cells: Sequence[str]) -> str:
    """One table row of cells already made safe (:func:`cell`, :func:`code`)."""
    return "| " + " | ".join(cells) + " |"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], aligns: str = "") -> list[str]:
    """A table's lines; ``aligns`` has one letter a column: l(eft) or r(ight)."""
    marks = ["---:" if aligns[i : i + 1] == "r" else "---" for i in range(len(header))]
    return [row(header), row(marks), *(row(r) for r in rows)]
