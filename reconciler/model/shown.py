"""How a value the user wrote is shown in a message: cut when long, odd characters named.

A message echoes the value it refuses, so a 200,000-character name must not be echoed
whole, and a name that looks right (a Cyrillic ``\u0430`` for a Latin ``a``) must say which
character is wrong.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

MAX_SHOWN = 64  # a DNS label or a label value (at most 63) is shown whole


class Clipped(str):
    """Text cut to its first :data:`MAX_SHOWN` characters; ``repr`` says how long it was."""

    length: int
    head: str | None

    def __new__(cls, text: str, limit: int = MAX_SHOWN) -> Clipped:
        long = len(text) > limit
        self = super().__new__(cls, f"{text[:limit]}…({len(text)} chars)" if long else text)
        self.length = len(text)
        self.head = text[:limit] if long else None
        return self

    def __repr__(self) -> str:
        if self.head is None:
            return repr(str(self))
        return f"{self.head!r}…({self.length} chars)"


def clip(text: str, limit: int = MAX_SHOWN) -> Clipped:
    """``text`` as a message shows it: whole when short, else its start and its length."""
    return text if isinstance(text, Clipped) else Clipped(text, limit)


_CONTROLS = {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "TAB", "\0": "NULL"}


def describe_character(char: str) -> str:
    """``U+0430 CYRILLIC SMALL LETTER A`` - a character no font can disguise."""
    name = _CONTROLS.get(char) or unicodedata.name(char, "") or "a control character"
    return f"U+{ord(char):04X} {name}"


def odd_character(text: str, allowed: Callable[[str], bool]) -> str:
    """Where ``text`` holds a character ``allowed`` refuses that is not plain ASCII.

    Empty when every character is either allowed or printable ASCII (then the value as
    shown is what was written, and the message's rule says what is wrong). Otherwise,
    e.g. `` (U+0430 CYRILLIC SMALL LETTER A at position 6)``; positions count from 1.
    """
    for position, char in enumerate(text, 1):
        if allowed(char):
            continue
        if char.isascii() and char.isprintable():
            continue
        return f" ({describe_character(char)} at position {position})"
    return ""
