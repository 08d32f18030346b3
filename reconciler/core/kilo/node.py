"""How Kilo reads a Node, reproduced exactly (squat/kilo pkg/k8s/backend.go translateNode,
pkg/mesh/ip.go): its location, endpoint, internal IP, key and readiness."""

from __future__ import annotations

import base64
import ipaddress
import re
from functools import lru_cache

import msgspec

from reconciler.core.kilo.freshness import is_fresh, last_seen
from reconciler.model import keys
from reconciler.model.addresses import parse_endpoint
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
    try:
        endpoint = parse_endpoint(value)
    except ValueError:
        return None  # Kilo ignores what it cannot parse
    return endpoint.host if endpoint.port is not None else None


@lru_cache(maxsize=65536)
def _cidr_ip(value: str | None) -> str | None:
    if not value or "/" not in value:
        return None  # Kilo ignores a bare IP
    quad = _IPV4_CIDR.fullmatch(value)
    if quad is not None:
        return quad.group(1)
    try:
        return str(ipaddress.ip_interface(value).ip)
    except ValueError:
        return None
