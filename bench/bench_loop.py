"""The reconcile loop against the Kubernetes API: node joins, and a Kilo heartbeat storm.

The API-server double (tests/apiserver) runs in this process on 127.0.0.1, seeded with
bench/nodegen.py's cluster; the loop (reconciler.controller.loop) watches it through
the real client and converges it first. Then:

- joins: one node at a time registers (a worker its site's pool claims) and the time
  until it carries its ``kilo.squat.ai/location`` is measured (p50, p99, max);
- heartbeats: every node's ``kilo.squat.ai/last-seen`` is rewritten ``--rounds`` times,
  as Kilo does every 30 s, and the writes and plans the loop made meanwhile are counted
  (goal: none), with the loop's CPU time per event.

Run from the repository: `.venv/bin/python bench/bench_loop.py [--nodes N] [--sites S]
[--joins J] [--rounds R]`. Prints figures only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and the double importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import nodegen
from bench.bench_apply import synthetic_cluster
from tests.apiserver import ApiServer
from tests.controller.loop_support import WallClock, running_loop, wait_until


def thread_cpu(names: tuple[str, ...]) -> float:
    """CPU seconds of this process's threads with these names (Linux /proc)."""
    total = 0.0
    ticks = 100.0
    for thread in threading.enumerate():
        if thread.name not in names or thread.native_id is None:
            continue
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().split(") ")[1]
        except OSError:
            continue
        parts = fields.split()
        total += (int(parts[11]) + int(parts[12])) / ticks
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--joins", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cluster = synthetic_cluster(args.nodes, args.sites)
    server = ApiServer(bookmark_interval=1.0).start()
    for item in cluster.nodes:
        server.seed({"kind": "Node", "apiVersion": "v1", **item})
    clock = WallClock(nodegen.LAST_SEEN + 5.0)
    started = time.perf_counter()
    with running_loop(server, cluster.topology, clock) as loop:
        assert wait_until(lambda: loop.stats.full_plans == 1 and loop.queue.idle, 600)
        assert wait_until(lambda: loop.informer.version == str(server.resource_version), 600)
        assert wait_until(lambda: loop.queue.idle, 600)
        print(
            f"converged {args.nodes} nodes in {args.sites} sites: "
            f"{time.perf_counter() - started:.2f} s, "
            f"{server.log.count(verb='patch', status=200)} patches"
        )

        latencies = []
        plans, full = loop.stats.site_plans, loop.stats.full_plans
        for i in range(args.joins):
            name = f"{nodegen.site_name(i % args.sites)}-worker-{9000 + i}"
            obj = nodegen.node(i % args.sites, "worker", 9000 + i, 90000 + i)
            obj["metadata"]["name"] = name
            for key in ("resourceVersion", "uid", "creationTimestamp"):
                obj["metadata"].pop(key, None)
            obj["metadata"]["annotations"].pop("kilo.squat.ai/location", None)
            t0 = time.perf_counter()
            server.seed({"kind": "Node", "apiVersion": "v1", **obj})
            while "kilo.squat.ai/location" not in (
                (server.node(name) or {}).get("metadata", {}).get("annotations") or {}
            ):
                time.sleep(0.0005)
            latencies.append(time.perf_counter() - t0)
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        p50 = statistics.median(latencies)
        print(
            f"joins: {args.joins}, join -> annotated p50 {p50 * 1e3:.1f} ms"
            f", p99 {p99 * 1e3:.1f} ms, max {latencies[-1] * 1e3:.1f} ms; "
            f"site plans {loop.stats.site_plans - plans}, full plans {loop.stats.full_plans - full}"
        )

        assert wait_until(lambda: loop.queue.idle, 60)
        server.log.clear()
        plans, events = loop.stats.site_plans, loop.informer.stats.events
        cpu = thread_cpu(("informer", "loop"))
        count = len(server.nodes())
        t0 = time.perf_counter()
        for r in range(args.rounds):
            stamp = str(nodegen.LAST_SEEN + 1 + r)

            def beat(obj: dict[str, Any], stamp: str = stamp) -> None:
                obj["metadata"]["annotations"]["kilo.squat.ai/last-seen"] = stamp

            for node in server.nodes():
                server.mutate_node(node["metadata"]["name"], beat)
        target = events + args.rounds * count
        assert wait_until(lambda: loop.informer.stats.events >= target, 600)
        elapsed = time.perf_counter() - t0
        used = thread_cpu(("informer", "loop")) - cpu
        print(
            f"heartbeats: {args.rounds * count} events in {elapsed:.2f} s; writes "
            f"{len(server.log.writes())}, site plans {loop.stats.site_plans - plans}; "
            f"loop CPU {used:.2f} s ({used / (args.rounds * count) * 1e6:.0f} us/event)"
        )
    server.stop()


if __name__ == "__main__":
    main()
