"""Plan for 5,000 nodes in 100 sites, beside a bare ``json.load`` of the same snapshot.

Writes a synthetic cluster (bench/nodegen.py) to a temporary directory: a JSON snapshot
of realistic Node objects and the matching sites/. Two states are measured: ``fresh``
(Kilo runs, topoctl never did: every node changes) and ``steady`` (the snapshot after an
apply, with one node in ten drifted). Each command runs in a subprocess several times;
the median wall time is reported, with the peak RSS of the plan process.

The package is compiled to bytecode first, as an install does (bench/installed.py).
Run from the repository: `.venv/bin/python bench/bench_plan.py`. Prints figures only;
targets (docs/architecture.md): plan within 3x of json.load, under 1 s, under 200 MB peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.installed import compile_package
from bench.nodegen import write_cluster

TOPOCTL = Path(sys.executable).with_name("topoctl")


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float


def timed(argv: list[str], stdout: Path | None = None) -> Run:
    """Wall time and peak RSS of one child process (wait4's rusage is per child)."""
    with open(stdout or os.devnull, "wb") as sink:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=sink)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed with exit {process.returncode}")
    return Run(elapsed, usage.ru_maxrss / 1024)


def median(argv: list[str], rounds: int) -> Run:
    runs = [timed(argv) for _ in range(rounds)]
    return Run(statistics.median(r.seconds for r in runs), max(r.peak_rss_mb for r in runs))


def steady_state(topoctl: list[str], sites: Path, snapshot: Path, drift_every: int) -> None:
    """Apply the plan to the snapshot, then undo a label on every ``drift_every``-th node."""
    subprocess.run(
        [*topoctl, "apply", str(sites), "--cluster", str(snapshot), "--yes"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    doc = json.loads(snapshot.read_text())
    for item in doc["items"][::drift_every]:
        item["metadata"]["labels"].pop("topology.kubernetes.io/zone", None)
    snapshot.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


def measure(
    topoctl: list[str], label: str, sites: Path, snapshot: Path, rounds: int, out: Path
) -> None:
    load = median(
        [sys.executable, "-c", f"import json; json.load(open({str(snapshot)!r}))"], rounds
    )
    argv = [*topoctl, "plan", str(sites), "--cluster", str(snapshot), "--format", "json"]
    plan = median(argv, rounds)
    timed(argv, out)
    summary = json.loads(out.read_text())["summary"]
    print(
        f"{label:>7}: json.load {load.seconds:6.3f} s | plan {plan.seconds:6.3f} s "
        f"(target < 1 s) | ratio {plan.seconds / load.seconds:5.2f}x (target <= 3x) | "
        f"plan peak RSS {plan.peak_rss_mb:6.1f} MB (target < 200 MB) | "
        f"{summary['nodes_to_change']} nodes to change"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--topoctl",
        default=str(TOPOCTL),
        help="the command to measure (e.g. a wrapper running another checkout)",
    )
    args = parser.parse_args()
    topoctl = args.topoctl.split()
    if not Path(topoctl[0]).exists():
        raise SystemExit(f"{topoctl[0]} not found: run from the project's virtualenv")
    package = compile_package()
    work = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    try:
        sites, snapshot = write_cluster(work, args.nodes, args.sites)
        size = snapshot.stat().st_size
        print(
            f"{args.nodes} nodes in {args.sites} sites: {size / 1e6:.1f} MB of JSON "
            f"({size / args.nodes / 1024:.1f} KiB a node, compact); median of "
            f"{args.rounds} runs, wall time, each command in a fresh process; "
            f"{package} compiled to bytecode, as pip install does"
        )
        measure(topoctl, "fresh", sites, snapshot, args.rounds, work / "plan.json")
        steady_state(topoctl, sites, snapshot, drift_every=10)
        measure(topoctl, "steady", sites, snapshot, args.rounds, work / "plan.json")
        # getrusage(RUSAGE_CHILDREN) is the peak of the largest child so far.
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"largest child peak RSS (incl. apply): {children:.1f} MB")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
