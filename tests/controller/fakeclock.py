"""A fake time base shared by several clocks (one per elector, each with its own skew).

Time moves only when a test calls `advance`; `wait` blocks until it has moved far
enough or the stop event is set, and counts sleepers so a test can tell when every
loop has finished its step (`wait_for_sleepers`) before moving time on.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 3, 1, tzinfo=UTC)


class TimeBase:
    """The one fake "true" time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.cond = threading.Condition()
        self.targets: dict[int, float] = {}  # per thread in wait(): when it will wake

    def advance(self, seconds: float) -> None:
        with self.cond:
            self.now += seconds
            self.cond.notify_all()

    def wait_for_sleepers(
        self, count: int, timeout: float = 10.0, unless: threading.Thread | None = None
    ) -> None:
        """Block (real time) until `count` loops are asleep with a wake-up still ahead
        (or until the thread `unless` has ended)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.sleepers < count and not (unless is not None and not unless.is_alive()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"only {self.sleepers} of {count} loops went to sleep")
                self.cond.wait(min(left, 0.01))

    @property
    def sleepers(self) -> int:
        return sum(1 for target in self.targets.values() if target > self.now)

    def asleep(self, thread: threading.Thread) -> bool:
        """Whether ``thread`` waits on this time base with its wake-up still ahead."""
        with self.cond:
            target = self.targets.get(thread.ident or -1)
            return target is not None and target > self.now


class FakeClock:
    """One process's clocks: monotonic = base + offset, wall = EPOCH + base + wall skew."""

    def __init__(self, base: TimeBase, offset: float = 0.0, wall_skew: float = 0.0) -> None:
        self.base = base
        self.offset = offset
        self.wall_skew = wall_skew

    def monotonic(self) -> float:
        return self.base.now + self.offset

    def wall(self) -> datetime:
        return EPOCH + timedelta(seconds=self.base.now + self.wall_skew)

    def wait(self, stop: threading.Event, seconds: float) -> None:
        cond = self.base.cond
        with cond:
            target = self.base.now + seconds
            key = threading.get_ident()
            self.base.targets[key] = target
            cond.notify_all()
            try:
                while self.base.now < target and not stop.is_set():
                    cond.wait(0.01)
            finally:
                del self.base.targets[key]
                cond.notify_all()
