"""The rules a route topoctl owns must follow, stated once. Pure.

Both readers of a route use these: the topology model (``topoctl validate``) and the
node agent reading its settings, so a route validate accepts is one the agent keeps.
Each rule raises RouteRuleError with a message meant for a person; callers add where
(file:line:col, or the route).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from reconciler.model import keys

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_U32: Final = 2**32 - 1
IFNAMSIZ: Final = 16
"""Linux's buffer for a device name, NUL included: a name is at most 15 bytes."""
IPV6_DEFAULT_METRIC: Final = 1024
"""The kernel stores an IPv6 route given metric 0 with metric 1024: the same slot."""
MAIN_TABLE: Final = keys.MAIN_TABLE
TABLE_NAMES: Final = {"main": MAIN_TABLE}
RESERVED_TABLES: Final = {
    0: "RT_TABLE_UNSPEC (no table)",
    253: "the kernel's default table",
    255: "the kernel's local table",
    keys.KILO_RETURN_TABLE: "Kilo's return-route table",
}
RESERVED_PROTOCOLS: Final = {
    0: "unspec",
    1: "redirect",
    2: "kernel",
    3: "boot",
    4: "static (Kilo's routes)",
    8: "gated",
    9: "ra",
    10: "mrt",
    11: "zebra",
    12: "bird",
    13: "dnrouted",
    14: "xorp",
    15: "ntk",
    16: "dhcp",
    17: "mrouted",
    18: "keepalived",
    42: "babel",
    99: "openr",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
    192: "eigrp",
}
"""rtnetlink protocol numbers with an owner already: linux/rtnetlink.h and iproute2's rt_protos."""
WIDEST_PREFIX: Final = 8
"""No route topoctl owns is wider than /8 (either family): a shorter prefix is a default
route, or part of one (``0.0.0.0/1`` and ``128.0.0.0/1`` together take everything a
default route would, and win over it by being longer)."""


class RouteRuleError(ValueError):
    """A route value the kernel could not hold, or that topoctl must not own."""


