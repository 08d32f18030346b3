"""Agent passes on 10,000 routes beside `ip route show table all` plus `ip -batch`.

A pass is a read (dump) plus the writes, so the baseline is the same: iproute2
lists every route (`ip route show table all`), then `ip -force -batch -` makes
exactly the pass's changes. Two fresh network namespaces, each with a veth (v0,
192.0.2.1/24): the agent's code path (adapter snapshot -> core diff -> adapter
apply) runs in one, iproute2 in the other, so both start every phase from the
same state. Phases (10.x.y.0/24 via 192.0.2.2, table main): converge from empty;
the first converged pass (nothing cached from an earlier read); change 10% (500
new gateways, 500 routes swapped for new destinations); a converged pass; remove
all. The agent's pass also reads IPv6 routes and the device list; the baseline
lists IPv4 only.

Run as root from the repository: `.venv/bin/python bench/bench_routes.py`.
Prints figures only; target: every phase within 2x of its baseline.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from reconciler.adapters.netlink import NetlinkAdapter
from reconciler.core.agent.routes import KernelRoute, RouteDiff, diff_routes

PROTOCOL = 193
GATEWAY = "192.0.2.2"
NEW_GATEWAY = "192.0.2.3"


@dataclass(frozen=True)
class Phase:
    name: str
    desired: list[KernelRoute]
    ip_commands: list[str]


@dataclass(frozen=True)
class Baseline:
    dump: float
    batch: float

    @property
    def total(self) -> float:
        return self.dump + self.batch


@dataclass(frozen=True)
class Timing:
    read: float
    diff: float
    apply: float
    writes: int

    @property
    def total(self) -> float:
        return self.read + self.diff + self.apply


def ip(*args: str, stdin: str | None = None) -> None:
    subprocess.run(["ip", *args], input=stdin, text=True, check=True, capture_output=True)


@contextmanager
def veth_namespace(purpose: str) -> Iterator[str]:
    """A fresh namespace with v0 (192.0.2.1/24) up; always deleted."""
    name = f"topoctl-bench-{purpose}-{secrets.token_hex(3)}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        ip("-n", name, "link", "set", "v0", "up")
        ip("-n", name, "link", "set", "v1", "up")
        ip("-n", name, "address", "add", "192.0.2.1/24", "dev", "v0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def destination(index: int, base: int = 0) -> str:
    return f"10.{base + index // 256}.{index % 256}.0/24"


def route(dst: str, gateway: str = GATEWAY) -> KernelRoute:
    return KernelRoute.build(dst, gateway=gateway, dev="v0", protocol=PROTOCOL)


def replace_line(r: KernelRoute) -> str:
    return f"route replace {r.dst} via {r.gateway} dev v0 proto {PROTOCOL}"


def delete_line(r: KernelRoute) -> str:
    return f"route delete {r.dst} via {r.gateway} dev v0 proto {PROTOCOL}"


def phases(count: int) -> list[Phase]:
    full = [route(destination(i)) for i in range(count)]
    tenth = count // 10
    regateway = [route(r.dst, NEW_GATEWAY) for r in full[: tenth // 2]]
    dropped = full[tenth // 2 : tenth]
    added = [route(destination(i, base=200)) for i in range(tenth - tenth // 2)]
    changed = [*regateway, *full[tenth:], *added]
    return [
        Phase("converge from empty", full, [replace_line(r) for r in full]),
        Phase("first converged pass", full, []),
        Phase(
            "change 10%",
            changed,
            [replace_line(r) for r in [*regateway, *added]] + [delete_line(r) for r in dropped],
        ),
        Phase("converged pass", changed, []),
        Phase("remove all", [], [delete_line(r) for r in changed]),
    ]


def agent_pass(adapter: NetlinkAdapter, desired: Sequence[KernelRoute]) -> Timing:
    """What the agent does each pass, timed step by step."""
    start = time.perf_counter()
    snapshot = adapter.snapshot(PROTOCOL)
    read = time.perf_counter()
    diff = diff_routes(desired, snapshot.owned, snapshot.foreign_keys)
    diffed = time.perf_counter()
    result = adapter.apply(diff)
    applied = time.perf_counter()
    if not result.ok:
        raise SystemExit(f"apply failed: {result.failed[:3]}")
    return Timing(read - start, diffed - read, applied - diffed, result.messages_sent)


def baseline_pass(netns: str, commands: list[str]) -> Baseline:
    """iproute2 doing a pass: list every route, then make the changes (if any) in one batch."""
    start = time.perf_counter()
    ip("-n", netns, "route", "show", "table", "all")
    dumped = time.perf_counter()
    if commands:
        ip("-n", netns, "-force", "-batch", "-", stdin="\n".join(commands) + "\n")
    return Baseline(dumped - start, time.perf_counter() - dumped)


def owned_count(netns: str) -> int:
    with NetlinkAdapter(netns) as reader:
        return len(reader.snapshot(PROTOCOL).owned)


def why_raw(netns: str, routes: Sequence[KernelRoute]) -> None:
    """The measurements behind the adapter's raw socket: pyroute2 beside it, same work."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    from reconciler.adapters.netlink_msg import RTM_NEWROUTE, Envelope, encode_route

    start = time.perf_counter()
    for seq, r in enumerate(routes):
        message = rtmsg()
        message["header"] = {"type": RTM_NEWROUTE, "flags": 0x605, "sequence_number": seq}
        message.update(family=2, dst_len=24, table=254, proto=PROTOCOL, type=1)
        message["attrs"] = [
            ("RTA_TABLE", 254),
            ("RTA_PRIORITY", 0),
            ("RTA_DST", r.dst.partition("/")[0]),
            ("RTA_GATEWAY", r.gateway),
            ("RTA_OIF", 2),
        ]
        message.encode()
    pyroute2_encode = time.perf_counter() - start
    start = time.perf_counter()
    for seq, r in enumerate(routes):
        encode_route(Envelope(RTM_NEWROUTE, 0x605, seq, 0, 1), r, 2)
    struct_encode = time.perf_counter() - start
    with IPRoute(netns=netns, flags=0, groups=0) as ipr, NetlinkAdapter(netns) as adapter:
        start = time.perf_counter()
        dumped = len(ipr.route("dump", family=2))
        pyroute2_dump = time.perf_counter() - start
        start = time.perf_counter()
        adapter.snapshot(PROTOCOL)
        raw_dump = time.perf_counter() - start
        sample = [
            KernelRoute.build(r.dst, gateway=GATEWAY, dev="v0", table=100) for r in routes[:1000]
        ]
        oif = adapter.link_indexes()["v0"]
        start = time.perf_counter()
        for r in sample:
            ipr.route("replace", dst=r.dst, gateway=r.gateway, oif=oif, table=100, proto=PROTOCOL)
        pyroute2_writes = time.perf_counter() - start
        start = time.perf_counter()
        written = adapter.apply(RouteDiff(replace=tuple(sample)))
        batched_writes = time.perf_counter() - start
        if not written.ok:
            raise SystemExit(f"apply failed: {written.failed[:3]}")
    print(
        f"write {len(sample)} routes: pyroute2 route() {pyroute2_writes:.3f} s "
        f"({pyroute2_writes / len(sample) * 1000:.2f} ms a call), batched "
        f"{batched_writes:.3f} s ({pyroute2_writes / batched_writes:.0f}x faster)"
    )
    print(
        f"encode {len(routes)} route messages: pyroute2 {pyroute2_encode:.3f} s, "
        f"struct {struct_encode:.3f} s"
    )
    print(
        f"read {dumped} routes: pyroute2 dump {pyroute2_dump:.3f} s, "
        f"raw dump + KernelRoute values {raw_dump:.3f} s"
    )


