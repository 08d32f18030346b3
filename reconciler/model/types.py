"""Validated scalar types of the topology contract, with the canonical form Kilo reads.

Each type is a plain ``str``/``int`` at runtime; the validators canonicalise the value
(so canonicalising twice changes nothing) and raise errors that say what would be right.
The rules for names (:mod:`~reconciler.model.names`) and addresses
(:mod:`~reconciler.model.addresses`) live beside this module; numbers, durations and the
``Annotated`` aliases the models use are here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, WithJsonSchema

from reconciler.model.addresses import canonical_cidr, canonical_endpoint, host_cidr, ip_address
from reconciler.model.invalid import fail, odd, text_of
from reconciler.model.names import (
    DNS1123_LABEL,
    annotation_key,
    annotation_value,
    dns_label,
    label_key,
    label_value,
    node_name,
    user_key,
)

# [0-9], never \d: \d also takes other scripts' digits (Arabic-Indic ones), which Go refuses.
_DURATION = re.compile(r"^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$")

# node-monitor grace (50 s) + a minute of probes, rounded up (docs/lifecycle.md)
MIN_LIFECYCLE_AFTER = 120


# --- numbers and durations -----------------------------------------------------------


def keepalive(value: Any) -> int:
    """Whole seconds 1..65535, as Kilo parses persistent-keepalive (base-10 integer)."""
    if isinstance(value, str):
        digits = re.fullmatch(r"\s*([0-9]+)\s*s?\s*", value)
        suggestion = f" - write {int(digits.group(1))}" if digits else ""
        raise fail(
            "keepalive",
            "{value!r} is not a whole number of seconds; Kilo would read it as 0 and turn "
            "keepalive off{suggestion}",
            value=value,
            suggestion=suggestion,
        )
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(
            "keepalive",
            "{value} is not a whole number of seconds (1 to 65535)",
            value=str(value).lower() if isinstance(value, bool) else repr(value),
        )
    if not 1 <= value <= 65535:
        raise fail(
            "keepalive", "{value} is out of range: keepalive is 1 to 65535 seconds", value=value
        )
    return value


def duration_seconds(text: str) -> int:
    """Seconds in a duration like ``90s``, ``10m``, ``1h30m``; ValueError if malformed."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(text)
    hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def flag_seconds(text: str) -> float:
    """A command-line interval: plain seconds (``30``, ``2.5``) or a duration (``10s``,
    ``1m``); ValueError otherwise. ASCII digits only: ``float()`` and ``isdigit()`` also
    take other scripts' digits."""
    plain = text.isascii() and text.replace(".", "", 1).isdigit()
    return float(text) if plain else float(duration_seconds(text))


def duration(value: Any) -> str:
    """A duration of at least one minute, such as ``90s``, ``10m`` or ``1h``."""
    if isinstance(value, (bool, int)):
        raise fail(
            "duration",
            "{value!r} has no unit - write e.g. '{value}m' or '{value}s'",
            value=value,
        )
    text = text_of(value, "duration")
    try:
        seconds = duration_seconds(text)
    except ValueError:
        raise fail(
            "duration",
            "{value!r}{odd} is not a duration - write e.g. 90s, 10m or 1h",
            value=text,
            odd=odd(text, frozenset("0123456789hms")),
        ) from None
    if seconds < MIN_LIFECYCLE_AFTER:
        raise fail(
            "duration",
            "{value!r} is too short: wait at least 2m before deleting a node - Kubernetes "
            "marks a node NotReady 50 s after its kubelet goes quiet, and a silent verdict "
            "takes a minute of probes; a reboot or a short outage must never cost a node",
            value=text,
        )
    return text.strip()


# --- Annotated aliases used by the models ----------------------------------------------

_STR = WithJsonSchema({"type": "string"})
DnsLabel = Annotated[
    str,
    AfterValidator(dns_label),
    WithJsonSchema({"type": "string", "pattern": DNS1123_LABEL.pattern, "maxLength": 63}),
]
NodeName = Annotated[
    str, AfterValidator(node_name), WithJsonSchema({"type": "string", "maxLength": 253})
]
LabelKey = Annotated[str, BeforeValidator(label_key), AfterValidator(user_key), _STR]
LabelValue = Annotated[
    str, BeforeValidator(label_value), WithJsonSchema({"type": "string", "maxLength": 63})
]
AnnotationKey = Annotated[str, BeforeValidator(annotation_key), AfterValidator(user_key), _STR]
AnnotationValue = Annotated[str, BeforeValidator(annotation_value), _STR]
TaintKey = Annotated[str, BeforeValidator(label_key), _STR]
Cidr = Annotated[
    str,
    BeforeValidator(canonical_cidr),
    WithJsonSchema({"type": "string", "description": "IP address or CIDR"}),
]
HostCidr = Annotated[
    str,
    BeforeValidator(host_cidr),
    WithJsonSchema({"type": "string", "description": "an IP address"}),
]
IPAddress = Annotated[
    str,
    BeforeValidator(ip_address),
    WithJsonSchema({"type": "string", "description": "an IP address"}),
]
EndpointText = Annotated[
    str,
    BeforeValidator(canonical_endpoint),
    WithJsonSchema({"type": "string", "description": "host:port or host"}),
]
Keepalive = Annotated[
    int,
    BeforeValidator(keepalive),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 65535}),
]
Duration = Annotated[
    str, BeforeValidator(duration), WithJsonSchema({"type": "string", "pattern": _DURATION.pattern})
]
# StrictInt: "51820" or 51820.0 are type errors, as everywhere else; the bounds go into the
# JSON schema as minimum/maximum (behind a BeforeValidator they came out as 'ge'/'le').
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
