"""The work queue of site names, as client-go's rate-limited workqueue behaves.

A key is queued at most once however often it is added; a key added while it is being
processed is queued again when :meth:`SiteQueue.done` is called, so one site is never
reconciled twice at once and no event is lost. Delayed adds serve timers (Kilo
freshness flips) and retries; a retry waits ``base * 2**failures`` capped at
``max_delay``, with jitter, until :meth:`forget` says the key succeeded - and no less
than the API asked (Retry-After, capped at ``max_delay`` too). Time comes from
an injected clock, so tests move it by hand.
"""

from __future__ import annotations

import heapq
import random
import threading
from collections.abc import Callable

from reconciler.ports import Clock

JITTER = 0.2  # a retry waits up to this much longer than its backoff


class SiteQueue:
    """Deduplicated, delayed and rate-limited keys."""

    def __init__(
        self,
        clock: Clock,
        base_delay: float = 0.05,
        max_delay: float = 60.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.clock = clock
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.rng = rng
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ready: list[str] = []
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._again: set[str] = set()
        self._later: list[tuple[float, int, str]] = []
        self._seq = 0
        self._failures: dict[str, int] = {}
        self._closed = False

    def add(self, key: str) -> None:
        """Queue ``key`` now (once)."""
        with self._lock:
            self._add(key)

    def _add(self, key: str) -> None:
        if key in self._processing:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
        self._wake.set()

    def add_after(self, key: str, delay: float) -> None:
        """Queue ``key`` once ``delay`` seconds have passed."""
        if delay <= 0:
            self.add(key)
            return
        with self._lock:
            self._seq += 1
            heapq.heappush(self._later, (self.clock.monotonic() + delay, self._seq, key))
            self._wake.set()

    def retry(self, key: str, at_least: float = 0.0) -> float:
        """Queue ``key`` again after its backoff, and ``at_least`` seconds (the API's
        Retry-After); returns the delay chosen."""
        with self._lock:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = min(self.max_delay, self.base_delay * 2.0**failures)
        delay *= 1.0 + JITTER * self.rng()
        delay = max(delay, min(at_least, self.max_delay))
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """The key succeeded: its next retry starts from the base delay."""
        with self._lock:
            self._failures.pop(key, None)

    def get(self, stop: threading.Event, max_wait: float) -> str | None:
        """The next key (marked processing), or None after ``max_wait`` s or on stop."""
        deadline = self.clock.monotonic() + max_wait
        while True:
            with self._lock:
                if stop.is_set() or self._closed:
                    return None
                self._wake.clear()
                now = self.clock.monotonic()
                while self._later and self._later[0][0] <= now:
                    self._add(heapq.heappop(self._later)[2])
                if self._ready:
                    key = self._ready.pop(0)
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                wait = deadline - now
                if self._later:
                    wait = min(wait, self._later[0][0] - now)
                if wait <= 0 and deadline <= now:
                    return None
            self.clock.wait(self._wake, max(wait, 0.0))

    def done(self, key: str) -> None:
        """Processing of ``key`` ended; queue it again if it was added meanwhile."""
        with self._lock:
            self._processing.discard(key)
            if key in self._again:
                self._again.discard(key)
                self._add(key)

    @property
    def idle(self) -> bool:
        """Nothing queued, waiting or being processed."""
        with self._lock:
            return not (self._ready or self._later or self._processing)

    def close(self) -> None:
        """Make every ``get`` return None from now on."""
        with self._lock:
            self._closed = True
            self._wake.set()
