"""The underlay: one "fabric" namespace with the WAN, a LAN per location and the link to
the API server; a network namespace per node plugged into it.

The fabric namespace holds the bridges (`wan`, `lan<i>`, `opn<i>`) and routes only
towards the API server: its forwarding policy drops everything except traffic to the
root namespace's end of the API link (masqueraded, as a NAT gateway would), so the
locations reach each other only through Kilo's WireGuard tunnels (gateways talk over
the WAN bridge, on one L2 segment, without the fabric routing anything). The root
namespace gets a single /30 on a veth (`tm<pid>a`, 10.255.x.y): the API double listens
on its address and no other route or address of the host changes.

A node namespace has `eth0` on its location's LAN (default route via the LAN's router
for non-gateways), `wan0` on the WAN for gateways (their default route), `onp0` on the
location's on-prem network for gateways of a location that has one (with a MASQUERADE
rule, as a NAT gateway in front of an on-prem network), and a `cni0` bridge carrying the
first address of its pod CIDR (a veth `pod0` is plugged in so the bridge has carrier),
and Cilium's `cilium_host`/`cilium_net` veth pair with the node's router IP (see
tests/mesh/harness.py for what it is for).
IPv4 forwarding is on and reverse-path filtering off, as on a Kubernetes node.
"""

from __future__ import annotations

import contextlib

from tests.mesh import netns
from tests.mesh.netns import ip, run
from tests.mesh.spec import WAN, WAN_ROUTER, LocationAddresses, NodeAddresses

IPTABLES = "iptables"


class Fabric:
    """The fabric namespace and the API link of one run."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.netns = f"{tag}-fab"
        self.root_link = f"{tag}a"
        self.api_address = ""
        self._fabric_address = ""
        self._locations: set[int] = set()

    def create(self) -> None:
        """Create the fabric namespace, the WAN and the API link."""
        self.api_address, self._fabric_address = netns.free_api_subnet()
        netns.add_netns(self.netns)
        netns.sysctl(
            self.netns,
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        )
        # bridged frames are switched, not filtered (br_netfilter may be loaded on the host)
        with contextlib.suppress(netns.CommandError):
            netns.sysctl(self.netns, "net.bridge.bridge-nf-call-iptables=0")
        ip(
            "link",
            "add",
            self.root_link,
            "type",
            "veth",
            "peer",
            "name",
            "up0",
            "netns",
            self.netns,
        )
        ip("addr", "add", f"{self.api_address}/30", "dev", self.root_link)
        ip("link", "set", self.root_link, "up")
        ip("addr", "add", f"{self._fabric_address}/30", "dev", "up0", netns=self.netns)
        ip("link", "set", "up0", "up", netns=self.netns)
        self._bridge("wan", f"{WAN_ROUTER}/{WAN.prefixlen}")
        fw = netns.exec_argv(self.netns, IPTABLES)
        run(*fw, "-P", "FORWARD", "DROP")
        run(*fw, "-A", "FORWARD", "-o", "up0", "-j", "ACCEPT")
        run(
            *fw,
            "-A",
            "FORWARD",
            "-i",
            "up0",
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        )
        run(*fw, "-t", "nat", "-A", "POSTROUTING", "-o", "up0", "-j", "MASQUERADE")

    def destroy(self) -> None:
        """Delete the fabric namespace (its bridges go with it) and the API link."""
        netns.delete_netns(self.netns)
        ip("link", "del", self.root_link, check=False)

    def _bridge(self, name: str, address: str | None) -> None:
        ip("link", "add", name, "type", "bridge", netns=self.netns)
        if address:
            ip("addr", "add", address, "dev", name, netns=self.netns)
        ip("link", "set", name, "up", netns=self.netns)

    def location(self, loc: LocationAddresses) -> None:
        """The LAN (and on-prem network) of a location, once."""
        if loc.index in self._locations:
            return
        self._locations.add(loc.index)
        self._bridge(f"lan{loc.index}", f"{loc.lan_router}/24")
        if loc.onprem is not None and loc.onprem_host is not None:
            self._bridge(f"opn{loc.index}", None)
            host = self.onprem_netns(loc)
            netns.add_netns(host)
            self._plug(f"o{loc.index}h", f"opn{loc.index}", host, "eth0")
            ip("addr", "add", f"{loc.onprem_host}/24", "dev", "eth0", netns=host)

    def onprem_netns(self, loc: LocationAddresses) -> str:
        """The namespace of a location's on-prem host."""
        return f"{self.tag}-opn{loc.index}"

    def destroy_location(self, loc: LocationAddresses) -> None:
        """Delete a location's on-prem host (the bridges go with the fabric)."""
        if loc.onprem is not None:
            netns.delete_netns(self.onprem_netns(loc))

    def _plug(self, fabric_end: str, bridge: str, other: str, name: str) -> None:
        ip(
            "link",
            "add",
            fabric_end,
            "type",
            "veth",
            "peer",
            "name",
            name,
            "netns",
            other,
            netns=self.netns,
        )
        ip("link", "set", fabric_end, "master", bridge, "up", netns=self.netns)
        ip("link", "set", name, "up", netns=other)

    def node(self, name: str, loc: LocationAddresses, addr: NodeAddresses) -> None:
        """Create a node's namespace and plug it in (see the module docstring)."""
        netns.add_netns(name)
        netns.sysctl(
            name,
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        )
        n = addr.index
        self._plug(f"n{n}l", f"lan{loc.index}", name, "eth0")
        ip("addr", "add", f"{addr.lan}/{addr.lan_prefix}", "dev", "eth0", netns=name)
        if addr.wan is not None:
            self._plug(f"n{n}w", "wan", name, "wan0")
            ip("addr", "add", f"{addr.wan}/{WAN.prefixlen}", "dev", "wan0", netns=name)
            ip("route", "add", "default", "via", WAN_ROUTER, netns=name)
        else:
            ip("route", "add", "default", "via", addr.lan_router, netns=name)
        if addr.onprem is not None:
            self._plug(f"n{n}o", f"opn{loc.index}", name, "onp0")
            ip("addr", "add", f"{addr.onprem}/24", "dev", "onp0", netns=name)
            run(
                *netns.exec_argv(name, IPTABLES),
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "onp0",
                "-j",
                "MASQUERADE",
            )
        ip("link", "add", "cni0", "type", "bridge", netns=name)
        ip("link", "add", "pod0", "type", "veth", "peer", "name", "cni0p", netns=name)
        ip("link", "set", "cni0p", "master", "cni0", "up", netns=name)
        ip("link", "set", "pod0", "up", netns=name)
        ip("addr", "add", f"{addr.pod_ip}/24", "dev", "cni0", netns=name)
        ip("link", "set", "cni0", "up", netns=name)
        # Cilium's veth pair: kg (--compatibility=cilium) reads cilium_host's address and
        # publishes it (kilo.squat.ai/cni-compatibility-ip); the other nodes of the
        # location route to the leader through it
        ip("link", "add", "cilium_host", "type", "veth", "peer", "name", "cilium_net", netns=name)
        ip("addr", "add", f"{addr.cilium_ip}/32", "dev", "cilium_host", netns=name)
        ip("link", "set", "cilium_net", "up", netns=name)
        ip("link", "set", "cilium_host", "up", netns=name)