def one_round(plan: list[Phase]) -> list[tuple[Timing, Baseline]]:
    """Every phase once, in two fresh twin namespaces; checks both end in the same state."""
    rows: list[tuple[Timing, Baseline]] = []
    with (
        veth_namespace("ours") as ours,
        veth_namespace("ip") as theirs,
        NetlinkAdapter(ours) as adapter,
    ):
        for phase in plan:
            timing = agent_pass(adapter, phase.desired)
            reference = baseline_pass(theirs, phase.ip_commands)
            if not owned_count(ours) == owned_count(theirs) == len(phase.desired):
                raise SystemExit(f"{phase.name}: the twin namespaces differ")
            rows.append((timing, reference))
    return rows


def median_timing(timings: list[Timing]) -> Timing:
    return min(timings, key=lambda t: abs(t.total - statistics.median(x.total for x in timings)))


def median_baseline(baselines: list[Baseline]) -> Baseline:
    middle = statistics.median(b.total for b in baselines)
    return min(baselines, key=lambda b: abs(b.total - middle))


def run(count: int, rounds: int, with_pyroute2: bool) -> None:
    build_start = time.perf_counter()
    plan = phases(count)
    built = time.perf_counter() - build_start
    print(f"{count} routes; building every phase's desired routes: {built:.3f} s (untimed)")
    results = [one_round(plan) for _ in range(rounds)]
    print(f"median of {rounds} round(s), each in fresh namespaces")
    header = f"{'phase':<21} {'writes':>6} {'ours s':>7} {'(read':>6} {'diff':>6} {'apply)':>6}"
    print(f"{header} {'ip s':>6} {'(show':>6} {'batch)':>6} {'ours/ip':>7}")
    worst = 0.0
    for index, phase in enumerate(plan):
        timing = median_timing([rows[index][0] for rows in results])
        reference = median_baseline([rows[index][1] for rows in results])
        ratio = timing.total / reference.total
        worst = max(worst, ratio)
        print(
            f"{phase.name:<21} {timing.writes:>6} {timing.total:>7.3f} {timing.read:>6.3f}"
            f" {timing.diff:>6.3f} {timing.apply:>6.3f} {reference.total:>6.3f}"
            f" {reference.dump:>6.3f} {reference.batch:>6.3f} {ratio:>7.2f}"
        )
    print(f"worst phase: {worst:.2f}x the baseline (target: at most 2x)")
    if with_pyroute2:
        with veth_namespace("pyroute2") as netns:
            agent_pass_untimed(netns, plan[0].desired)
            why_raw(netns, plan[0].desired)


def agent_pass_untimed(netns: str, desired: Sequence[KernelRoute]) -> None:
    with NetlinkAdapter(netns) as adapter:
        agent_pass(adapter, desired)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="report the median of N rounds")
    parser.add_argument(
        "--skip-pyroute2", action="store_true", help="skip the pyroute2 comparison (~4 s)"
    )
    args = parser.parse_args(argv)
    if args.routes > 256 * 199:
        sys.exit("at most 50,944 routes (10.0.0.0/24 .. 10.198.255.0/24)")
    run(args.routes, max(1, args.rounds), with_pyroute2=not args.skip_pyroute2)


if __name__ == "__main__":
    main()
