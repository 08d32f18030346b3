"""Validated scalar types of the topology contract, with the canonical form Kilo reads.

Each type is a plain ``str``/``int`` at runtime; the validators canonicalise the value
(so canonicalising twice changes nothing) and raise errors that say what would be right.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt, WithJsonSchema
from pydantic_core import PydanticCustomError

from reconciler.model.shown import clip, odd_character

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# [0-9], never \d: \d also takes other scripts' digits (Arabic-Indic ones), which Go refuses.
_DURATION = re.compile(r"^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$")
RESERVED_PREFIXES = ("kilo.squat.ai/", "topoctl.io/")
# Kubernetes' TotalAnnotationSizeLimitB: keys and values of one object, in bytes.
MAX_ANNOTATIONS_BYTES = 256 * 1024
_DNS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


_USER_TEXT = frozenset({"value", "hint", "fixed", "host", "pattern", "ip", "net"})


# node-monitor grace (50 s) + a minute of probes, rounded up (docs/lifecycle.md)
MIN_LIFECYCLE_AFTER = 120


def fail(kind: str, message: str, **ctx: Any) -> PydanticCustomError:
    """A validation error whose message is already formatted (``str.format`` over ``ctx``).

    The values the user wrote (``value`` and what is derived from it) are shown cut
    (see :func:`reconciler.model.shown.clip`): a message never echoes a
    200,000-character value whole. Patterns are matched with ``fullmatch`` throughout:
    ``re.match`` with ``$`` lets a final newline through.
    """
    shown = {k: clip(v) if k in _USER_TEXT and isinstance(v, str) else v for k, v in ctx.items()}
    return PydanticCustomError(kind, message.format(**shown))


def _odd(value: str, allowed: frozenset[str]) -> str:
    return odd_character(value, allowed.__contains__)


# --- names ---------------------------------------------------------------------------


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
            odd=_odd(value, _DNS_CHARS - {"."}),
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
            odd=_odd(value, _DNS_CHARS),
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
            odd=_odd(prefix, _DNS_CHARS),
            what=what,
        )
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        raise fail(
            "k8s_key",
            "{value!r}{odd} is not a valid {what} key: the name part must be 1-63 characters "
            "of letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
            value=value,
            odd=_odd(name, _NAME_CHARS),
            what=what,
        )
    return value


def label_key(value: str) -> str:
    """A label (or taint) key, by Kubernetes' qualified-name rules."""
    return _qualified_key(_text(value, "label key"), "label")


def annotation_key(value: str) -> str:
    """An annotation key, by Kubernetes' qualified-name rules."""
    return _qualified_key(_text(value, "annotation key"), "annotation")


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
    text = _scalar_text(value, "label value")
    if len(text) > 63 or not _LABEL_VALUE.fullmatch(text):
        raise fail(
            "label_value",
            "{value!r}{odd} is not a valid label value (at most 63 letters, digits, '-', '_' "
            "and '.', starting and ending with a letter or digit, or empty)",
            value=text,
            odd=_odd(text, _NAME_CHARS),
        )
    return text


def annotation_value(value: Any) -> str:
    """An annotation value: any text; numbers and booleans are refused so nothing is guessed."""
    return _scalar_text(value, "annotation value")


def annotations_bytes(annotations: dict[str, str]) -> int:
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


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise fail("string_type", "a {what} must be text, got {value!r}", what=what, value=value)
    return value


def _scalar_text(value: Any, what: str) -> str:
    if isinstance(value, (bool, int | float)):
        raise fail(
            "quote_scalar",
            'a {what} must be text: quote it, e.g. "{text}" (YAML reads {value!r} as a {type})',
            what=what,
            value=value,
            text=str(value).lower() if isinstance(value, bool) else str(value),
            type="boolean" if isinstance(value, bool) else "number",
        )
    return _text(value, what)


# --- addresses -----------------------------------------------------------------------


def canonical_cidr(value: Any) -> str:
    """An IP network: a bare address becomes /32 or /128; host bits set are an error."""
    text = _text(value, "CIDR").strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise fail(
            "cidr",
            "{value!r} is not an IP address or CIDR (e.g. 192.168.50.0/24 or 2001:db8::/64)",
            value=text,
        ) from None
    _not_mapped(net, text)
    exact = _strict_network(text)
    if exact is None:
        raise fail(
            "cidr_host_bits",
            "{value!r} has host bits set - write {net} (the network) or {ip} (one address)",
            value=text,
            net=str(net),
            ip=text.split("/")[0],
        )
    return str(exact)


_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _not_mapped(net: ipaddress.IPv4Network | ipaddress.IPv6Network, text: str) -> None:
    """Refuse an IPv4-mapped IPv6 address: Kilo would write it as IPv6 (``::ffff:a00:1/128``)."""
    if not isinstance(net, ipaddress.IPv6Network) or not net.subnet_of(_MAPPED):
        return
    mapped = net.network_address.ipv4_mapped
    assert mapped is not None
    bits = net.prefixlen - 96
    v4 = str(mapped) if bits == 32 and "/" not in text else f"{mapped}/{bits}"
    raise fail(
        "ipv4_mapped",
        "{value!r} is an IPv4-mapped IPv6 address: Kilo and the kernel would treat it as "
        "IPv6, not as the IPv4 address it stands for - write {v4}",
        value=text,
        v4=v4,
    )


