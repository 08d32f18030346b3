"""The real mesh (tests/mesh): start, joins and leader moves, timed on real packets.

Kilo's own agent on userspace WireGuard in network namespaces, converged by `topoctl run`
from a git repository (tests/mesh/harness.py). Root and Kilo's agent (KILO_KG) are
needed; elsewhere it says why and exits 0, so `make bench` goes on. Figures only (the
targets are in DESIGN.md), each beside the same figure for Kilo alone, with the
annotations hand-written, in the same run:

- start: 3 locations x 4 nodes with kg running everywhere and no node placed yet;
  `topoctl run` starts: seconds until every pod address answers from every other
  location. Kilo alone: nodes registered with their annotations, from the last kg
  start until the same green matrix;
- join: ``--joins`` workers join one at a time (and leave again), each timed from the
  creation of its Node: until topoctl has written its location (ms, from the request
  log) and until it answers from, and reaches, every node of every other location (s,
  pings every ~0.2 s): p50 and p99. Kilo alone: the Node is created with its location;
- leader move: a pinned leader moved by a git push (``--moves`` times, back and forth):
  the longest gap in a 20 ms ping stream between workers of two locations, through both
  leaders. Kilo alone: the leader annotation moved by hand (topoctl stopped). And the
  same git moves once persistentKeepalive is gone from every site.

Run from the repository, as root: `.venv/bin/python bench/bench_mesh.py [--joins N]
[--moves M]`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and the harness importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.installed import compile_package
from tests.mesh import topology
from tests.mesh.harness import Mesh, requirements
from tests.mesh.probe import PingStream, wait_until
from tests.mesh.spec import LocationSpec

LOCATION = "kilo.squat.ai/location"
LEADER = "kilo.squat.ai/leader"
KEEPALIVE = "kilo.squat.ai/persistent-keepalive"
SHAPE = (("fra", 2, 2), ("ams", 1, 3), ("par", 1, 3))
TIMEOUT = 120.0


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def spread(values: Sequence[float], unit: str, scale: float = 1.0) -> str:
    """p50, p99 and max of `values` (times `scale`) in `unit`."""
    scaled = [v * scale for v in values]
    digits = 0 if unit == "ms" else 2
    return (
        f"p50 {statistics.median(scaled):.{digits}f} {unit}, "
        f"p99 {percentile(scaled, 99):.{digits}f} {unit}, max {max(scaled):.{digits}f} {unit} "
        f"(n={len(scaled)})"
    )


def hand_written(locations: Sequence[LocationSpec], leader: str) -> dict[str, dict[str, str]]:
    """What a person would put in each node's machine config for Kilo alone."""
    out: dict[str, dict[str, str]] = {}
    for loc in locations:
        for node in loc.nodes:
            notes = {LOCATION: loc.name, KEEPALIVE: str(topology.KEEPALIVE)}
            if node.name == leader:
                notes[LEADER] = "true"
            out[node.name] = notes
    return out


def green_seconds(mesh: Mesh, since: float) -> float:
    """Seconds from `since` (monotonic) until the whole matrix answers."""
    mesh.wait_green(TIMEOUT, every=0.05, ping_timeout=0.2)
    return time.monotonic() - since


def bench_start(locations: list[LocationSpec]) -> None:
    files = topology.files(locations, leaders={"fra": ["fra-gw-1"]})
    with Mesh(locations, topology=files, controller=False) as mesh:
        started, wall = time.monotonic(), time.time()
        mesh.start_controller()
        with_topoctl = green_seconds(mesh, started)
        placed = [annotated_at(mesh, name) for name in mesh.nodes]
        annotated = max(t for t in placed if t is not None) - wall
    annotations = hand_written(locations, "fra-gw-1")
    with Mesh(locations, topology=files, controller=False, annotations=annotations) as mesh:
        alone = green_seconds(mesh, mesh.kilo_started_at)
    nodes = sum(len(loc.nodes) for loc in locations)
    print(
        f"start, {len(locations)} locations x {nodes // len(locations)} nodes: `topoctl run` "
        f"start -> every node annotated {annotated:.1f} s, -> every pod answers "
        f"{with_topoctl:.1f} s; Kilo alone with hand-written annotations, last kg start -> "
        f"green {alone:.1f} s"
    )


def annotated_at(mesh: Mesh, name: str) -> float | None:
    """Wall-clock time of the write that gave `name` its Kilo location (request log)."""
    for entry in mesh.api.log.entries:
        body: Any = entry.body
        if (
            entry.verb == "patch"
            and entry.name == name
            and 200 <= entry.status < 300
            and isinstance(body, dict)
            and LOCATION in ((body.get("metadata") or {}).get("annotations") or {})
        ):
            return entry.timestamp
    return None