def strict_int(value: object, what: str, hint: str = "") -> int:
    """An integer written as one: no bool, no float (254.0), no string of digits."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise RouteRuleError(f"{what} {value!r} is not a whole number{hint}")
    return value


def table_id(value: object) -> int:
    """The numeric table of `main` or a number; the kernel's and Kilo's tables are refused."""
    if isinstance(value, str):
        named = TABLE_NAMES.get(value)
        if named is not None:
            return named
        kernel = _KERNEL_TABLE_NAMES.get(value)
        if kernel is not None:
            raise RouteRuleError(
                f"table {value} ({kernel}) is {RESERVED_TABLES[kernel]}: pick another, e.g. 100"
            )
        if value.strip().isdigit():
            raise RouteRuleError(f"table {value!r} is text: write the number unquoted, or main")
        raise RouteRuleError(f"unknown table {value!r}:{_TABLE_HINT}")
    table = strict_int(value, "table", f":{_TABLE_HINT}")
    if not 0 <= table <= MAX_U32:
        raise RouteRuleError(f"table {table} is outside 1..{MAX_U32}")
    reserved = RESERVED_TABLES.get(table)
    if reserved is not None:
        raise RouteRuleError(f"table {table} is {reserved}: pick another, e.g. 100")
    return table


_KERNEL_TABLE_NAMES: Final = {"unspec": 0, "default": 253, "local": 255}
_TABLE_HINT: Final = f" write main or a number from 1 to {MAX_U32}"


def metric(value: object) -> int:
    """A route metric (priority): 0..2^32-1."""
    number = strict_int(value, "metric")
    if not 0 <= number <= MAX_U32:
        raise RouteRuleError(f"metric {number} is outside 0..{MAX_U32}")
    return number


def slot_metric(version: int, value: int) -> int:
    """The metric the kernel files the route under (IPv6 0 is 1024)."""
    return IPV6_DEFAULT_METRIC if version == 6 and value == 0 else value


def own_protocol(value: object) -> int:
    """A protocol number topoctl may mark its routes with."""
    protocol = strict_int(value, "protocol")
    if not 0 <= protocol <= 255:
        raise RouteRuleError(f"route protocol {protocol} is outside 0..255")
    name = RESERVED_PROTOCOLS.get(protocol)
    if name is not None:
        raise RouteRuleError(
            f"protocol {protocol} is reserved for {name}: pick a number of topoctl's own, e.g. 193"
        )
    return protocol


def device_name(value: object) -> str:
    """A name Linux accepts for a device (dev_valid_name), counted in UTF-8 bytes.

    1 to 15 bytes, not "." or "..", no "/", ":" or whitespace: the bytes the kernel's
    isspace() refuses (tab to carriage return, space, 0xA0), and any Unicode space.
    """
    try:
        raw = value.encode() if isinstance(value, str) else None
    except UnicodeEncodeError:
        raw = None
    if raw is None:
        why = "it is not text Linux can hold"
    elif not 0 < len(raw) < IFNAMSIZ:
        why = f"it is {len(raw)} bytes in UTF-8, Linux holds 1 to {IFNAMSIZ - 1}"
    elif raw in (b".", b".."):
        why = "Linux refuses '.' and '..'"
    elif b"/" in raw or b":" in raw:
        why = "it contains '/' or ':'"
    elif not _DEVICE_BYTES_REFUSED.isdisjoint(raw) or any(c.isspace() for c in str(value)):
        why = "it contains whitespace (or a UTF-8 byte 0xA0, which Linux counts as one)"
    else:
        return str(value)
    raise RouteRuleError(f"{value!r} is not a network device name: {why}")


_DEVICE_BYTES_REFUSED: Final = frozenset(b"\0/: \t\n\v\f\r\xa0")


def destination(value: str) -> str:
    """A destination in canonical CIDR text; no IPv6 zone id (the kernel has none for it)."""
    if "%" in value:
        raise RouteRuleError(f"{value!r} carries a zone id: a route's destination has none")
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as error:
        raise RouteRuleError(str(error)) from None


def routable(value: str) -> str:
    """A destination topoctl may own a route to, whatever the cluster: not a default route
    (:func:`never_routed` with no protected range)."""
    network = ipaddress.ip_network(destination(value))
    why = never_routed(network, ())
    if why is not None:
        raise RouteRuleError(f"{network} is {why} (the node agent refuses it)")
    return str(network)


def slot(destination: str, table: int, metric: int) -> tuple[int, str, int]:
    """What the kernel treats as one route for replace: (table, destination, slot metric)."""
    network = ipaddress.ip_network(destination)
    return (table, str(network), slot_metric(network.version, metric))


def gateway(value: object, version: int | None = None) -> str:
    """A gateway address in canonical text; no IPv6 zone id (the device says which link)."""
    if not isinstance(value, str | ipaddress.IPv4Address | ipaddress.IPv6Address):
        raise RouteRuleError(f"{value!r} is not an IP address")
    text = str(value)
    address, percent, zone = text.partition("%")
    if percent:
        raise RouteRuleError(
            f"{text!r} carries a zone id: write `via: {address}` and `dev: {zone}` "
            "(the device names the link)"
        )
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise RouteRuleError(
            f"{text!r} is not an IP address (e.g. 10.0.0.2 or 2001:db8::2)"
        ) from None
    if version is not None and parsed.version != version:
        raise RouteRuleError(f"gateway {parsed} is not IPv{version}")
    return str(parsed)


@dataclass(frozen=True)
class ProtectedRange:
    """Addresses no route topoctl owns may point into: ``what`` says whose they are."""

    network: Network
    what: str


def never_routed(destination: Network, protected: Iterable[ProtectedRange]) -> str | None:
    """Why topoctl must never own a route to ``destination``, or None when it may.

    Refused: a default route (any prefix shorter than /8), and any destination inside
    (or equal to) a protected range - a longer prefix wins, so such a route would take
    that range's traffic from its owner (Kilo, the CNI, kube-proxy). A route that only
    covers a protected range (10.0.0.0/8 around 10.4.0.0/16) is allowed: the owner's
    longer routes keep winning.
    """
    if destination.prefixlen < WIDEST_PREFIX:
        return (
            f"a default route (any destination wider than /{WIDEST_PREFIX} is one, or part "
            "of one): topoctl never routes the node's default traffic"
        )
    for entry in protected:
        network = entry.network
        if network.version == destination.version and destination.subnet_of(network):  # type: ignore[arg-type]
            return f"inside {network}, {entry.what}"
    return None


def route_text(
    dst: str, gateway: str | None, dev: str | None, table: int, metric: int, onlink: bool
) -> str:
    """A route as ``ip route`` would be told it: ``DST [via GW] [dev D] [table T] ...``."""
    parts = [dst]
    if gateway is not None:
        parts.append(f"via {gateway}")
    if dev is not None:
        parts.append(f"dev {dev}")
    if table != MAIN_TABLE:
        parts.append(f"table {table}")
    if metric:
        parts.append(f"metric {metric}")
    if onlink:
        parts.append("onlink")
    return " ".join(parts)
