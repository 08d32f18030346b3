"""Throw-away network namespaces shaped like a node, and Node objects for the agent.

`node_network` gives two namespaces joined by veth pairs; nothing leaves them, and
route lookups send no packet::

    node namespace                              upstream namespace
    eth0  192.0.2.10/24, 2001:db8::10/64  <-->  up0  192.0.2.1/24, 2001:db8::1/64
          default via 192.0.2.1                      (the uplink: 203.0.113.50 is "outside")
    eth1  198.51.100.10/24                <-->  up1  198.51.100.1/24
          10.200.0.0/16 via 198.51.100.1             (a private network: 10.200.0.1 inside)
    cilium_tunl (a veth standing in for Cilium's IPIP device; its peer tunl-peer stays in)

Every namespace a test makes is deleted at teardown, even when the test fails.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.core.agent.routes import KernelRoute
from reconciler.model import keys
from tests.kernel import ip, route_entries, route_from_ip

NODE = "fsn1-worker-7kq2p"
EXTERNAL_TARGET = "203.0.113.50"  # TEST-NET-3: routed only inside the test namespaces
INTERNAL_TARGET = "10.200.0.1"
NODE_EXTERNAL_IP = "192.0.2.10"
NODE_INTERNAL_IP = "198.51.100.10"
UPLINK_GATEWAY = "192.0.2.1"
PRIVATE_GATEWAY = "198.51.100.1"
KUBELET_INTERNAL_IP = "10.10.0.3"
NODE_POD_CIDR = "10.244.5.0/24"
OURS = keys.DEFAULT_ROUTE_PROTOCOL
TOPOCTL = Path(sys.executable).parent / "topoctl"
FIXED_NOW = "2030-01-01T00:00:00Z"


class FixedClock:
    """The agent's clock in tests: wall time stands at ``now`` (RFC 3339) until a test
    moves it, so transition times are predictable; waits return at once."""

    def __init__(self, now: str = FIXED_NOW) -> None:
        self.now = now

    def monotonic(self) -> float:
        return 0.0

    def wall(self) -> datetime:
        return datetime.fromisoformat(self.now)

    def wait(self, stop: threading.Event, seconds: float) -> None:
        return None


fixed_clock = FixedClock()


def owned_routes(netns: str, protocol: int = OURS) -> set[KernelRoute]:
    """Routes carrying `protocol`, as KernelRoute values (ip omits the protocol it filters on)."""
    return {route_from_ip(e, protocol) for e in route_entries(netns, "proto", str(protocol))}


def foreign_routes(netns: str, protocol: int = OURS) -> list[str]:
    """Every route not carrying `protocol`, exactly as ip prints it, sorted: for equality."""
    return sorted(
        json.dumps(entry, sort_keys=True)
        for entry in route_entries(netns)
        if int(entry.get("protocol", 0)) != protocol
    )


@dataclass(frozen=True)
class NodeNetwork:
    """A node's namespace (`name`, what the agent gets as --netns) and its upstream."""

    name: str
    upstream: str

    def ip(self, *args: str) -> str:
        """`ip` inside the node namespace."""
        return ip(self.name, *args)


def veth_pair(netns: str, dev: str, peer_netns: str, peer: str) -> None:
    """A veth pair, `dev` in `netns` and `peer` in `peer_netns`, both still down."""
    ip(netns, "link", "add", dev, "type", "veth", "peer", "name", peer, "netns", peer_netns)


def link_up(peer_netns: str, peer: str, netns: str, dev: str) -> None:
    """Bring a veth pair up quietly: the peer first, and no IPv6 link-local address.

    Without a link-local address there is no DAD to finish later, and once both ends
    are operational IPv6 has configured them: nothing then changes routes on its own,
    so tests can compare route listings and watch a pass for route events.
    """
    for namespace, name in ((peer_netns, peer), (netns, dev)):
        ip(namespace, "link", "set", name, "addrgenmode", "none")
        ip(namespace, "link", "set", name, "up")
    for namespace, name in ((peer_netns, peer), (netns, dev)):
        wait_until_operational(namespace, name)


def wait_until_operational(netns: str, dev: str) -> None:
    """Wait for the kernel's link watcher to mark `dev` up: IPv6 configures it only then.

    Bounded by attempts, not by a clock: a slow machine only makes it loop longer.
    """
    for _ in range(10_000):
        (link,) = json.loads(ip(netns, "-j", "link", "show", "dev", dev))
        if link.get("operstate") == "UP":
            return
    raise AssertionError(f"{dev} in {netns} never became operational")


