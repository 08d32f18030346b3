"""How Kilo reads a Node, reproduced exactly (squat/kilo pkg/k8s/backend.go translateNode,
pkg/mesh/ip.go): its location, endpoint, internal IP, key and readiness, and what it makes
of each of the six keys a user sets (:func:`read_user_key`), which may differ from what
the text seems to say (``persistent-keepalive: 20s`` is 0 to Kilo). This module is the one
statement of Kilo's reading: the leader prediction, the plan's "same for Kilo" and
``topoctl import`` all ask it, and tests hold it to Kilo's own code (``kilo-topo``)."""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Final

import msgspec

from reconciler.core.kilo.freshness import is_fresh, last_seen
from reconciler.model import keys
from reconciler.model.addresses import Endpoint, parse_endpoint
from reconciler.model.state import NodeState

# Dotted-quad IPv4, the common case, read without the ipaddress module (which costs
# ~10 us a call: too much for thousands of nodes). Anything else takes the full path.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_IPV4_PORT = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}):([1-9][0-9]{{0,4}})")
_IPV4_CIDR = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET})/(3[0-2]|[12]?[0-9])")


@lru_cache(maxsize=65536)
def is_public(ip: str) -> bool:
    """Kilo's ``isPublic`` (pkg/mesh/ip.go), byte for byte.

    IPv4 outside 10/8, 172.16/12 and 192.168/16 is public (so CGNAT 100.64/10 is).
    For IPv6 Kilo's comment says fd00::/8 but its code tests the first *two* bytes
    (``ip[0] == 0xfd && ip[1] == 0x00``): only fd00::/16 is private to Kilo.
    """
    quad = _IPV4.fullmatch(ip)
    if quad is not None:
        a, b = int(quad.group(1)), int(quad.group(2))
        return not (a == 10 or (a == 172 and b & 0xF0 == 0x10) or (a == 192 and b == 168))
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv4Address):
        a, b = addr.packed[0], addr.packed[1]
        return not (a == 10 or (a == 172 and b & 0xF0 == 0x10) or (a == 192 and b == 168))
    if addr.ipv4_mapped is not None:
        return is_public(str(addr.ipv4_mapped))
    return not (addr.packed[0] == 0xFD and addr.packed[1] == 0x00)


WIREGUARD_KEY_BYTES = 32
REGION_LABEL = "topology.kubernetes.io/region"  # Kilo's location when the annotation is absent


def kilo_location(node: NodeState) -> str:
    """The location Kilo puts a node in (translateNode): the location annotation when
    present, even empty, else the ``topology.kubernetes.io/region`` label."""
    location = node.annotations.get(keys.KILO_LOCATION)
    return location if location is not None else node.labels.get(REGION_LABEL, "")


class KiloNode(msgspec.Struct, frozen=True):
    """A node as Kilo's leader election sees it (pkg/k8s/backend.go translateNode)."""

    name: str
    leader: bool
    endpoint_host: str | None  # IP text, or a DNS name
    internal_ip: str | None
    ready: bool

    @property
    def public_endpoint(self) -> bool:
        """Kilo prefers leaders with a public endpoint IP; a DNS name is assumed public."""
        if self.endpoint_host is None:
            return False
        try:
            return is_public(self.endpoint_host)
        except ValueError:
            return True


def kilo_node(node: NodeState, now: int | None) -> KiloNode:
    """Read a node as Kilo does (live, or projected as it will be after apply), Ready or
    not at ``now`` (:func:`not_ready`). With no time at all (``now`` None: an offline
    plan of a cluster where Kilo never checked in) the Kubernetes Ready condition stands
    in for Kilo's."""
    annotations = node.annotations
    endpoint = _endpoint(node)
    internal = _cidr_ip(annotations.get(keys.KILO_FORCE_INTERNAL_IP))
    if internal is None and annotations.get(keys.KILO_FORCE_INTERNAL_IP) not in ("", "-"):
        internal = _cidr_ip(annotations.get(keys.KILO_INTERNAL_IP))
    ready = node.ready == "True" if now is None else not _not_ready(node, endpoint, now)
    return KiloNode(node.name, keys.KILO_LEADER in annotations, endpoint, internal, ready)


def not_ready(node: NodeState, now: int) -> list[str]:
    """Why Kilo cannot count the node as Ready at ``now`` (empty: it can). Kilo's
    ``Node.Ready`` (pkg/mesh/mesh.go): an endpoint, a WireGuard key, a pod CIDR and a
    fresh ``last-seen`` (:mod:`.freshness`)."""
    return _not_ready(node, _endpoint(node), now)