def join_once(
    mesh: Mesh, location: str, k: int, annotations: dict[str, str] | None
) -> tuple[float | None, float]:
    """One worker joins and leaves: (s until annotated or None, s until reachable)."""
    node = mesh.add_node(topology.worker(location, k), annotations)
    wait_until(
        lambda: mesh.ping_matrix(only=node.name, timeout=0.2).green,
        TIMEOUT,
        f"{node.name} to answer from every other location",
        every=0.0,
        detail=lambda: f"{mesh.ping_matrix(only=node.name)}\n{mesh.diagnose()}",
    )
    reachable = time.time() - node.registered_at
    at = annotated_at(mesh, node.name)
    mesh.remove_node(node.name)
    return (None if at is None else at - node.registered_at), reachable


def bench_joins(mesh: Mesh, joins: int, first_k: int, alone: bool) -> int:
    """`joins` joins, rotating through the locations; the next free worker number."""
    annotated: list[float] = []
    reachable: list[float] = []
    names = list(mesh.locations)
    k = first_k
    for i in range(joins):
        location = names[i % len(names)]
        notes = {LOCATION: location, KEEPALIVE: str(topology.KEEPALIVE)} if alone else None
        took_annotation, took_reach = join_once(mesh, location, k, notes)
        k += 1
        reachable.append(took_reach)
        if took_annotation is not None:
            annotated.append(took_annotation)
    if alone:
        print(
            f"join, Kilo alone (location hand-written): created -> reachable "
            f"{spread(reachable, 's')}"
        )
    else:
        print(
            f"join through topoctl: created -> annotated {spread(annotated, 'ms', 1000)}; "
            f"created -> reachable from every other location {spread(reachable, 's')}"
        )
    return k


def move_gap(mesh: Mesh, new_leader: str, move: Callable[[], None]) -> float:
    """Longest ping gap across a move of fra's leader to `new_leader`."""
    src, dst = mesh.nodes["ams-w-1"].endpoint, mesh.nodes["fra-w-1"].endpoint
    stream = PingStream(src, dst)
    time.sleep(1.0)
    moved_at = time.time()
    move()
    wait_until(
        lambda: mesh.kilo_leaders()["fra"] == [new_leader],
        TIMEOUT,
        f"fra's leadership to move to {new_leader}",
    )
    time.sleep(3.0)  # the stream must see traffic well after the move settles
    end = time.time()
    stream.stop()
    return stream.longest_gap(moved_at - 0.5, end - 0.5)


def _by_hand(mesh: Mesh, old: str, new: str) -> Callable[[], None]:
    """The leader annotation moved by a person: added on the new node, removed from the old."""

    def move() -> None:
        mesh.api.mutate_node(new, lambda n: n["metadata"]["annotations"].update({LEADER: "true"}))
        mesh.api.mutate_node(old, lambda n: n["metadata"]["annotations"].pop(LEADER, None))

    return move


def _by_push(
    mesh: Mesh, locations: list[LocationSpec], new: str, keepalive: int | None
) -> Callable[[], None]:
    """The pinned leader changed in git and pushed (topoctl writes the annotations)."""

    def move() -> None:
        files = topology.files(locations, leaders={"fra": [new]}, keepalive=keepalive)
        mesh.push(files, f"fra: lead from {new}")

    return move


def bench_moves(
    mesh: Mesh,
    locations: list[LocationSpec],
    moves: int,
    *,
    alone: bool,
    keepalive: int | None = topology.KEEPALIVE,
) -> None:
    gaps = []
    current = mesh.kilo_leaders()["fra"][0]
    for _ in range(moves):
        target = "fra-gw-2" if current == "fra-gw-1" else "fra-gw-1"
        if alone:
            move = _by_hand(mesh, current, target)
        else:
            move = _by_push(mesh, locations, target, keepalive)
        gaps.append(move_gap(mesh, target, move))
        current = target
    how = "the leader annotation moved by hand (Kilo alone)" if alone else "a git push"
    keeping = f"persistentKeepalive {keepalive}" if keepalive else "no persistentKeepalive"
    print(f"leader move by {how}, {keeping}: longest ping gap {spread(gaps, 'ms', 1000)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--moves", type=int, default=4)
    args = parser.parse_args(argv)
    reason = requirements()
    if reason is not None:
        print(f"bench_mesh: skipped: {reason}")
        return
    compile_package()
    locations = topology.layout(*SHAPE)
    bench_start(locations)
    files = topology.files(locations, leaders={"fra": ["fra-gw-1"]})
    with Mesh(locations, topology=files) as mesh:
        mesh.wait_green(TIMEOUT)
        k = bench_joins(mesh, args.joins, 10, alone=False)
        bench_moves(mesh, locations, args.moves, alone=False)
        mesh.stop_controller()
        bench_joins(mesh, args.joins, k, alone=True)
        bench_moves(mesh, locations, args.moves, alone=True)
        # the same moves once topoctl has taken persistentKeepalive off every node
        mesh.start_controller()
        leader = mesh.kilo_leaders()["fra"][0]
        mesh.push(topology.files(locations, leaders={"fra": [leader]}, keepalive=None))
        wait_until(
            lambda: all(KEEPALIVE not in mesh.annotations(n) for n in mesh.nodes),
            TIMEOUT,
            "topoctl to remove persistent-keepalive",
        )
        bench_moves(mesh, locations, args.moves, alone=False, keepalive=None)


if __name__ == "__main__":
    main()
