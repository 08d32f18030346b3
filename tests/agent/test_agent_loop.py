"""The agent's loop over simulated time: failures back off, changes wake it, nothing spins.

`run_forever` is given a simulated clock (the Clock port): its waits advance the time
instead of waiting, so ten minutes of a failing agent take milliseconds, and the passes
it made are counted minute by minute. Each pass is a real one (snapshot file, in-memory
kernel); a failure is the cluster refusing to hand over the Node, or the watch
breaking.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from reconciler.adapters.snapshot import SnapshotBackend
from reconciler.agent import BACKOFF_CAP, run_forever
from reconciler.model.state import NodeState
from reconciler.ports import BackendError
from reconciler.usecases.agent_pass import Agent
from tests.agent.conftest import (
    EXTERNAL_TARGET,
    NODE,
    NODE_EXTERNAL_IP,
    agent_annotation,
    fixed_clock,
    node_object,
    write_snapshot,
)
from tests.agent.fake_routes import FakeRouteTable

INTERVAL = 2.0  # seconds, as in `topoctl agent --interval 2s`
MINUTES = 10


@dataclass
class SimulatedTime:
    """A clock that moves only when the loop sleeps; it stops the loop at ``end``."""

    stop: threading.Event
    end: float = MINUTES * 60.0
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self.now >= self.end:
            self.stop.set()

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def wait(self, stop: threading.Event, seconds: float) -> None:
        self.sleep(seconds)


class Cluster(SnapshotBackend):
    """The snapshot backend, refusing the Node while ``failing`` says so; notes each pass."""

    def __init__(self, path: Path, time: SimulatedTime, failing: Iterator[bool]) -> None:
        super().__init__(path, writable=True)
        self.time = time
        self.failing = failing
        self.passes: list[float] = []  # the simulated time of each pass

    def get_node(self, name: str) -> NodeState:
        self.passes.append(self.time.now)
        if next(self.failing, True):
            raise BackendError("read node: HTTP 503: etcdserver: request timed out")
        return super().get_node(name)


@dataclass
class Watch:
    """The NodeWatch port: broken, closing at once, or waiting out its timeout."""

    time: SimulatedTime
    mode: str  # "broken" | "closes" | "quiet" | "changes"
    calls: int = 0

    def wait_for_change(self, name: str, resource_version: str, timeout: float) -> bool:
        self.calls += 1
        if self.mode == "broken":
            raise BackendError(f"watch node {name}: HTTP 403: nodes is forbidden")
        if self.mode == "changes" and self.calls <= 3:
            return True
        if self.mode in ("quiet", "changes"):
            self.time.advance(timeout)
        return False


def always(value: bool) -> Iterator[bool]:
    while True:
        yield value


def scripted(*values: bool, then: bool = True) -> Iterator[bool]:
    yield from values
    yield from always(then)


@pytest.fixture
def time() -> SimulatedTime:
    return SimulatedTime(threading.Event())


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return write_snapshot(tmp_path / "nodes.yaml", node_object(NODE, agent_annotation()))


def run(
    snapshot: Path, time: SimulatedTime, failing: Iterator[bool], watch: Watch | None = None
) -> Cluster:
    cluster = Cluster(snapshot, time, failing)
    kernel = FakeRouteTable(sources={EXTERNAL_TARGET: NODE_EXTERNAL_IP})
    agent = Agent(NODE, cluster, cluster, kernel, clock=fixed_clock)
    run_forever(agent, INTERVAL, time.stop, watch, time)
    return cluster


def gaps_between(passes: list[float]) -> list[float]:
    """Seconds between one pass and the next (rounded: simulated time adds floats)."""
    return [round(b - a, 6) for a, b in pairwise(passes)]


def per_minute(passes: list[float]) -> list[int]:
    counts = Counter(int(t // 60) for t in passes)
    return [counts.get(minute, 0) for minute in range(MINUTES)]


def test_a_persistent_failure_backs_off_to_about_one_pass_a_minute(
    snapshot: Path, time: SimulatedTime
) -> None:
    cluster = run(snapshot, time, always(True))

    minutes = per_minute(cluster.passes)
    assert minutes[0] <= 6  # 2, 4, 8, 16, 32 s apart (plus jitter), then the cap
    assert all(count <= 2 for count in minutes[2:]), minutes
    assert len(cluster.passes) <= 16, minutes  # main spun ~1,300 passes in 10 s
    gaps = gaps_between(cluster.passes)
    assert all(INTERVAL <= gap <= BACKOFF_CAP + INTERVAL for gap in gaps), gaps
    for n, gap in enumerate(gaps[:5]):  # doubling from the interval, plus the jitter
        assert INTERVAL * 2**n <= gap <= INTERVAL * 2**n + INTERVAL
    assert all(gap >= BACKOFF_CAP for gap in gaps[5:])  # then the cap


def test_success_resets_the_backoff(snapshot: Path, time: SimulatedTime) -> None:
    cluster = run(snapshot, time, scripted(*[True] * 7, False, True, then=True))

    gaps = gaps_between(cluster.passes)
    assert gaps[5] >= BACKOFF_CAP  # the sixth failure waited the longest
    # the success waits its interval; the next failure starts again from the interval
    assert gaps[7] == INTERVAL
    assert INTERVAL <= gaps[8] <= 2 * INTERVAL
    assert 2 * INTERVAL <= gaps[9] <= 3 * INTERVAL


def test_a_broken_watch_backs_off_too(snapshot: Path, time: SimulatedTime) -> None:
    watch = Watch(time, "broken")

    cluster = run(snapshot, time, always(False), watch)

    assert all(count <= 2 for count in per_minute(cluster.passes)[2:])
    assert len(cluster.passes) <= 16
    assert watch.calls == len(cluster.passes)


def test_a_watch_that_ends_at_once_never_shortens_the_interval(
    snapshot: Path, time: SimulatedTime
) -> None:
    cluster = run(snapshot, time, always(False), Watch(time, "closes"))

    gaps = gaps_between(cluster.passes)
    assert gaps and all(gap == INTERVAL for gap in gaps)
    assert len(cluster.passes) == MINUTES * 60 / INTERVAL


def test_a_change_of_the_node_wakes_the_agent_at_once(snapshot: Path, time: SimulatedTime) -> None:
    cluster = run(snapshot, time, always(False), Watch(time, "changes"))

    assert cluster.passes[:4] == [0.0, 0.0, 0.0, 0.0]  # three changes: three passes at once
    assert cluster.passes[4] == INTERVAL  # then a quiet watch waits out its timeout


def test_stopping_ends_a_failing_loop(snapshot: Path, time: SimulatedTime) -> None:
    time.end = 1.0

    cluster = run(snapshot, time, always(True))

    assert time.stop.is_set()
    assert len(cluster.passes) <= 2


def test_the_snapshot_file_as_a_node_watch(snapshot: Path) -> None:
    """A file sends no events: a node already moved is a change, else the wait times out."""
    backend = SnapshotBackend(snapshot, writable=True)
    version = backend.get_node(NODE).resource_version

    assert backend.wait_for_change(NODE, version, timeout=0) is False
    assert backend.wait_for_change(NODE, "an older version", timeout=0) is True