def _not_ready(node: NodeState, endpoint: str | None, now: int) -> list[str]:
    annotations = node.annotations
    causes = []
    if endpoint is None:
        causes.append("no endpoint")
    key = annotations.get(keys.KILO_KEY)
    if not is_wireguard_key(key):
        causes.append("no key" if not key else "a key that is not a WireGuard key")
    if not node.pod_cidr:
        causes.append("no podCIDR")
    if not is_fresh(node, now):
        seen = last_seen(node)
        if seen is not None:
            causes.append(f"stale last-seen ({now - seen} s ago)")
        elif keys.KILO_LAST_SEEN in annotations:
            causes.append("a last-seen that is not a number")
        else:
            causes.append("never checked in")
    return causes


def kg_stopped(node: NodeState) -> bool:
    """Whether Kilo's agent left the node as it leaves one it stops on (SIGTERM: a
    rollout, or Kilo stopping): its key and its last-seen removed (pkg/k8s/backend.go
    CleanUp), on a node topoctl publishes settings to. Kilo counts the node not Ready;
    whether that moves the leader is the planner's to say."""
    annotations = node.annotations
    return (
        keys.TOPOCTL_AGENT in annotations
        and keys.KILO_KEY not in annotations
        and keys.KILO_LAST_SEEN not in annotations
    )


def addresses(node: NodeState) -> set[str]:
    """Every address Kilo or Kubernetes gives the node's private side: the forced and
    Kilo's own internal IP, and its InternalIP addresses."""
    annotations = node.annotations
    out = {a for t, a in node.addresses if t == "InternalIP"}
    for key in (keys.KILO_FORCE_INTERNAL_IP, keys.KILO_INTERNAL_IP):
        ip = _cidr_ip(annotations.get(key))
        if ip is not None:
            out.add(ip)
    return out


def _endpoint(node: NodeState) -> str | None:
    """The endpoint host Kilo uses: the forced one when it parses, else its own."""
    annotations = node.annotations
    endpoint = _endpoint_host(annotations.get(keys.KILO_FORCE_ENDPOINT))
    if endpoint is None:
        endpoint = _endpoint_host(annotations.get(keys.KILO_ENDPOINT))
    return endpoint


def kilo_ready(node: NodeState, now: int | None) -> bool:
    """Whether Kilo counts the node as Ready at ``now`` (:func:`not_ready` finds no
    cause), and so lets it lead or carry routes; with no time at all the Kubernetes Ready
    condition stands in. The leader election and the node that carries a site's allowed
    IPs under ``full``/``cross`` granularity both ask it."""
    return node.ready == "True" if now is None else not not_ready(node, now)


@lru_cache(maxsize=65536)
def is_wireguard_key(value: str | None) -> bool:
    """Kilo's key check (wgtypes.ParseKey): standard base64 of exactly 32 bytes. Kilo
    counts a node whose key does not parse as having no key: it is not Ready."""
    if not value:
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == WIREGUARD_KEY_BYTES
    except ValueError:
        return False


@lru_cache(maxsize=65536)
def _endpoint_host(value: str | None) -> str | None:
    if not value:
        return None
    quad = _IPV4_PORT.fullmatch(value)
    if quad is not None and int(quad.group(6)) <= 65535:
        return quad.group(1)
    endpoint = kilo_endpoint(value)
    return endpoint.host if endpoint is not None else None


@lru_cache(maxsize=65536)
def _cidr_ip(value: str | None) -> str | None:
    if not value or "/" not in value:
        return None  # Kilo ignores a bare IP
    quad = _IPV4_CIDR.fullmatch(value)
    if quad is not None:
        return quad.group(1)
    interface = go_cidr(value)
    return str(interface.ip) if interface is not None else None


# --- the six keys a user sets, as Kilo reads them -------------------------------------

NO_INTERNAL_IP: Final = ""  # force-internal-ip "" or "-": Kilo uses no internal IP at all
_INT64 = 2**63
_SECOND = 1_000_000_000  # time.Second, in nanoseconds
_DECIMAL = re.compile(r"[+-]?[0-9]+")
_PREFIX = re.compile(r"[0-9]+")

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@lru_cache(maxsize=65536)
def kilo_endpoint(value: str) -> Endpoint | None:
    """A ``host:port`` endpoint as Kilo parses it (pkg/wireguard ParseEndpoint), or None
    where Kilo ignores the value: the port is required; the host is an IPv4 address, a
    bracketed IPv6 address or a lowercase DNS-1123 subdomain. Kilo takes addresses no
    other location can reach (loopback, link-local...) and reads an IPv4-mapped IPv6
    address as the IPv4 address (Go's ``To4``)."""
    try:
        endpoint = parse_endpoint(value, routable=False)
    except ValueError:
        return None
    if endpoint.port is None:
        return None
    if endpoint.is_ip:
        mapped = ipaddress.ip_address(endpoint.host)
        if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
            return Endpoint(str(mapped.ipv4_mapped), endpoint.port, True)
    return endpoint