def _strict_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None


def ip_address(value: Any) -> str:
    """A single IP address in canonical text."""
    text = _text(value, "IP address").strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise fail(
            "ip_address",
            "{value!r} is not an IP address (e.g. 10.0.0.2 or 2001:db8::2)",
            value=text,
        ) from None
    _not_mapped(ipaddress.ip_network(ip), text)
    return str(ip)


def host_cidr(value: Any) -> str:
    """One address written as a CIDR (/32 or /128), which is the only form Kilo accepts."""
    text = _text(value, "IP address").strip()
    _, slash, _ = text.partition("/")
    if slash and _strict_network(text) is None and _interface_ip(text) is not None:
        ip = _interface_ip(text)
        assert ip is not None
        raise fail(
            "host_cidr",
            "{value!r} is an interface address with its prefix; internalIP is the node's "
            "address alone - write {ip} (Kilo gets it as {ip}/{bits})",
            value=text,
            ip=str(ip),
            bits=ip.max_prefixlen,
        )
    cidr = canonical_cidr(text)
    net = ipaddress.ip_network(cidr)
    if net.num_addresses != 1:
        raise fail(
            "host_cidr",
            "{value!r} is a network, not one node's address - write the node's IP, e.g. {example}",
            value=text,
            example=str(next(net.hosts(), net.network_address)),
        )
    return cidr


def _interface_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_interface(text).ip
    except ValueError:
        return None


def _bad_endpoint_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # Kilo (Go's net.IP) judges ::ffff:a.b.c.d as the IPv4 address
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    return None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed WireGuard endpoint: host (IP text or DNS name) and optional port."""

    host: str
    port: int | None
    is_ip: bool

    def render(self, default_port: int) -> str:
        """The ``host:port`` text Kilo's force-endpoint accepts."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port if self.port is not None else default_port}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """Parse ``host[:port]`` as Kilo does; raise a custom error that says what to write."""
    host, port_text = text, None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise fail("endpoint", "{value!r}: missing ']' after the IPv6 address", value=text)
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise fail("endpoint", "{value!r}: expected ':port' after ']'", value=text)
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        raise fail(
            "endpoint",
            "{value!r}: an IPv6 endpoint must be bracketed - write {fixed}",
            value=text,
            fixed=_bracketed(text),
        )
    port = _port(port_text, text) if port_text is not None else None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None:
        if text.startswith("["):
            raise fail(
                "endpoint", "{value!r}: {host!r} is not an IPv6 address", value=text, host=host
            )
        if host != host.lower() and DNS1123_SUBDOMAIN.fullmatch(host.lower()):
            raise fail(
                "endpoint",
                "{value!r}: Kilo only accepts lowercase DNS names - write {fixed!r}",
                value=text,
                fixed=text.lower(),
            )
        if host.endswith("."):
            raise fail(
                "endpoint",
                "{value!r}: drop the trailing dot - Kilo does not accept it",
                value=text,
            )
        if not host or len(host) > 253 or not DNS1123_SUBDOMAIN.fullmatch(host):
            raise fail(
                "endpoint",
                "{value!r}{odd} is not host:port with an IPv4 address, a [bracketed IPv6] "
                "address or a lowercase DNS name - Kilo would ignore it and use the endpoint "
                "it detects",
                value=text,
                odd=_odd(host, _DNS_CHARS),
            )
        return Endpoint(host=host, port=port, is_ip=False)
    if isinstance(ip, ipaddress.IPv6Address) and not text.startswith("["):
        raise fail("endpoint", "{value!r}: bracket the IPv6 address", value=text)
    problem = _bad_endpoint_ip(ip)
    if problem:
        raise fail(
            "endpoint",
            "{value!r}: {ip} is {problem}, which no other location can reach",
            value=text,
            ip=str(ip),
            problem=problem,
        )
    return Endpoint(host=str(ip), port=port, is_ip=True)


def _bracketed(text: str) -> str:
    """What an unbracketed IPv6 endpoint was probably meant to be."""
    try:
        return f"[{ipaddress.IPv6Address(text)}]:51820"
    except ValueError:
        pass
    host, _, port = text.rpartition(":")
    try:
        return f"[{ipaddress.IPv6Address(host)}]:{port}"
    except ValueError:
        return "[2001:db8::1]:51820"


def _port(text: str, whole: str) -> int:
    # ASCII digits only: str.isdigit() also takes other scripts' digits, which Kilo refuses.
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise fail(
            "endpoint_port", "{value!r}: the port must be a number from 1 to 65535", value=whole
        )
    return int(text)


def canonical_endpoint(value: Any) -> str:
    """Canonical endpoint text: lowercase IPv6, no leading zeros in the port."""
    return str(parse_endpoint(_text(value, "endpoint").strip()))


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
    text = _text(value, "duration")
    try:
        seconds = duration_seconds(text)
    except ValueError:
        raise fail(
            "duration",
            "{value!r}{odd} is not a duration - write e.g. 90s, 10m or 1h",
            value=text,
            odd=_odd(text, frozenset("0123456789hms")),
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
