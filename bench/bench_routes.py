"""Route convergence: the agent's path beside `ip -force -batch -` doing the same.

Two fresh network namespaces, each with a veth (v0, 192.0.2.1/24). In one,
the agent's code path converges the routes (adapter read -> core diff ->
adapter apply); in the other, `ip -batch` performs the same writes, so both
start every phase from an equivalent state. Phases on 10,000 routes
(10.x.y.0/24 via 192.0.2.2, table main): converge from empty, a no-op pass
(ip replays every replace, as a stateless script would), change 10% (500
new gateways, 500 routes swapped for new destinations) and remove all.

Run as root from the repository: `.venv/bin/python bench/bench_routes.py`.
Prints figures only; targets (DESIGN.md): converge within 2x of ip -batch,
a no-op pass under 0.5 s with zero writes.
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
from reconciler.core.routes import Route, diff_routes

PROTOCOL = 193
GATEWAY = "192.0.2.2"
NEW_GATEWAY = "192.0.2.3"


@dataclass(frozen=True)
class Phase:
    name: str
    desired: list[Route]
    ip_commands: list[str]


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


def route(dst: str, gateway: str = GATEWAY) -> Route:
    return Route.build(dst, gateway=gateway, dev="v0", protocol=PROTOCOL)


def replace_line(r: Route) -> str:
    return f"route replace {r.dst} via {r.gateway} dev v0 proto {PROTOCOL}"


def delete_line(r: Route) -> str:
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
        Phase("no-op pass", full, [replace_line(r) for r in full]),
        Phase(
            "change 10%",
            changed,
            [replace_line(r) for r in [*regateway, *added]] + [delete_line(r) for r in dropped],
        ),
        Phase("remove all", [], [delete_line(r) for r in changed]),
    ]


def agent_pass(adapter: NetlinkAdapter, desired: Sequence[Route]) -> Timing:
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


def ip_batch(netns: str, commands: list[str]) -> float:
    start = time.perf_counter()
    ip("-n", netns, "-force", "-batch", "-", stdin="\n".join(commands) + "\n")
    return time.perf_counter() - start


def owned_count(netns: str) -> int:
    with NetlinkAdapter(netns) as reader:
        return len(reader.snapshot(PROTOCOL).owned)


def why_raw(netns: str, routes: Sequence[Route]) -> None:
    """The measurements behind the adapter's raw socket: pyroute2 beside it, same work."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    from reconciler.adapters.netlink import RTM_NEWROUTE, _encode_route, _Envelope

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
        _encode_route(_Envelope(RTM_NEWROUTE, 0x605, seq, 0, 1), r, 2)
    struct_encode = time.perf_counter() - start
    with IPRoute(netns=netns, flags=0, groups=0) as ipr, NetlinkAdapter(netns) as adapter:
        start = time.perf_counter()
        dumped = len(ipr.route("dump", family=2))
        pyroute2_dump = time.perf_counter() - start
        start = time.perf_counter()
        adapter.snapshot(PROTOCOL)
        raw_dump = time.perf_counter() - start
    print(
        f"encode {len(routes)} route messages: pyroute2 {pyroute2_encode:.3f} s, "
        f"struct {struct_encode:.3f} s"
    )
    print(
        f"read {dumped} routes: pyroute2 dump {pyroute2_dump:.3f} s, "
        f"raw dump + Route values {raw_dump:.3f} s"
    )


def one_round(plan: list[Phase]) -> list[tuple[Timing, float]]:
    """Every phase once, in two fresh twin namespaces; checks both end in the same state."""
    rows: list[tuple[Timing, float]] = []
    with (
        veth_namespace("ours") as ours,
        veth_namespace("ip") as theirs,
        NetlinkAdapter(ours) as adapter,
    ):
        for phase in plan:
            timing = agent_pass(adapter, phase.desired)
            reference = ip_batch(theirs, phase.ip_commands)
            if not owned_count(ours) == owned_count(theirs) == len(phase.desired):
                raise SystemExit(f"{phase.name}: the twin namespaces differ")
            rows.append((timing, reference))
    return rows


def median_timing(timings: list[Timing]) -> Timing:
    return min(timings, key=lambda t: abs(t.total - statistics.median(x.total for x in timings)))


def run(count: int, rounds: int, with_pyroute2: bool) -> None:
    build_start = time.perf_counter()
    plan = phases(count)
    built = time.perf_counter() - build_start
    print(f"{count} routes; building every phase's desired Route values: {built:.3f} s (untimed)")
    results = [one_round(plan) for _ in range(rounds)]
    print(f"median of {rounds} round(s), each in fresh namespaces")
    header = f"{'phase':<20} {'writes':>6} {'ours s':>8} {'(read':>7} {'diff':>6} {'apply)':>7}"
    print(f"{header} {'ip -batch s':>11} {'ours/ip':>8}")
    for index, phase in enumerate(plan):
        timing = median_timing([rows[index][0] for rows in results])
        reference = statistics.median(rows[index][1] for rows in results)
        print(
            f"{phase.name:<20} {timing.writes:>6} {timing.total:>8.3f} {timing.read:>7.3f}"
            f" {timing.diff:>6.3f} {timing.apply:>7.3f} {reference:>11.3f}"
            f" {timing.total / reference:>8.2f}"
        )
    if with_pyroute2:
        with veth_namespace("pyroute2") as netns:
            agent_pass_untimed(netns, plan[0].desired)
            why_raw(netns, plan[0].desired)


def agent_pass_untimed(netns: str, desired: Sequence[Route]) -> None:
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