@lru_cache(maxsize=65536)
def go_cidr(value: str) -> Interface | None:
    """``ip/len`` as Go's ``net.ParseCIDR`` takes it (the address with its prefix, host
    bits kept), or None. Python's parser is wider: it also takes netmasks, IPv6 zones
    and padding, which Go refuses."""
    ip, slash, length = value.partition("/")
    if not slash or not _PREFIX.fullmatch(length) or "%" in ip or ip != ip.strip():
        return None
    try:
        return ipaddress.ip_interface(value)
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def kilo_internal_ip(value: str) -> str | None:
    """``force-internal-ip`` as Kilo reads it: ``ip/len`` (canonical text),
    :data:`NO_INTERNAL_IP` for "" or "-", or None where Kilo ignores it (a bare IP)."""
    if value in ("", "-"):
        return NO_INTERNAL_IP
    interface = go_cidr(value)
    return str(interface) if interface is not None else None


@lru_cache(maxsize=65536)
def kilo_keepalive(value: str) -> int:
    """``persistent-keepalive`` as Kilo reads it, in seconds: Go's
    ``strconv.ParseInt(v, 10, 64)`` with its error ignored (a sign and leading zeros
    allowed; 0, keepalive off, for anything else; the int64 bound past it), times
    ``time.Second`` in int64 arithmetic, which wraps for values past ~292 years."""
    if not _DECIMAL.fullmatch(value):
        return 0
    number = max(-_INT64, min(int(value), _INT64 - 1))
    nanoseconds = (number * _SECOND + _INT64) % (2 * _INT64) - _INT64
    whole = abs(nanoseconds) // _SECOND  # Go's integer division rounds toward zero
    return whole if nanoseconds >= 0 else -whole


@lru_cache(maxsize=65536)
def kilo_allowed_ips(value: str) -> tuple[str, ...]:
    """``allowed-location-ips`` as Kilo reads it: split at every comma, no trimming, and
    each item that ``net.ParseCIDR`` takes kept as ``ip/len`` (host bits kept); a bare
    IP, a padded item or an empty one is dropped."""
    kept = (go_cidr(item) for item in value.split(","))
    return tuple(str(interface) for interface in kept if interface is not None)


KiloValue = str | bool | int | tuple[str, ...] | Endpoint | None


def read_user_key(key: str, value: str | None, labels: Mapping[str, str]) -> KiloValue:
    """What Kilo makes of one of the six user keys holding ``value`` (None: absent) on a
    node with these labels: the location (the region label when the key is absent),
    whether the node asks to lead, the forced endpoint and internal IP (None: none Kilo
    uses), the keepalive in seconds, the allowed location IPs."""
    if key == keys.KILO_LOCATION:
        return value if value is not None else labels.get(REGION_LABEL, "")
    if key == keys.KILO_LEADER:
        return value is not None
    if value is None:
        return (
            0
            if key == keys.KILO_PERSISTENT_KEEPALIVE
            else (() if key == keys.KILO_ALLOWED_LOCATION_IPS else None)
        )
    if key == keys.KILO_FORCE_ENDPOINT:
        return kilo_endpoint(value) if value else None
    if key == keys.KILO_FORCE_INTERNAL_IP:
        return kilo_internal_ip(value)
    if key == keys.KILO_PERSISTENT_KEEPALIVE:
        return kilo_keepalive(value)
    if key == keys.KILO_ALLOWED_LOCATION_IPS:
        return kilo_allowed_ips(value)
    raise KeyError(key)


def reads_alike(key: str, before: str | None, after: str | None, labels: Mapping[str, str]) -> bool:
    """Whether Kilo reads a user key the same way before and after a change of its text
    (``leader: "false"`` -> ``"true"``; a ``20s`` keepalive, which Kilo reads as 0,
    removed): the plan marks such a change "same for Kilo"."""
    return read_user_key(key, before, labels) == read_user_key(key, after, labels)
