"""Apply against the Kubernetes API: 1,000 differing nodes, then a converged pass.

The API-server double (tests/apiserver) runs in this process on 127.0.0.1 and is
seeded with the synthetic cluster of bench/nodegen.py (realistic ~5 KB Talos/Kilo
Nodes and the matching sites/), on which topoctl never ran: every node differs.
Each round runs the path `topoctl apply --kubeconfig --yes` runs: KubeBackend.connect
on a kubeconfig, list the nodes, plan, apply_plan (re-planning through the Planner on 409s),
then the same again on the converged cluster. The double's request log gives the
request counts by verb. A last section lets a Kilo heartbeat land between topoctl's
read and its write on one node in ten, to show what conflicts cost.

Run from the repository: `.venv/bin/python bench/bench_apply.py [--nodes N]
[--sites S] [--parallel P ...] [--latency SECONDS ...] [--rounds R]`. Prints figures
only; targets (docs/architecture.md): one LIST per page and exactly N PATCH for N differing
nodes, zero writes when converged.

`--snapshot 1000,5000,10000 [--format json|yaml ...]` measures the snapshot-file
backend instead (bench/snapshot_runs.py): `topoctl plan` and `apply --cluster` in a
fresh process per run, wall time and peak RSS, and the growth against the first size
(linear: the time ratio follows the node ratio).
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and the double importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import nodegen
from reconciler.adapters.files import read_directory
from reconciler.adapters.kube import KubeBackend
from reconciler.core.loading.load import load
from reconciler.core.planning.planner import Planner
from reconciler.model.topology import Topology
from reconciler.usecases.executor import ApplyReport, apply_plan, replanner
from tests.apiserver import ApiServer
from tests.apiserver.faults import WRITE_VERBS, RequestInfo
from tests.apiserver.fixtures import write_kubeconfig

PAGE_SIZE: int = inspect.signature(KubeBackend).parameters["page_size"].default
SERVER_SET = ("resourceVersion", "uid", "creationTimestamp")
HEARTBEAT = str(nodegen.LAST_SEEN + 10)  # newer than any, within Kilo's 60 s of the rest


@dataclass(frozen=True)
class Pass:
    """One apply pass: phase timings and the requests it made, by verb."""

    list_s: float
    plan_s: float
    apply_s: float
    requests: Counter[str]
    report: ApplyReport

    @property
    def total(self) -> float:
        return self.list_s + self.plan_s + self.apply_s

    @property
    def writes(self) -> int:
        return sum(n for verb, n in self.requests.items() if verb in WRITE_VERBS)


@dataclass(frozen=True)
class Cluster:
    topology: Topology
    nodes: list[dict[str, Any]]


def synthetic_cluster(count: int, sites: int) -> Cluster:
    """nodegen's cluster, read back the way the CLI reads a sites/ directory."""
    with tempfile.TemporaryDirectory() as tmp:
        sites_dir, snapshot = nodegen.write_cluster(Path(tmp), count, sites)
        result = load(*read_directory(sites_dir))
        items = json.loads(snapshot.read_text())["items"]
    if result.topology is None:
        raise SystemExit(f"nodegen's sites are invalid: {result.diagnostics}")
    for item in items:
        for field in SERVER_SET:  # the double assigns its own, as an API server does
            item["metadata"].pop(field, None)
    return Cluster(result.topology, items)


def one_pass(backend: KubeBackend, server: ApiServer, topology: Topology, parallel: int) -> Pass:
    """What `topoctl apply --kubeconfig --yes` does, timed by phase."""
    server.log.clear()
    started = time.perf_counter()
    states = backend.list_nodes()
    listed = time.perf_counter()
    planner = Planner(topology, states)
    plan = planner.plan_all()
    planned = time.perf_counter()
    report = apply_plan(
        plan, planner.nodes, backend, backend, replanner(planner), parallel=parallel
    )
    applied = time.perf_counter()
    requests = Counter(e.verb for e in server.log.entries)
    return Pass(listed - started, planned - listed, applied - planned, requests, report)


def kilo_heartbeats(server: ApiServer, every: int) -> None:
    """On topoctl's first PATCH of every ``every``-th node, Kilo's check-in lands first."""
    names = sorted(n["metadata"]["name"] for n in server.nodes())
    chosen = set(names[::every])

    def check_in(request: RequestInfo) -> None:
        name = request.name
        if name is not None and name in chosen:
            chosen.discard(name)
            server.mutate_node(
                name,
                lambda n: n["metadata"]["annotations"].update(
                    {"kilo.squat.ai/last-seen": HEARTBEAT}
                ),
            )

    server.faults.before(check_in, times=None, method="PATCH")


