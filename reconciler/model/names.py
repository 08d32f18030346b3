"""Names, keys and values by Kubernetes' rules: DNS labels, node names, label and
annotation keys and values, and the 256 KiB an object's annotations may hold."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.model.invalid import fail, odd, scalar_text, text_of

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
RESERVED_PREFIXES = ("kilo.squat.ai/", "topoctl.io/")
# Kubernetes' TotalAnnotationSizeLimitB: keys and values of one object, in bytes.
MAX_ANNOTATIONS_BYTES = 256 * 1024
DNS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def dns_label(value: str) -> str:
    """A DNS-1123 label: what Kubernetes allows as a name segment (and Kilo as a location)."""
    if not isinstance(value, str):
        raise fail("dns_label", "expected a name (text), got {value!r}", value=value)
    if len(value) > 63 or not DNS1123_LABEL.fullmatch(value):
        hint = re.sub(r"[^a-z0-9-]+", "-", value.lower(), flags=re.ASCII).strip("-")[:63]
        raise fail(
            "dns_label",
            "{value!r}{odd} is not a DNS-1123 label (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters) - "
            "for example {hint!r}",
            value=value,
            odd=odd(value, DNS_CHARS - {"."}),
            hint=hint if hint.isascii() and hint else "site-1",
        )
    return value


def node_name(value: str) -> str:
    """A Kubernetes node name: a DNS-1123 subdomain."""
    if not isinstance(value, str):
        raise fail("node_name", "expected a node name (text), got {value!r}", value=value)
    if len(value) > 253 or not DNS1123_SUBDOMAIN.fullmatch(value):
        raise fail(
            "node_name",
            "{value!r}{odd} is not a valid node name (a lowercase DNS-1123 subdomain, as "
            "Kubernetes requires)",
            value=value,
            odd=odd(value, DNS_CHARS),
        )
    return value


def _qualified_key(value: str, what: str) -> str:
    prefix, slash, name = value.rpartition("/")
    if not slash:
        prefix, name = "", value
    if slash and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        raise fail(
            "k8s_key",
            "{value!r}{odd} is not a valid {what} key: the prefix before '/' must be a "
            "lowercase DNS subdomain of at most 253 characters, such as 'example.com'",
            value=value,
            odd=odd(prefix, DNS_CHARS),
            what=what,
        )
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        raise fail(
            "k8s_key",
            "{value!r}{odd} is not a valid {what} key: the name part must be 1-63 characters "
            "of letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
            value=value,
            odd=odd(name, NAME_CHARS),
            what=what,
        )
    return value


def label_key(value: str) -> str:
    """A label (or taint) key, by Kubernetes' qualified-name rules."""
    return _qualified_key(text_of(value, "label key"), "label")


def annotation_key(value: str) -> str:
    """An annotation key, by Kubernetes' qualified-name rules."""
    return _qualified_key(text_of(value, "annotation key"), "annotation")


def user_key(value: str) -> str:
    """Reject keys that belong to Kilo or to topoctl itself."""
    for prefix in RESERVED_PREFIXES:
        if value.startswith(prefix):
            source = "the site's own fields" if prefix.startswith("kilo") else "topoctl"
            raise fail(
                "reserved_key",
                "{value!r} is reserved: {prefix}* keys are written by {source}, not set by "
                "hand (use leader, endpoint, internalIP, persistentKeepalive or "
                "allowedLocationIPs instead)",
                value=value,
                prefix=prefix,
                source=source,
            )
    return value


def label_value(value: Any) -> str:
    """A label (or taint) value: at most 63 characters, Kubernetes' charset, may be empty."""
    text = scalar_text(value, "label value")
    if len(text) > 63 or not _LABEL_VALUE.fullmatch(text):
        raise fail(
            "label_value",
            "{value!r}{odd} is not a valid label value (at most 63 letters, digits, '-', '_' "
            "and '.', starting and ending with a letter or digit, or empty)",
            value=text,
            odd=odd(text, NAME_CHARS),
        )
    return text


def annotation_value(value: Any) -> str:
    """An annotation value: any text; numbers and booleans are refused so nothing is guessed."""
    return scalar_text(value, "annotation value")


MAX_NAME = 253
"""The longest object name Kubernetes takes (a DNS subdomain), an Event's among them."""


def event_name(subject: str, digest: str) -> str:
    """``<subject>.<digest>``, the subject cut so the whole stays a valid object name.

    client-go names an Event ``<object>.<hex>``; a node name of 237 characters or more
    would make that longer than 253, and the API server would refuse the Event (422). The
    cut keeps a DNS subdomain (no trailing '-' or '.'), and the digest, made from the
    whole name, keeps the Events of two long names with a common prefix apart.
    """
    room = MAX_NAME - len(digest) - 1
    return f"{subject[:room].rstrip('.-')}.{digest}"


def annotations_bytes(annotations: Mapping[str, str]) -> int:
    """The size Kubernetes counts against its 256 KiB limit: every key and value, in bytes."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())


def annotations_size(annotations: dict[str, str]) -> dict[str, str]:
    """Annotations that fit in one Kubernetes object (256 KiB of keys and values)."""
    size = annotations_bytes(annotations)
    if size > MAX_ANNOTATIONS_BYTES:
        raise fail(
            "annotations_size",
            "these annotations hold {size} bytes of keys and values; Kubernetes refuses a "
            "node whose annotations exceed {limit} bytes (256 KiB) - keep large data out "
            "of annotations",
            size=size,
            limit=MAX_ANNOTATIONS_BYTES,
        )
    return annotations
