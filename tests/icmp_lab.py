"""Network namespaces for ICMP tests: a prober, a switch, and nodes that answer or not.

The prober namespace has one uplink (10.10.0.1/16) into a bridge in the switch namespace;
each node is a namespace of its own on that bridge, with an InternalIP 10.10.0.N/16 on its
veth and an ExternalIP 203.0.113.N/32 on its loopback (routed by the prober via the
InternalIP). A node goes silent with its link down or an address removed; the prober is
cut off by disabling its port on the bridge (its link stays up: packets just vanish).
Names are random so parallel runs do not clash.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyroute2 import netns as pyroute2_netns

from tests.kernel import ip


@dataclass(frozen=True)
class LabNode:
    name: str
    netns: str
    internal: str
    external: str


@dataclass
class Lab:
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    nodes: dict[str, LabNode] = field(default_factory=dict)

    @property
    def prober(self) -> str:
        return f"tlp-{self.tag}"

    @property
    def switch(self) -> str:
        return f"tls-{self.tag}"

    def start(self) -> None:
        for ns in (self.prober, self.switch):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            ip(ns, "link", "set", "lo", "up")
        ip(self.switch, "link", "add", "br0", "type", "bridge")
        ip(self.switch, "link", "set", "br0", "up")
        ip(
            self.prober,
            "link",
            "add",
            "up0",
            "type",
            "veth",
            "peer",
            "name",
            "pp",
            "netns",
            self.switch,
        )
        ip(self.switch, "link", "set", "pp", "master", "br0", "up")
        ip(self.prober, "link", "set", "up0", "up")
        ip(self.prober, "address", "add", "10.10.0.1/16", "dev", "up0")

    def add_node(self, name: str) -> LabNode:
        index = len(self.nodes) + 10
        ns = f"tln-{self.tag}-{index}"
        node = LabNode(name, ns, f"10.10.0.{index}", f"203.0.113.{index}")
        subprocess.run(["ip", "netns", "add", ns], check=True)
        ip(ns, "link", "set", "lo", "up")
        port = f"n{index}"
        ip(ns, "link", "add", "e0", "type", "veth", "peer", "name", port, "netns", self.switch)
        ip(self.switch, "link", "set", port, "master", "br0", "up")
        ip(ns, "link", "set", "e0", "up")
        ip(ns, "address", "add", f"{node.internal}/16", "dev", "e0")
        ip(ns, "address", "add", f"{node.external}/32", "dev", "lo")
        ip(self.prober, "route", "add", f"{node.external}/32", "via", node.internal)
        self.nodes[name] = node
        return node

    def silence(self, name: str) -> None:
        """The node's only link goes down: nothing of it answers."""
        ip(self.nodes[name].netns, "link", "set", "e0", "down")

    def drop_external(self, name: str) -> None:
        """The node loses its ExternalIP; its InternalIP still answers."""
        node = self.nodes[name]
        ip(node.netns, "address", "del", f"{node.external}/32", "dev", "lo")

    def cut_off(self) -> None:
        """The prober's bridge port stops forwarding: it reaches nobody."""
        done = subprocess.run(
            ["bridge", "-netns", self.switch, "link", "set", "dev", "pp", "state", "0"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        for ns in [self.prober, self.switch, *(n.netns for n in self.nodes.values())]:
            subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True)


@contextmanager
def lab() -> Iterator[Lab]:
    built = Lab()
    try:
        built.start()
        yield built
    finally:
        built.stop()


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the calling thread in ``netns``: sockets it opens meanwhile live there."""
    pyroute2_netns.pushns(netns)
    try:
        yield
    finally:
        pyroute2_netns.popns()