def add_cilium_tunl(netns: str) -> None:
    """A veth named like Cilium's IPIP device (this kernel has no ipip links)."""
    veth_pair(netns, "cilium_tunl", netns, "tunl-peer")
    link_up(netns, "tunl-peer", netns, "cilium_tunl")


@dataclass
class _Namespaces:
    made: list[str] = field(default_factory=list)

    def add(self) -> str:
        name = f"topoctl-agent-{secrets.token_hex(4)}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.made.append(name)
        return name

    def delete_all(self) -> None:
        for name in self.made:
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


MakeNetwork = Callable[..., NodeNetwork]


@pytest.fixture
def make_node_network() -> Iterator[MakeNetwork]:
    """Build a node network; switch parts off to make a target or a device go missing."""
    namespaces = _Namespaces()

    def make(
        *, default_route: bool = True, private_network: bool = True, cilium_tunl: bool = True
    ) -> NodeNetwork:
        node, upstream = namespaces.add(), namespaces.add()
        veth_pair(node, "eth0", upstream, "up0")
        ip(node, "address", "add", f"{NODE_EXTERNAL_IP}/24", "dev", "eth0")
        ip(node, "address", "add", "2001:db8::10/64", "dev", "eth0", "nodad")
        ip(upstream, "address", "add", f"{UPLINK_GATEWAY}/24", "dev", "up0")
        ip(upstream, "address", "add", "2001:db8::1/64", "dev", "up0", "nodad")
        link_up(upstream, "up0", node, "eth0")
        if default_route:
            ip(node, "route", "add", "default", "via", UPLINK_GATEWAY)
        if private_network:
            veth_pair(node, "eth1", upstream, "up1")
            ip(node, "address", "add", f"{NODE_INTERNAL_IP}/24", "dev", "eth1")
            ip(upstream, "address", "add", f"{PRIVATE_GATEWAY}/24", "dev", "up1")
            link_up(upstream, "up1", node, "eth1")
            ip(node, "route", "add", "10.200.0.0/16", "via", PRIVATE_GATEWAY)
        if cilium_tunl:
            add_cilium_tunl(node)
        return NodeNetwork(node, upstream)

    try:
        yield make
    finally:
        namespaces.delete_all()


@pytest.fixture
def node_network(make_node_network: MakeNetwork) -> NodeNetwork:
    """The full node network: uplink, private network and cilium_tunl."""
    return make_node_network()


# --- Node objects and snapshot files -------------------------------------------------------


def route_entry(
    to: str,
    *,
    via: str | None = None,
    dev: str | None = None,
    table: int = 254,
    metric: int = 0,
    onlink: bool = False,
) -> dict[str, Any]:
    """One published route, as `topoctl apply` writes it into the agent annotation."""
    entry: dict[str, Any] = {"to": to, "table": table, "metric": metric}
    if via is not None:
        entry["via"] = via
    if dev is not None:
        entry["dev"] = dev
    if onlink:
        entry["onlink"] = True
    return entry


def agent_annotation(
    *,
    external_target: str | None = EXTERNAL_TARGET,
    internal_target: str | None = None,
    routes: Sequence[Mapping[str, Any]] = (),
    protocol: int = OURS,
    taint: str = "remove",
) -> str:
    """The `topoctl.io/agent` value, in the canonical form desired.agent_annotation writes."""
    payload = {
        "v": 1,
        "externalIPTarget": external_target,
        "internalIPTarget": internal_target,
        "uninitializedTaint": taint,
        "protocol": protocol,
        "routes": sorted(routes, key=lambda r: (r["table"], r["to"], r["metric"])),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


UNINITIALIZED_TAINT = {"key": keys.TAINT_UNINITIALIZED, "value": "true", "effect": "NoSchedule"}
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def node_object(
    name: str = NODE,
    annotation: str | None = None,
    *,
    taints: Sequence[Mapping[str, Any]] = (UNINITIALIZED_TAINT,),
    resource_version: str = "1006",
    pod_cidrs: Sequence[str] = (NODE_POD_CIDR,),
) -> dict[str, Any]:
    """A Node as kubelet registered it with `cloud-provider: external` (a snapshot entry);
    kube-controller-manager gave it `pod_cidrs` (the first is also spec.podCIDR)."""
    annotations = {
        "kilo.squat.ai/location": "hetzner-fsn1",
        "node.alpha.kubernetes.io/ttl": "0",
    }
    if annotation is not None:
        annotations[keys.TOPOCTL_AGENT] = annotation
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": f"6f1c2d3e-0000-4000-8000-{secrets.token_hex(6)}",
            "resourceVersion": resource_version,
            "creationTimestamp": "2026-10-01T09:00:00Z",
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            "annotations": annotations,
        },
        "spec": {
            "podCIDR": pod_cidrs[0] if pod_cidrs else "",
            "podCIDRs": list(pod_cidrs),
            "taints": [dict(t) for t in taints],
        },
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": KUBELET_INTERNAL_IP},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": "2026-11-26T08:00:00Z",
                    "lastTransitionTime": "2026-10-01T09:01:00Z",
                }
            ],
            "nodeInfo": {"kubeletVersion": "v1.32.1", "osImage": "Talos (v1.9.2)"},
        },
    }


