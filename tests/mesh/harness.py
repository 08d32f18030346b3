"""`Mesh`: a Kilo mesh of network namespaces driven by topoctl, as a context manager.

    with Mesh(locations(("fra", 1, 1), ("ams", 1, 1)), topology=files) as mesh:
        mesh.wait_green(60)
        mesh.push({"sites/fra.yaml": ...})          # a git push, announced by the webhook
        mesh.add_node(NodeSpec("fra-w-9", "fra", labels=WORKER))
        mesh.stop_kilo(); mesh.start_kilo()

Usable from pytest fixtures (tests/mesh/conftest.py), benchmarks and demos alike: it
needs nothing but root and the programs `requirements()` names.

What runs, per node: `wireguard-go -f kilo0` and Kilo's own agent
`kg --create-interface=false` (Kilo's userspace mode, manifests/kilo-kubeadm-userspace.yaml)
with Cozystack's flags `--local=false --cni=false --compatibility=cilium
--mesh-granularity=<granularity>`, and `topoctl agent`; all in the node's network
namespace and private mount namespace (tests/mesh/netns.py), against the API double over
HTTP on the root end of the API link. Once: the API double (in this process, with
Kilo's CRD created from Kilo's own manifest and deploy/base's RBAC and admission policy),
the kubelets' part (tests/mesh/kubelet.py), a bare git repository holding the topology
and `topoctl run --git-url` following it (a push is announced through its webhook, as a
forge would). topoctl runs as in a cluster: the controller with a token of its service
account, each agent with one bound to its Node; kg as the double's admin (client-go
sends no credentials over plain http).

The one deviation from Cozystack: `--encapsulate=never` instead of `crosssubnet`. This
kernel has no `ipip` module; nodes of a location share one L2 segment (their LAN), so
nothing inside a location needs encapsulation. Cilium's part inside a location is played
by static routes: every node routes each same-location node's pod CIDR via that node's
LAN address at metric 100 (kg with `--local=false` rewrites the location's pod-CIDR
routes at metric 0 while it starts; a metric of its own keeps the stand-in out of Kilo's
way).

Everything it starts is stopped and every namespace removed on exit, also after a
failure; a run killed before it could clean up is cleaned up by the next one
(`netns.clean_stale`). Its directory (every process's log, the kubeconfigs, the git
repository) goes too, unless MESH_KEEP_WORKDIR is set: then it stays for a post-mortem.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from tests import shipped_rbac
from tests.apiserver import ApiServer
from tests.apiserver.fixtures import write_kubeconfig
from tests.controller.gitrepos import Remote
from tests.mesh import netns, probe
from tests.mesh.fabric import Fabric
from tests.mesh.kubelet import Kubelets
from tests.mesh.procs import Proc, stop_all
from tests.mesh.spec import AddressPlan, LocationSpec, NodeAddresses, NodeSpec

KILO_CRDS = Path(__file__).resolve().parents[1] / "apiserver" / "kilo-crds.yaml"
TOKEN_SECONDS = 24 * 3600  # long enough for any run
CILIUM_METRIC = 100
WEBHOOK_SECRET = b"mesh-webhook-secret"
TOOLS = ("wireguard-go", "wg", "iptables", "ping", "ip", "unshare")


def requirements() -> str | None:
    """Why a mesh cannot run here (None when it can): root, KILO_KG and the tools."""
    if os.geteuid() != 0:
        return "needs root: network namespaces, WireGuard devices, iptables (CI runs as root)"
    kg = os.environ.get("KILO_KG")
    if not kg or not os.access(kg, os.X_OK):
        return "KILO_KG does not name Kilo's agent kg (.ci/run sets it from ../shared/kilo/kg)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return (
            f"missing {', '.join(missing)} (Debian: apt-get install wireguard-go "
            "wireguard-tools iptables iputils-ping)"
        )
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun: wireguard-go needs the tun device"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MeshNode:
    """One node of the mesh: its namespace, files, addresses and processes."""

    def __init__(self, spec: NodeSpec, addr: NodeAddresses, netns_name: str, root: Path) -> None:
        self.spec = spec
        self.addr = addr
        self.netns = netns_name
        self.root = root
        self.registered_at = 0.0  # time.time() when the kubelet created its Node
        self.wireguard: Proc | None = None
        self.kg: Proc | None = None
        self.agent: Proc | None = None

    @property
    def name(self) -> str:
        """The node's name (its Node object, its hostname)."""
        return self.spec.name

    @property
    def endpoint(self) -> probe.Endpoint:
        """Its pod address, for pings."""
        return probe.Endpoint(self.name, self.netns, self.addr.pod_ip)

    def argv(self, *argv: str) -> list[str]:
        """A command line running `argv` as a process of this node."""
        return netns.node_argv(self.netns, self.root, *argv)

    def run(self, *argv: str, check: bool = True) -> str:
        """Run a command as a process of this node; its stdout."""
        return netns.run(*self.argv(*argv), check=check).stdout

    def wg(self) -> probe.WgState | None:
        """Its kilo0 interface as WireGuard reports it (None while it has none)."""
        out = netns.run(*self.argv("wg", "show", "kilo0", "dump"), check=False)
        return probe.parse_wg_dump(out.stdout) if out.returncode == 0 else None

    def routes(self, *selector: str) -> list[dict[str, Any]]:
        """`ip -j route show table all SELECTOR` in its namespace (IPv4)."""
        return netns.ip_json("-4", "route", "show", "table", "all", *selector, netns=self.netns)

    def kilo_routes(self) -> list[dict[str, Any]]:
        """Kilo's routes through kilo0 (protocol static, table main): a leader's."""
        return self.routes("dev", "kilo0", "proto", "static")

    def procs(self) -> list[Proc]:
        """Its processes, started or not."""
        return [p for p in (self.agent, self.kg, self.wireguard) if p is not None]