def run_round(
    cluster: Cluster, parallel: int, latency: float = 0.0, heartbeat_every: int = 0
) -> tuple[Pass, Pass]:
    """A fresh cluster: a pass over differing nodes, then one over the converged cluster."""
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp:
        for node in cluster.nodes:
            server.seed_node(node)
        if latency:
            server.faults.latency(latency)
        if heartbeat_every:
            kilo_heartbeats(server, heartbeat_every)
        kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", server.url)
        backend = KubeBackend.connect(kubeconfig, parallel=parallel)
        try:
            differing = one_pass(backend, server, cluster.topology, parallel)
            converged = one_pass(backend, server, cluster.topology, parallel)
        finally:
            backend.close()
    return differing, converged


def outcome(p: Pass) -> str:
    verbs = ", ".join(f"{n} {verb.upper()}" for verb, n in sorted(p.requests.items()))
    failed = f", {len(p.report.failed)} FAILED" if p.report.failed else ""
    retried = f", {p.report.conflicts_retried} conflicts" if p.report.conflicts_retried else ""
    return f"{verbs or 'no requests'} -> {p.writes} writes{failed}{retried}"


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def table(title: str, rows: Iterable[tuple[int, list[tuple[Pass, Pass]]]]) -> None:
    print()
    print(title)
    print(f"{'parallel':>8} {'pass':>9} {'list':>7} {'plan':>7} {'apply':>7} {'total':>7}")
    for parallel, rounds in rows:
        for label, passes in (
            ("differing", [r[0] for r in rounds]),
            ("converged", [r[1] for r in rounds]),
        ):
            print(
                f"{parallel:>8} {label:>9}"
                f" {median(p.list_s for p in passes):>6.2f}s"
                f" {median(p.plan_s for p in passes):>6.2f}s"
                f" {median(p.apply_s for p in passes):>6.2f}s"
                f" {median(p.total for p in passes):>6.2f}s"
                f"  {outcome(passes[0])}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument(
        "--parallel", type=int, action="append", help="nodes written at once (repeatable)"
    )
    parser.add_argument(
        "--latency",
        type=float,
        action="append",
        help="seconds the double adds to every request (repeatable; default 0 and 0.005)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting (median)")
    parser.add_argument(
        "--snapshot", metavar="N,N,...", help="node counts for the snapshot-file bench"
    )
    parser.add_argument(
        "--format", action="append", choices=["json", "yaml"], help="snapshot formats"
    )
    args = parser.parse_args(argv)
    if args.snapshot:
        from bench import snapshot_runs

        sizes = [int(n) for n in args.snapshot.split(",")]
        snapshot_runs.main(sizes, args.sites, args.format or ["json", "yaml"])
        return
    settings: list[int] = args.parallel or [1, 4, 8]
    latencies: list[float] = args.latency or [0.0, 0.005]

    cluster = synthetic_cluster(args.nodes, args.sites)
    size = sum(len(json.dumps(n)) for n in cluster.nodes) / len(cluster.nodes)
    pages = -(-args.nodes // PAGE_SIZE)
    print(
        f"{args.nodes} nodes in {args.sites} sites (bench/nodegen.py), ~{size / 1000:.1f} KB "
        f"of JSON each; API double in this process on 127.0.0.1; median of {args.rounds}"
    )
    print(
        f"target: {pages} LIST (pages of {PAGE_SIZE}) and {args.nodes} PATCH, "
        "then 0 writes once converged"
    )
    for latency in latencies:
        why = (
            "an API server's round trip and commit: I/O-bound"
            if latency
            else "client and double share one interpreter: CPU-bound"
        )
        table(
            f"+{latency * 1000:g} ms per request ({why})",
            ((p, [run_round(cluster, p, latency) for _ in range(args.rounds)]) for p in settings),
        )
    table(
        "+0 ms, and a Kilo heartbeat lands between read and write on 1 node in 10 "
        "(409, re-read, re-plan that node)",
        ((p, [run_round(cluster, p, heartbeat_every=10)]) for p in settings),
    )


if __name__ == "__main__":
    main()
