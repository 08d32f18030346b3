"""Node Events, aggregated by (node, reason) and rate-limited, as client-go's recorder.

The first event of a (node, reason) is created; a repeat within ``window`` seconds
joins its series (count and last time) and is sent at most once per ``interval`` -
the rest wait for :meth:`EventRecorder.flush`. New events draw on a token bucket
(``burst``, refilled one per ``refill`` seconds) shared by every node, so a storm of
changes cannot flood the API: what the bucket refuses is counted, not sent. After the
API answered with Retry-After, nothing is sent until that time has passed (new events
meanwhile are dropped and counted; series wait for the next flush). Events are for
people (they expire and are aggregated); nothing is decided from them.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime

from reconciler.model.records import EventRecord
from reconciler.ports import BackendError, Clock, EventSink, NotFoundError, ThrottledError

log = logging.getLogger("topoctl.events")
RETRY_AFTER_CAP = 300.0  # seconds: the longest Retry-After honoured


@dataclass
class _Series:
    name: str
    event: EventRecord
    started: float
    sent_at: float
    unsent: bool = False


@dataclass
class EventStats:
    """Counters a metrics module reads."""

    created: int = 0
    series_updates: int = 0
    dropped: int = 0
    failed: int = 0


class EventRecorder:
    """Thread-safe; every call may send at most one request."""

    def __init__(
        self,
        sink: EventSink,
        clock: Clock,
        *,
        window: float = 600.0,
        interval: float = 30.0,
        burst: int = 25,
        refill: float = 5.0,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.window = window
        self.interval = interval
        self.burst = burst
        self.refill = refill
        self.stats = EventStats()
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], _Series] = {}
        self._tokens = float(burst)
        self._filled_at = clock.monotonic()
        self._quiet_until = float("-inf")  # the API's Retry-After, on our clock

    def _failed(self, err: BackendError, what: str, now: float) -> None:
        self.stats.failed += 1
        if isinstance(err, ThrottledError):
            self._quiet_until = now + min(err.retry_after, RETRY_AFTER_CAP)
        log.info("%s: %s", what, err)

    def _take_token(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._filled_at) / self.refill)
        self._filled_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def record(
        self,
        node: str,
        reason: str,
        note: str,
        *,
        warning: bool = False,
        node_uid: str = "",
        kind: str = "Node",
    ) -> None:
        """One occurrence of ``reason`` on ``node``."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        key = (node, reason)
        with self._lock:
            series = self._series.get(key)
            if series is not None and now - series.started < self.window:
                count = series.event.count + 1
                series.event = replace(series.event, note=note, time=wall, count=count)
                series.unsent = True
                if now - series.sent_at < self.interval or now < self._quiet_until:
                    return
                self._send_series(series, now)
                return
            if now < self._quiet_until or not self._take_token(now):
                self.stats.dropped += 1
                return
            event = EventRecord(
                node,
                reason,
                note,
                wall,
                "Warning" if warning else "Normal",
                node_uid=node_uid,
                kind=kind,
            )
            try:
                name = self.sink.create(event)
            except BackendError as err:
                self._failed(err, f"event {reason} on {node} not recorded", now)
                return
            self.stats.created += 1
            self._series[key] = _Series(name, event, now, now)
            self._expire(now)

    def _send_series(self, series: _Series, now: float) -> None:
        try:
            self.sink.update_series(series.name, series.event)
        except NotFoundError:
            series.started = float("-inf")  # expired in the API: the next one starts anew
            return
        except BackendError as err:
            self._failed(err, f"event series {series.name} not updated", now)
            return
        self.stats.series_updates += 1
        series.sent_at, series.unsent = now, False

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self._series.items() if now - s.started >= self.window]:
            del self._series[key]

    def flush(self) -> None:
        """Send the series updates held back by the interval, once it has passed."""
        now = self.clock.monotonic()
        with self._lock:
            for series in list(self._series.values()):
                if now < self._quiet_until:
                    break
                if series.unsent and now - series.sent_at >= self.interval:
                    self._send_series(series, now)
            self._expire(now)


def short(sha: str) -> str:
    """The short form of a revision, for notes."""
    return sha[:12]


def when(value: datetime) -> str:
    """A time for notes and status: RFC 3339, seconds."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