class Mesh:
    """A mesh of Kilo nodes in network namespaces, converged by topoctl from git."""

    def __init__(
        self,
        locations: Sequence[LocationSpec],
        *,
        topology: Mapping[str, str],
        granularity: str = "location",
        controller: bool = True,
        annotations: Mapping[str, Mapping[str, str]] | None = None,
        workdir: Path | None = None,
        kg: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """`topology` holds the files of the git repository; `controller=False` leaves
        `topoctl run` to `start_controller()`; `annotations` are written on nodes when
        they register (hand-written, as in a machine config: Kilo alone)."""
        self.locations = {loc.name: loc for loc in locations}
        self.initial_topology = dict(topology)
        self.granularity = granularity
        self.with_controller = controller
        self.node_annotations = {k: dict(v) for k, v in (annotations or {}).items()}
        self.kg_path = kg or os.environ.get("KILO_KG", "")
        self.tag = netns.run_tag()
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
        self.say = log or (lambda text: None)
        self.plan = AddressPlan()
        self.fabric = Fabric(self.tag)
        self.api = ApiServer(bookmark_interval=1.0, max_watch_seconds=600.0)
        self.kubelets = Kubelets(self.api)
        self.nodes: dict[str, MeshNode] = {}
        self.remote: Remote | None = None
        self.controller: Proc | None = None
        self.controller_port = 0
        self.kubeconfig = self.workdir / "kubeconfig"  # the admin's, for a person's kubectl
        self.controller_kubeconfig = self.workdir / "controller.kubeconfig"
        self.timings: dict[str, float] = {}
        self.kilo_started_at = 0.0  # monotonic: when the last kg of start() was started
        self._lock = threading.Lock()
        self._env = {
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
        }

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> Mesh:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Build the underlay, start the API double, every node and the controller."""
        reason = requirements()
        if reason is not None:
            raise RuntimeError(reason)
        began = time.monotonic()
        stale = netns.clean_stale()
        if stale:
            self.say(f"removed what a killed run left: {', '.join(stale)}")
        self.fabric.create()
        self.api.start(host=self.fabric.api_address)
        write_kubeconfig(self.kubeconfig, self.api.url)
        self._identities()
        self.kubelets.start()
        for loc in self.locations.values():
            self.fabric.location(self.plan.location(loc.name, onprem=loc.onprem))
        for loc in self.locations.values():
            for spec in loc.nodes:
                self._plumb(spec)
        self._start_processes(list(self.nodes.values()))
        self.timings["nodes"] = time.monotonic() - began
        self.remote = Remote(self.workdir / "git")
        self.remote.push(dict[str, str | None](self.initial_topology), "the mesh's topology")
        if self.with_controller:
            self.start_controller()
        self.timings["started"] = time.monotonic() - began

    def _identities(self) -> None:
        """Kilo's CRD, deploy/base's RBAC and admission policy, and the controller's
        kubeconfig with a token of its service account (each agent gets one bound to its
        Node when the node registers). kg uses the admin's kubeconfig: client-go sends no
        credentials over plain http, so over the double's http it is the admin whatever
        its kubeconfig holds."""
        self.api.seed(yaml.safe_load(KILO_CRDS.read_text()))
        shipped_rbac.load(self.api)
        ns, controller = shipped_rbac.NAMESPACE, shipped_rbac.CONTROLLER
        token = self.api.token(ns, controller, seconds=TOKEN_SECONDS)
        write_kubeconfig(self.controller_kubeconfig, self.api.url, namespace=ns, token=token)

    def close(self) -> None:
        """Stop everything and remove every namespace (safe to call twice)."""
        procs: list[Proc] = []
        if self.controller is not None:
            procs.append(self.controller)
        for node in self.nodes.values():
            procs.extend(p for p in (node.agent,) if p is not None)
        stop_all(procs)
        # kg cleans up on SIGTERM (its annotations, by a JSON patch): the API still runs
        stop_all([n.kg for n in self.nodes.values() if n.kg is not None])
        stop_all([n.wireguard for n in self.nodes.values() if n.wireguard is not None])
        self.kubelets.stop()
        self.api.stop()
        for node in list(self.nodes.values()):
            netns.delete_netns(node.netns)
        for name in self.locations:
            self.fabric.destroy_location(self.plan.location(name))
        self.fabric.destroy()
        if self._own_workdir and not os.environ.get("MESH_KEEP_WORKDIR"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --------------------------------------------------------------------- nodes

    def _plumb(self, spec: NodeSpec) -> MeshNode:
        if spec.location not in self.locations:
            raise ValueError(f"{spec.name}: unknown location {spec.location!r}")
        if spec.name in self.nodes:
            raise ValueError(f"{spec.name}: already in the mesh")
        loc = self.plan.location(spec.location)
        addr = self.plan.node(spec)
        node = MeshNode(spec, addr, f"{self.tag}-{spec.name}", self.workdir / "nodes" / spec.name)
        netns.prepare_node_root(node.root, spec.name, addr.lan)
        self.fabric.node(node.netns, loc, addr)
        with self._lock:
            self.nodes[spec.name] = node
        for other in self.same_location(node):
            self._cilium_route(node, other)
            self._cilium_route(other, node)
        return node

    def _cilium_route(self, on: MeshNode, to: MeshNode) -> None:
        netns.ip(
            "route",
            "replace",
            to.addr.pod_cidr,
            "via",
            to.addr.lan,
            "dev",
            "eth0",
            "metric",
            str(CILIUM_METRIC),
            netns=on.netns,
        )

    def same_location(self, node: MeshNode) -> list[MeshNode]:
        """The other nodes of its location."""
        return [
            n
            for n in self.nodes.values()
            if n.spec.location == node.spec.location and n.name != node.name
        ]

    def _start_processes(self, nodes: Sequence[MeshNode]) -> None:
        """The kubelet registers each node; then wireguard-go, kg and the agent start."""
        for node in nodes:
            node.registered_at = time.time()
            self.kubelets.register(
                node.name,
                address=node.addr.lan,
                pod_cidr=node.addr.pod_cidr,
                labels=node.spec.labels,
                annotations=self.node_annotations.get(node.name),
            )
            ns, agent = shipped_rbac.NAMESPACE, shipped_rbac.AGENT
            token = self.api.token(ns, agent, node=node.name, seconds=TOKEN_SECONDS)
            write_kubeconfig(
                node.root / "agent.kubeconfig", self.api.url, namespace=ns, token=token
            )
            node.wireguard = self._proc(node, "wireguard-go", "wireguard-go", "-f", "kilo0")
        for node in nodes:
            assert node.wireguard is not None
            sock = node.root / "run" / "wireguard" / "kilo0.sock"
            probe.wait_until(
                sock.exists,
                10,
                f"{node.name}: wireguard-go's kilo0 socket",
                detail=node.wireguard.tail,
            )
            node.kg = self._proc(node, "kg", *self._kg_argv(node))
            self.kilo_started_at = time.monotonic()
            node.agent = self._proc(
                node,
                "agent",
                "topoctl",
                "agent",
                "--node",
                node.name,
                "--kubeconfig",
                str(node.root / "agent.kubeconfig"),
                "--interval",
                "5s",
            )

    def _kg_argv(self, node: MeshNode) -> list[str]:
        return [
            self.kg_path,
            f"--kubeconfig={self.kubeconfig}",
            f"--hostname={node.name}",
            "--create-interface=false",
            "--local=false",
            "--cni=false",
            "--compatibility=cilium",
            "--encapsulate=never",
            f"--mesh-granularity={self.granularity}",
            "--listen=127.0.0.1:1107",
        ]

    def _proc(self, node: MeshNode, what: str, *argv: str) -> Proc:
        return Proc(
            f"{node.name}/{what}", node.argv(*argv), node.root / f"{what}.log", self._env
        ).start()

    def add_node(self, spec: NodeSpec, annotations: Mapping[str, str] | None = None) -> MeshNode:
        """A node joins: its namespace, the kubelet's registration (no Kilo annotation,
        unless `annotations` are hand-written), wireguard-go, kg and the agent.
        `registered_at` (wall clock, as the request log) is when its Node was created."""
        if annotations:
            self.node_annotations[spec.name] = dict(annotations)
        node = self._plumb(spec)
        self._start_processes([node])
        return node

    def remove_node(self, name: str) -> None:
        """A node leaves: its processes stop (kg cleans up), its Node and Lease are
        deleted, its namespace goes, and its location stops routing to it."""
        node = self.nodes[name]
        stop_all(node.procs())
        self.kubelets.unregister(name)
        for other in self.same_location(node):
            netns.ip(
                "route",
                "del",
                node.addr.pod_cidr,
                "metric",
                str(CILIUM_METRIC),
                netns=other.netns,
                check=False,
            )
        netns.delete_netns(node.netns)
        with self._lock:
            del self.nodes[name]

    def stop_kilo(
        self, names: Iterable[str] | None = None, *, sig: signal.Signals = signal.SIGTERM
    ) -> None:
        """Stop kg on these nodes (default: all). SIGTERM lets kg clean up as a DaemonSet
        rollout would; SIGKILL leaves its routes and annotations as a crash would."""
        chosen = [self.nodes[n] for n in (names if names is not None else list(self.nodes))]
        for node in chosen:
            if node.kg is not None:
                node.kg.send(sig)
        for node in chosen:
            if node.kg is not None:
                node.kg.stop(10.0)

    def start_kilo(self, names: Iterable[str] | None = None) -> None:
        """Start kg again on these nodes (default: all where it is not running)."""
        for name in names if names is not None else list(self.nodes):
            node = self.nodes[name]
            if node.kg is not None and not node.kg.running:
                node.kg.start()

    # ------------------------------------------------------------------- topology

    def start_controller(self) -> None:
        """Start `topoctl run` (again), following the topology's repository."""
        if self.controller is not None:
            self.controller.start()
            return
        assert self.remote is not None
        secret = self.workdir / "webhook-secret"
        secret.write_bytes(WEBHOOK_SECRET)
        self.controller_port = _free_port()
        self.controller = Proc(
            "topoctl-run",
            [
                "topoctl",
                "run",
                "--git-url",
                self.remote.url,
                "--cache-dir",
                str(self.workdir / "cache"),
                "--kubeconfig",
                str(self.controller_kubeconfig),
                "--listen",
                f"127.0.0.1:{self.controller_port}",
                "--lease-namespace",
                shipped_rbac.NAMESPACE,
                "--identity",
                "mesh",
                "--poll",
                "30s",
                "--webhook-secret-file",
                str(secret),
            ],
            self.workdir / "topoctl-run.log",
            self._env,
        ).start()

    def stop_controller(self) -> None:
        """Stop `topoctl run` (SIGTERM: it releases its lease and exits)."""
        if self.controller is not None:
            self.controller.stop()

    def push(self, files: Mapping[str, str | None], message: str = "change") -> str:
        """Commit and push to the topology's repository, then announce it through
        `topoctl run`'s webhook (as a forge does); the new commit's sha."""
        assert self.remote is not None
        sha = self.remote.push(dict(files), message)
        body = b'{"ref":"refs/heads/main"}'
        signature = "sha256=" + hmac.new(WEBHOOK_SECRET, body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.controller_port}/hooks/git",
            body,
            {"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
        )
        with contextlib.suppress(urllib.error.URLError, OSError):
            urllib.request.urlopen(request, timeout=5).close()  # the 30 s poll catches up
        return sha

    # ------------------------------------------------------------------ observing

    def location_of(self) -> dict[str, str]:
        """{node: location} for every node now in the mesh."""
        return {name: node.spec.location for name, node in self.nodes.items()}

    def ping_matrix(
        self, *, same_location: bool = False, timeout: float = 1.0, only: str | None = None
    ) -> probe.Matrix:
        """Ping every node's pod address from every other location's nodes (and, with
        `same_location`, from the other nodes of its own), both ways, once; `only`: just
        the pairs that involve that node."""
        nodes = list(self.nodes.values())
        pairs = probe.pairs_between(
            [n.endpoint for n in nodes], self.location_of(), same_location=same_location
        )
        if only is not None:
            pairs = [(a, b) for a, b in pairs if only in (a.node, b.node)]
        return probe.Matrix(probe.ping_all(pairs, timeout=timeout))

    def reaches(self, sources: Iterable[str], address: str) -> bool:
        """Whether `address` answers a ping from the pod address of every node named."""
        target = probe.Endpoint(address, "", address)
        results = probe.ping_all((self.nodes[name].endpoint, target) for name in sources)
        return bool(results) and all(results.values())

    def wait_green(
        self,
        timeout: float,
        *,
        same_location: bool = False,
        only: str | None = None,
        every: float = 0.2,
        ping_timeout: float = 1.0,
    ) -> float:
        """Wait until the whole matrix (or `only` one node's pairs) answers; the seconds
        it took."""
        last: list[probe.Matrix] = []

        def green() -> bool:
            last[:] = [
                self.ping_matrix(same_location=same_location, timeout=ping_timeout, only=only)
            ]
            return last[0].green

        return probe.wait_until(
            green,
            timeout,
            "every pod address to answer",
            every=every,
            detail=lambda: f"{last[0] if last else 'no round'}\n{self.diagnose()}",
        )

    def kilo_leaders(self) -> dict[str, list[str]]:
        """{location: nodes that route other locations through kilo0}: Kilo's leaders as
        the kernel shows them (one per location under `location` granularity once
        converged). Routes, not WireGuard peers, tell: kg leaves a former leader's peers
        configured on kilo0 (only the leaders that take over replace theirs)."""
        out: dict[str, list[str]] = {name: [] for name in self.locations}
        for node in self.nodes.values():
            if node.kilo_routes():
                out[node.spec.location].append(node.name)
        return {k: sorted(v) for k, v in out.items()}

    def annotations(self, name: str) -> dict[str, str]:
        """The annotations of a Node as the API holds them."""
        node = self.api.node(name)
        return dict((node or {}).get("metadata", {}).get("annotations") or {})

    def diagnose(self) -> str:
        """What a failure message should show: per node, Kilo's peers and the last lines
        of kg's and the agent's logs."""
        lines = []
        for node in self.nodes.values():
            state = node.wg()
            peers = [p.endpoint or "-" for p in state.peers] if state else "no kilo0"
            lines.append(f"{node.name}: peers {peers}")
            for proc in (node.kg, node.agent):
                if proc is not None and not proc.running:
                    lines.append(f"  {proc.name} exited: {proc.tail(5)}")
        if self.controller is not None and not self.controller.running:
            lines.append(f"topoctl run exited: {self.controller.tail(10)}")
        return "\n".join(lines)
