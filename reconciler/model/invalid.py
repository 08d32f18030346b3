"""How a validator refuses a value: a message that says what would be right, showing
the value the user wrote cut when long and its odd characters named."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError

from reconciler.model.shown import clip, odd_character

_USER_TEXT = frozenset({"value", "hint", "fixed", "host", "pattern", "ip", "net"})


def fail(kind: str, message: str, **ctx: Any) -> PydanticCustomError:
    """A validation error whose message is already formatted (``str.format`` over ``ctx``).

    The values the user wrote (``value`` and what is derived from it) are shown cut
    (see :func:`reconciler.model.shown.clip`): a message never echoes a
    200,000-character value whole. Patterns are matched with ``fullmatch`` throughout:
    ``re.match`` with ``$`` lets a final newline through.
    """
    shown = {k: clip(v) if k in _USER_TEXT and isinstance(v, str) else v for k, v in ctx.items()}
    return PydanticCustomError(kind, message.format(**shown))


def odd(value: str, allowed: frozenset[str]) -> str:
    """Where ``value`` holds a non-ASCII character outside ``allowed`` ('' when none)."""
    return odd_character(value, allowed.__contains__)


def text_of(value: Any, what: str) -> str:
    """``value`` when it is text; else an error naming ``what`` was expected."""
    if not isinstance(value, str):
        raise fail("string_type", "a {what} must be text, got {value!r}", what=what, value=value)
    return value


def scalar_text(value: Any, what: str) -> str:
    """Text, where YAML's unquoted numbers and booleans are refused with the quoted form."""
    if isinstance(value, (bool, int | float)):
        raise fail(
            "quote_scalar",
            'a {what} must be text: quote it, e.g. "{text}" (YAML reads {value!r} as a {type})',
            what=what,
            value=value,
            text=str(value).lower() if isinstance(value, bool) else str(value),
            type="boolean" if isinstance(value, bool) else "number",
        )
    return text_of(value, what)
