"""Looking at a running mesh: pings between pod addresses, WireGuard peers, routes.

Pings are iputils `ping -c 1 -W 1 -I <source pod address>` run inside the source
node's namespace, all pairs at once (`-c`, not `-w`: iputils' `-w` stops at the first
ICMP error, which a converging mesh sends). WireGuard state is `wg show kilo0 dump`
inside the node's mount namespace (the UAPI socket is in its own /run/wireguard).
"""

from __future__ import annotations

import itertools
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from tests.mesh import netns


@dataclass(frozen=True)
class Endpoint:
    """Where a ping starts or ends: a node's namespace and its pod (cni0) address."""

    node: str
    netns: str
    address: str


def ping_all(
    pairs: Iterable[tuple[Endpoint, Endpoint]], *, timeout: float = 1.0
) -> dict[tuple[str, str], bool]:
    """One echo for every (source, destination) pair, in parallel: {(src, dst): answered}."""
    running = []
    for src, dst in pairs:
        argv = netns.exec_argv(
            src.netns,
            "ping",
            "-n",
            "-q",
            "-c",
            "1",
            "-W",
            f"{timeout:g}",
            "-I",
            src.address,
            dst.address,
        )
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        running.append(((src.node, dst.node), proc))
    results = {}
    for key, proc in running:
        try:
            results[key] = proc.wait(timeout=timeout + 5) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            results[key] = False
    return results


@dataclass(frozen=True)
class Matrix:
    """The outcome of one ping round: which (source, destination) pairs answered."""

    results: Mapping[tuple[str, str], bool]

    @property
    def green(self) -> bool:
        """Every pair answered."""
        return bool(self.results) and all(self.results.values())

    def failed(self) -> list[tuple[str, str]]:
        """The pairs that did not answer, sorted."""
        return sorted(k for k, ok in self.results.items() if not ok)

    def __str__(self) -> str:
        bad = self.failed()
        total = len(self.results)
        if not bad:
            return f"{total}/{total} pairs answer"
        listed = ", ".join(f"{s}->{d}" for s, d in bad[:12])
        more = f" (+{len(bad) - 12} more)" if len(bad) > 12 else ""
        return f"{total - len(bad)}/{total} pairs answer; silent: {listed}{more}"


@dataclass(frozen=True)
class WgPeer:
    """One peer of a WireGuard interface, from `wg show INTERFACE dump`."""

    public_key: str
    endpoint: str | None
    allowed_ips: tuple[str, ...]
    latest_handshake: int  # unix seconds, 0: never
    rx_bytes: int
    tx_bytes: int
    keepalive: int | None


@dataclass(frozen=True)
class WgState:
    """A WireGuard interface: its public key, port and peers."""

    public_key: str
    listen_port: int
    peers: tuple[WgPeer, ...]


def parse_wg_dump(text: str) -> WgState | None:
    """Parse `wg show INTERFACE dump` (tab-separated: the interface, then one line a peer)."""
    lines = [line.split("\t") for line in text.strip().splitlines() if line.strip()]
    if not lines or len(lines[0]) < 3:
        return None
    _private, public, port = lines[0][:3]
    peers = []
    for fields in lines[1:]:
        if len(fields) < 8:
            continue
        key, _psk, endpoint, allowed, handshake, rx, tx, keepalive = fields[:8]
        peers.append(
            WgPeer(
                public_key=key,
                endpoint=None if endpoint == "(none)" else endpoint,
                allowed_ips=tuple(a for a in allowed.split(",") if a and a != "(none)"),
                latest_handshake=int(handshake),
                rx_bytes=int(rx),
                tx_bytes=int(tx),
                keepalive=None if keepalive == "off" else int(keepalive),
            )
        )
    return WgState(public_key=public, listen_port=int(port), peers=tuple(peers))


def wait_until(
    check: Callable[[], object],
    timeout: float,
    what: str,
    *,
    every: float = 0.25,
    detail: Callable[[], object] | None = None,
) -> float:
    """Poll `check()` until it is truthy; the seconds it took. AssertionError naming `what`
    (and `detail()`, if given) after `timeout` seconds. Conditions with deadlines, never
    sleeps, decide what a test sees."""
    start = time.monotonic()
    deadline = start + timeout
    while not check():
        if time.monotonic() >= deadline:
            extra = f": {detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(every)
    return time.monotonic() - start


def pairs_between(
    endpoints: Sequence[Endpoint], location_of: Mapping[str, str], *, same_location: bool = False
) -> list[tuple[Endpoint, Endpoint]]:
    """Ordered pairs of distinct nodes: across locations (and within one, if asked)."""
    return [
        (a, b)
        for a in endpoints
        for b in endpoints
        if a.node != b.node and (same_location or location_of[a.node] != location_of[b.node])
    ]


class PingStream:
    """A continuous ping (iputils, `-i` interval, `-D` reply timestamps) from one pod
    address to another, for measuring how long traffic stops: `gaps()` after `stop()`."""

    def __init__(self, src: Endpoint, dst: Endpoint, *, interval: float = 0.02) -> None:
        self.interval = interval
        argv = netns.exec_argv(
            src.netns,
            "ping",
            "-n",
            "-D",
            "-i",
            f"{interval:g}",
            "-W",
            "1",
            "-c",
            "1000000",
            "-I",
            src.address,
            dst.address,
        )
        self.started = time.time()
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.replies: list[float] = []

    def stop(self) -> list[float]:
        """Stop pinging; the wall-clock times of the replies."""
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=10)
        for line in out.splitlines():
            if line.startswith("[") and " bytes from " in line:
                self.replies.append(float(line[1 : line.index("]")]))
        return self.replies

    def longest_gap(self, since: float, until: float) -> float:
        """The longest time without a reply between `since` and `until` (wall clock): the
        silence around a leader move, at the stream's interval resolution."""
        times = [since, *(t for t in self.replies if since <= t <= until), until]
        return max(b - a for a, b in itertools.pairwise(times))
