"""Snapshot-file plan and apply, each in a fresh ``topoctl`` process: time and peak RSS.

Used by ``bench/bench_apply.py --snapshot``. Every size gets nodegen's cluster (every node
differs from the topology) as a compact JSON snapshot and as block YAML; each run copies
the file, runs ``topoctl plan --cluster`` then ``topoctl apply --cluster --yes`` as a
subprocess, and samples the child's own peak RSS (VmHWM in /proc) until it exits:
``wait4``'s ru_maxrss would count the bench's own memory, which a forked child inherits.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from bench import nodegen
from bench.installed import compile_package

TOPOCTL = Path(sys.executable).with_name("topoctl")


def run(args: Sequence[str | Path]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one topoctl process; it must succeed."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [str(TOPOCTL), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak = 0
    while child.poll() is None:
        peak = max(peak, _high_water(child.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    err = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"topoctl {' '.join(map(str, args))}: exit {child.returncode}: {err}")
    return elapsed, peak / 1024


def _high_water(pid: int) -> int:
    """The process's peak resident set so far, in kB (0 once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def write_yaml(snapshot: Path) -> Path:
    """The same nodes as ``kubectl get nodes -o yaml`` prints them."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path = snapshot.with_suffix(".yaml")
    with path.open("w") as out:
        yaml.dump(json.loads(snapshot.read_text()), out, Dumper=dumper, sort_keys=False)
    return path


def main(sizes: Sequence[int], sites: int, formats: Sequence[str]) -> None:
    """One table row per size and format; ratios are against the smallest size."""
    compile_package()
    print(f"snapshot files, {TOPOCTL} per run (every node differs; wall time, peak RSS)")
    print(
        f"{'nodes':>6} {'fmt':>4} {'MB':>6} {'plan':>8} {'RSS':>7} {'apply':>8} {'RSS':>7}"
        f" {'plan x':>7} {'apply x':>8} {'nodes x':>7}"
    )
    first: dict[str, tuple[int, float, float]] = {}
    for count in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            sites_dir, snapshot = nodegen.write_cluster(Path(tmp), count, sites)
            files = {"json": snapshot}
            if "yaml" in formats:
                files["yaml"] = write_yaml(snapshot)
            for fmt in formats:
                source = files[fmt]
                copy = source.with_name(f"run-{source.name}")
                shutil.copyfile(source, copy)
                size = copy.stat().st_size / 1e6
                plan_s, plan_mb = run(["plan", sites_dir, "--cluster", copy])
                apply_s, apply_mb = run(["apply", sites_dir, "--cluster", copy, "--yes"])
                base = first.setdefault(fmt, (count, plan_s, apply_s))
                print(
                    f"{count:>6} {fmt:>4} {size:>6.1f} {plan_s:>7.2f}s {plan_mb:>6.0f}M"
                    f" {apply_s:>7.2f}s {apply_mb:>6.0f}M {plan_s / base[1]:>6.1f}x"
                    f" {apply_s / base[2]:>7.1f}x {count / base[0]:>6.1f}x",
                    flush=True,
                )
