"""``topoctl import`` of 50, 500 and 5,000 nodes, beside ``topoctl plan`` of the result.

The synthetic cluster of bench/nodegen.py is annotated as a person would have done it by
hand (``kilo.squat.ai/location`` on every node, ``leader`` on each location's first
gateway, a keepalive of ``20s`` on one node in fifty), then imported: the import reads the
snapshot, writes a file per location, and validates and plans them against the same nodes
before it writes anything, so it costs at least a plan. Each command runs in a fresh
process; the median wall time and the peak RSS are printed for each size (a location per
50 nodes), then how the cost grows: time and memory per node above the 50-node run, and
the exponent of time against nodes between sizes (1.0 is linear).

Run from the repository: `.venv/bin/python bench/bench_import.py`. Prints figures only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_plan import TOPOCTL, Run, median
from bench.installed import compile_package
from bench.nodegen import write_cluster


def annotate_by_hand(snapshot: Path) -> None:
    """Locations, a pinned leader per location, and a mistake now and then."""
    doc = json.loads(snapshot.read_text())
    pinned: set[str] = set()
    for i, item in enumerate(doc["items"]):
        meta = item["metadata"]
        site = meta["labels"]["example.com/site"]
        meta["annotations"]["kilo.squat.ai/location"] = site
        if "-gw-" in meta["name"] and site not in pinned:
            meta["annotations"]["kilo.squat.ai/leader"] = "true"
            pinned.add(site)
        if i % 50 == 0:
            meta["annotations"]["kilo.squat.ai/persistent-keepalive"] = "20s"
    snapshot.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


@dataclass(frozen=True)
class Size:
    nodes: int
    files: int
    imported: Run
    plan: Run


def measure(work: Path, nodes: int, sites: int, rounds: int) -> Size:
    directory = work / str(nodes)
    directory.mkdir()
    _, snapshot = write_cluster(directory, nodes, sites)
    annotate_by_hand(snapshot)
    out = directory / "imported"
    argv = [str(TOPOCTL), "import", "--cluster", str(snapshot), "--out", str(out), "--force"]
    imported = median(argv, rounds)
    plan = median(
        [str(TOPOCTL), "plan", str(out), "--cluster", str(snapshot), "--format", "json"],
        rounds,
    )
    return Size(nodes, len(list(out.glob("*.yaml"))), imported, plan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500, 5000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not TOPOCTL.exists():
        raise SystemExit(f"{TOPOCTL} not found: run from the project's virtualenv")
    package = compile_package()
    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        sizes = [measure(work, n, max(1, n // 50), args.rounds) for n in sorted(args.sizes)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"topoctl import, a location per 50 nodes ({package} compiled to bytecode); "
        f"median of {args.rounds} runs, each in a fresh process"
    )
    for size in sizes:
        print(
            f"{size.nodes:6,} nodes: import {size.imported.seconds:6.3f} s, peak RSS "
            f"{size.imported.peak_rss_mb:6.1f} MB, {size.files:4} files | plan of the result "
            f"{size.plan.seconds:6.3f} s, {size.plan.peak_rss_mb:6.1f} MB | import / plan "
            f"{size.imported.seconds / size.plan.seconds:4.2f}x"
        )
    base = sizes[0]
    for previous, size in itertools.pairwise(sizes):
        extra = size.nodes - base.nodes
        exponent = math.log(size.imported.seconds / previous.imported.seconds) / math.log(
            size.nodes / previous.nodes
        )
        print(
            f"{previous.nodes:,} -> {size.nodes:,} nodes: import time grows as nodes^"
            f"{exponent:.2f}; above {base.nodes} nodes "
            f"{(size.imported.seconds - base.imported.seconds) / extra * 1000:.3f} ms and "
            f"{(size.imported.peak_rss_mb - base.imported.peak_rss_mb) / extra * 1024:.1f} KB "
            f"per node"
        )


if __name__ == "__main__":
    main()
