"""What a mesh is made of (locations, nodes) and the address plan every part agrees on.

Addresses (IPv4; the same in every run: each run lives in namespaces of its own;
i is a location's 1-based index, k a node's within its location, n within the run):

- the WAN ("internet"): bridge `wan` in the fabric namespace, 198.51.100.0/24, the
  fabric at .1; a gateway's public address on its `wan0`: 198.51.100.(10 + n-th gateway);
- the LAN of location i: bridge `lan<i>`, 10.(100 + i).0.0/24, the fabric (its router)
  at .254; a node's private address on its `eth0`: 10.(100 + i).0.k;
- a node's pod CIDR: 10.244.n.0/24; `cni0` carries .1 (the "pod" the ping matrix
  uses), Cilium's `cilium_host` .254/32 (its router IP);
- a location's on-prem network (optional): bridge `opn<i>`, 192.168.i.0/24, its host
  at .100, the location's gateways at .(10 + k-th gateway) on their `onp0`.

The WAN addresses are public to Kilo (outside RFC 1918); LAN, pod and on-prem ones are
private. Kilo's own WireGuard subnet (10.4.0.0/16) and Cilium-like pod CIDRs (10.244/16)
are clear of every other range.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

WAN = ipaddress.ip_network("198.51.100.0/24")
WAN_ROUTER = "198.51.100.1"
POD_SUPERNET = ipaddress.ip_network("10.244.0.0/16")
MAX_LOCATIONS = 99
MAX_NODES_PER_LOCATION = 200
MAX_NODES = 250


@dataclass(frozen=True)
class NodeSpec:
    """One node: a gateway has a public address on the WAN (a leader candidate that other
    locations can reach); other nodes have only their location's LAN."""

    name: str
    location: str
    gateway: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LocationSpec:
    """One location (one Kilo location, one topoctl Site); `onprem` adds a network behind
    its gateways (reached from other nodes through `via: leader` routes)."""

    name: str
    nodes: tuple[NodeSpec, ...]
    onprem: bool = False


@dataclass(frozen=True)
class NodeAddresses:
    """Where one node sits in the address plan."""

    index: int  # n: 1-based order of the node in the run
    lan: str  # its private address (no prefix)
    lan_prefix: int
    lan_router: str
    wan: str | None  # its public address (gateways only)
    pod_cidr: str
    pod_ip: str  # the cni0 address: the "pod" the ping matrix uses
    cilium_ip: str  # cilium_host's address (Cilium's router IP in the pod CIDR)
    onprem: str | None  # its address on the location's on-prem network (gateways)


@dataclass(frozen=True)
class LocationAddresses:
    """Where one location sits in the address plan."""

    index: int  # i: 1-based
    lan: str  # CIDR
    lan_router: str
    onprem: str | None  # CIDR
    onprem_host: str | None


class AddressPlan:
    """Hands out addresses as locations and nodes are added, never reusing one in a run."""

    def __init__(self) -> None:
        self._locations: dict[str, LocationAddresses] = {}
        self._nodes: dict[str, NodeAddresses] = {}
        self._per_location: dict[str, int] = {}
        self._gateways_per_location: dict[str, int] = {}
        self._gateways = 0

    def location(self, name: str, *, onprem: bool = False) -> LocationAddresses:
        """The addresses of location `name` (allocated the first time it is named)."""
        found = self._locations.get(name)
        if found is not None:
            return found
        index = len(self._locations) + 1
        if index > MAX_LOCATIONS:
            raise ValueError(f"at most {MAX_LOCATIONS} locations")
        found = LocationAddresses(
            index=index,
            lan=f"10.{100 + index}.0.0/24",
            lan_router=f"10.{100 + index}.0.254",
            onprem=f"192.168.{index}.0/24" if onprem else None,
            onprem_host=f"192.168.{index}.100" if onprem else None,
        )
        self._locations[name] = found
        return found

    def node(self, spec: NodeSpec) -> NodeAddresses:
        """The addresses of a node (allocated the first time it is named)."""
        found = self._nodes.get(spec.name)
        if found is not None:
            return found
        loc = self._locations.get(spec.location) or self.location(spec.location)
        k = self._per_location.get(spec.location, 0) + 1
        n = len(self._nodes) + 1
        if k > MAX_NODES_PER_LOCATION or n > MAX_NODES:
            raise ValueError("too many nodes for the address plan")
        self._per_location[spec.location] = k
        wan = onprem = None
        if spec.gateway:
            self._gateways += 1
            g = self._gateways_per_location.get(spec.location, 0) + 1
            self._gateways_per_location[spec.location] = g
            wan = str(WAN.network_address + 10 + self._gateways)
            if loc.onprem is not None:
                onprem = f"192.168.{loc.index}.{10 + g}"
        pod = ipaddress.ip_network(f"10.244.{n}.0/24")
        found = NodeAddresses(
            index=n,
            lan=f"10.{100 + loc.index}.0.{k}",
            lan_prefix=24,
            lan_router=loc.lan_router,
            wan=wan,
            pod_cidr=str(pod),
            pod_ip=str(pod.network_address + 1),
            cilium_ip=str(pod.network_address + 254),
            onprem=onprem,
        )
        self._nodes[spec.name] = found
        return found