def write_snapshot(path: Path, *nodes: Mapping[str, Any]) -> Path:
    """A snapshot file as `kubectl get nodes -o yaml` prints it."""
    document = {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": list(nodes)}
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def read_node(path: Path, name: str = NODE) -> dict[str, Any]:
    """One node of a snapshot file, as it is on disk now."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    for item in document["items"]:
        if item["metadata"]["name"] == name:
            return dict(item)
    raise AssertionError(f"{name} is not in {path}")


def agent_condition(node: Mapping[str, Any]) -> dict[str, Any]:
    """The TopologyReady condition of a node (fails the test when there is none)."""
    for condition in node["status"].get("conditions") or []:
        if condition["type"] == keys.CONDITION_AGENT:
            return dict(condition)
    raise AssertionError(f"no {keys.CONDITION_AGENT} condition on {node['metadata']['name']}")


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real `topoctl` of this virtualenv, in a subprocess (``env`` added to ours)."""
    return subprocess.run(
        [str(TOPOCTL), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


# --- watching the kernel's route notifications ----------------------------------------------

SENTINEL = "10.254.254.0/24"  # added by stop(): every event before it is the pass's
PROBE = "10.254.253.0/24"  # toggled by start() until the monitor provably hears it


class RouteMonitor:
    """`ip monitor route` in a namespace, framed by marker routes so no event is missed.

    `start()` toggles a probe route until the monitor reports it (the subscription is
    not instant, and an identical replace may not be reported at all), then clears the
    probe; `stop()` adds the sentinel route and returns every route event seen before
    it, probe lines excluded.
    """

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._process: subprocess.Popen[str] | None = None

    def _marker(self, action: str, prefix: str) -> None:
        subprocess.run(
            [
                "ip",
                "-n",
                self.netns,
                "route",
                action,
                "blackhole",
                prefix,
                "table",
                "4094",
                "proto",
                "250",
            ],
            capture_output=True,
            check=action != "delete",
        )

    def _events_until_sentinel(self) -> list[str]:
        seen: list[str] = []
        while True:
            line = self._lines.get(timeout=30)  # a guard against hanging, not a measurement
            assert line is not None, "ip monitor ended early"
            if SENTINEL in line:
                return seen
            if PROBE not in line:
                seen.append(line)

    def start(self) -> RouteMonitor:
        self._process = subprocess.Popen(
            ["ip", "-n", self.netns, "monitor", "route"], stdout=subprocess.PIPE, text=True
        )
        stream = self._process.stdout
        assert stream is not None
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()
        for _ in range(200):  # each round adds or deletes the probe: always an event
            self._marker("delete", PROBE)
            self._marker("replace", PROBE)
            try:
                line = self._lines.get(timeout=0.25)
            except queue.Empty:
                continue
            assert line is not None, "ip monitor ended early"
            if PROBE in line:
                self._marker("delete", PROBE)
                return self
        raise AssertionError("ip monitor never reported the probe route")

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def stop(self) -> list[str]:
        """KernelRoute events since `start()`."""
        try:
            self._marker("replace", SENTINEL)
            return self._events_until_sentinel()
        finally:
            self._marker("delete", SENTINEL)
            self.close()

    def close(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@pytest.fixture
def route_monitor() -> Iterator[Callable[[str], RouteMonitor]]:
    """Start monitors on demand; each is stopped at teardown whatever happens."""
    started: list[RouteMonitor] = []

    def start(netns: str) -> RouteMonitor:
        monitor = RouteMonitor(netns)
        started.append(monitor)
        return monitor.start()

    try:
        yield start
    finally:
        for monitor in started:
            monitor.close()
