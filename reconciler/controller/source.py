"""The topology source of ``topoctl run``: poll, fetch on request, keep the last good revision.

A :class:`Source` drives a :class:`~reconciler.ports.GitSource`. Each :meth:`Source.sync`
fetches; a revision not seen before is read and loaded. A revision whose topology has
errors is refused (its revision and first errors are kept for status) and the last good
one stays in force. A source that cannot be reached keeps the last good revision too,
and is retried with capped exponential backoff with jitter (tenacity's wait strategy).
:meth:`Source.run` polls every ``poll`` seconds and fetches at once on
:meth:`Source.request_fetch` (the webhook).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from tenacity import RetryCallState, Retrying
from tenacity.wait import wait_base, wait_exponential_jitter

from reconciler.controller.metrics import Metrics
from reconciler.core.loading.load import load
from reconciler.model.diagnostics import Diagnostic, errors
from reconciler.model.topology import Topology
from reconciler.ports import Clock, GitSource, SourceUnavailableError

log = logging.getLogger("topoctl.source")
FIRST_ERRORS = 10  # errors kept (and published) for a refused revision
BACKOFF_CAP = 300.0  # seconds between attempts at most, while the source fails


def default_backoff() -> wait_base:
    """2 s, 4 s, 8 s ... plus up to 2 s of jitter, capped at five minutes."""
    return wait_exponential_jitter(multiplier=2, max=BACKOFF_CAP, jitter=2)


def backoff_delay(wait: wait_base, attempt: int) -> float:
    """The delay ``wait`` gives after ``attempt`` consecutive failures (1-based)."""
    state = RetryCallState(Retrying(), None, (), {})
    state.attempt_number = attempt
    return float(wait(state))


@dataclass(frozen=True)
class Good:
    """A revision whose topology loaded without error, and when it was taken."""

    revision: str
    topology: Topology
    taken_at: datetime


@dataclass(frozen=True)
class Refused:
    """A revision whose topology has errors: its first errors, and when it was seen."""

    revision: str
    errors: tuple[Diagnostic, ...]
    total: int
    seen_at: datetime


@dataclass(frozen=True)
class SourceState:
    """What the source knows, as one consistent value (for status, readiness, metrics)."""

    origin: str
    good: Good | None = None
    refused: Refused | None = None
    error: str | None = None  # the last fetch failure, None once a fetch succeeded
    failures: int = 0  # consecutive failed attempts
    retry_in: float = 0.0  # seconds the backoff waits before the next attempt
    fetched: str | None = None  # the revision the last successful fetch returned


class Outcome(Enum):
    """What one :meth:`Source.sync` did."""

    NEW = "new"  # a new good revision is in force
    UNCHANGED = "unchanged"  # the same revision as before (good or refused)
    REFUSED = "refused"  # a new revision with errors: the last good stays
    UNAVAILABLE = "unavailable"  # the source failed: the last good stays


class Source:
    """The last good revision of one GitSource, kept up to date."""

    def __init__(
        self,
        port: GitSource,
        clock: Clock,
        *,
        poll: float = 60.0,
        backoff: wait_base | None = None,
        metrics: Metrics | None = None,
        fallback: str | None = None,
        on_change: Callable[[Good], None] | None = None,
        on_refused: Callable[[Refused], None] | None = None,
    ) -> None:
        """``fallback`` is the revision recorded as in force (status ConfigMap): taken
        when no good revision is known yet and the newest one is refused."""
        self.port = port
        self.clock = clock
        self.poll = poll
        self.backoff = backoff or default_backoff()
        self.metrics = metrics
        self.fallback = fallback
        self.on_change = on_change
        self.on_refused = on_refused
        self._state = SourceState(origin=port.describe())
        self._lock = threading.Lock()  # one sync at a time
        self._wake = threading.Event()
        self._stopping = False
        self._after: list[Callable[[], None]] = []  # told once the next sync has ended
        self._after_lock = threading.Lock()

    @property
    def state(self) -> SourceState:
        """The current state (an immutable value)."""
        return self._state

    @property
    def good(self) -> Good | None:
        """The revision in force, if any."""
        return self._state.good

    def request_fetch(self, then: Callable[[], None] | None = None) -> None:
        """Fetch as soon as possible (the webhook calls this); requests coalesce. ``then``
        is called once a fetch that started after this request has ended, whatever it
        found (``topoctl reconcile``: plan everything then)."""
        if then is not None:
            with self._after_lock:
                self._after.append(then)
        self._wake.set()

    def stop(self) -> None:
        """Make :meth:`run` return."""
        self._stopping = True
        self._wake.set()

    def run(self) -> None:
        """Sync, then wait ``poll`` seconds (or the backoff) or a fetch request; until stop."""
        while not self._stopping:
            self._wake.clear()
            with self._after_lock:
                after, self._after = self._after, []
            try:
                self.sync()
            except Exception:  # on_change failed: the source itself is fine, keep polling
                log.exception("source %s: the change callback failed", self._state.origin)
            for then in after:
                try:
                    then()
                except Exception:  # a bug in the caller: its traceback, and polling goes on
                    log.exception("source %s: a request's callback failed", self._state.origin)
            state = self._state
            delay = state.retry_in if state.failures else self.poll
            if not self._stopping:
                self.clock.wait(self._wake, delay)

    def sync(self) -> Outcome:
        """Fetch once and take the revision if it is new and good."""
        with self._lock:
            outcome, good = self._sync()
        refused = self._state.refused
        if outcome is Outcome.REFUSED and refused is not None and self.on_refused is not None:
            self.on_refused(refused)
        if good is not None and self.on_change is not None:
            self.on_change(good)
        return outcome

    def _sync(self) -> tuple[Outcome, Good | None]:
        state = self._state
        try:
            revision = self.port.fetch()
            if revision in self._known(state):
                self._succeeded(replace(state, fetched=revision))
                return Outcome.UNCHANGED, None
            files, notes = self.port.read(revision)
        except SourceUnavailableError as err:
            return self._failed(state, str(err)), None
        except Exception as err:  # a fault in a port must not end the loop: back off
            log.error("source %s: unexpected %s", state.origin, type(err).__name__)
            return self._failed(state, f"unexpected {type(err).__name__}"), None
        result = load(files, notes)
        state = replace(state, fetched=revision)
        if result.topology is None:
            found = errors(result.diagnostics)
            state = replace(
                state,
                refused=Refused(
                    revision, tuple(found[:FIRST_ERRORS]), len(found), self.clock.wall()
                ),
            )
            log.warning(
                "revision %s refused: %d error(s), first: %s; %s",
                revision,
                len(found),
                found[0] if found else "?",
                f"{state.good.revision} stays in force" if state.good else "none in force",
            )
            if self.metrics is not None:
                self.metrics.refused()
            if state.good is None and self.fallback and self.fallback != revision:
                good = self._take_fallback(self.fallback)
                if good is not None:
                    self._succeeded(replace(state, good=good))
                    return Outcome.REFUSED, good
            self._succeeded(state)
            return Outcome.REFUSED, None
        good = Good(revision, result.topology, self.clock.wall())
        log.info("revision %s in force (%s)", revision, state.origin)
        self._succeeded(replace(state, good=good))
        return Outcome.NEW, good

    def _take_fallback(self, revision: str) -> Good | None:
        try:
            result = load(*self.port.read(revision))
        except SourceUnavailableError as err:
            log.warning("revision %s recorded in force cannot be read: %s", revision, err)
            return None
        if result.topology is None:
            log.warning("revision %s recorded in force has errors: not taken", revision)
            return None
        log.info("revision %s in force again, as recorded", revision)
        return Good(revision, result.topology, self.clock.wall())

    @staticmethod
    def _known(state: SourceState) -> set[str]:
        return {r.revision for r in (state.good, state.refused) if r is not None}

    def _succeeded(self, state: SourceState) -> None:
        self._state = replace(state, error=None, failures=0, retry_in=0.0)
        if self.metrics is not None:
            self.metrics.source_succeeded(self.clock.wall().timestamp())
            if state.good is not None:
                self.metrics.revision_in_force(state.good.revision)

    def _failed(self, state: SourceState, error: str) -> Outcome:
        failures = state.failures + 1
        delay = backoff_delay(self.backoff, failures)
        self._state = replace(state, error=error, failures=failures, retry_in=delay)
        log.warning(
            "source %s failed (%d in a row), retrying in %.1fs: %s",
            state.origin,
            failures,
            delay,
            error,
        )
        if self.metrics is not None:
            self.metrics.source_failed()
        return Outcome.UNAVAILABLE
