"""A verified webhook on any replica makes the lease holder fetch at once.

The Service sends a git host's webhook to whichever replica it picks. The holder fetches
(its source coalesces requests: a flood while a fetch runs costs one more fetch). A
standby records the request in the status ConfigMap (``fetchRequestedAt``), which the
holder looks at every ``poll`` seconds, and records at most one per ``interval``: a
request within the interval after the last one recorded is recorded when the interval
ends, once however many came, so a replayed or flooded webhook costs a standby at most
one write per interval and the last push is never lost. That write is a standby's, the
one the controller sends without the lease; ``--dry-run`` sends none (each replica then
fetches itself).

The same look reads what people asked for there: every replica the suspension
(``topoctl suspend``, told to ``on_suspension``: a replica taking over knows it before
its first write), the holder ``topoctl reconcile``'s ``topoctl.io/requested-at``, told
to ``on_reconcile`` once for each new value the status does not echo as handled yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from reconciler.model.suspension import Suspension
from reconciler.ports import BackendError, Clock
from reconciler.usecases.statusmap import StatusConfigMap

log = logging.getLogger("topoctl.run")
POLL = 2.0  # seconds between the holder's looks at the ConfigMap (and a standby's flush)
INTERVAL = 5.0  # seconds: a standby records at most one request per interval


class FetchRequests:
    """One replica's side of the fetch requests."""

    def __init__(
        self,
        store: StatusConfigMap,
        fetch: Callable[[], None],
        fetches_itself: Callable[[], bool],
        clock: Clock,
        *,
        poll: float = POLL,
        interval: float = INTERVAL,
        on_suspension: Callable[[Suspension], None] | None = None,
        on_reconcile: Callable[[str], None] | None = None,
    ) -> None:
        """``fetch`` asks this replica's source to fetch; ``fetches_itself`` says whether
        it should (it holds the lease, or it is a dry run) rather than record it."""
        self.store = store
        self.fetch = fetch
        self.fetches_itself = fetches_itself
        self.clock = clock
        self.poll = poll
        self.interval = interval
        self.on_suspension = on_suspension
        self.on_reconcile = on_reconcile
        self._lock = threading.Lock()
        self._recorded_at = float("-inf")
        self._pending = False
        self._seen = ""  # the holder: the request it last fetched for
        self._reconciling = ""  # the holder: the reconcile request it last started

    def requested(self) -> None:
        """A verified webhook (from the HTTP server's thread)."""
        if self.fetches_itself():
            self.fetch()
            return
        with self._lock:
            self._pending = True
        self._flush()

    def _flush(self) -> None:
        """Record the pending request if the interval since the last one has passed."""
        with self._lock:
            now = self.clock.monotonic()
            if not self._pending or now - self._recorded_at < self.interval:
                return
            self._pending, self._recorded_at = False, now
        at = self.clock.wall().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            self.store.request_fetch(at)
        except BackendError as err:
            log.warning("webhook on a standby: the request could not be recorded: %s", err)
            with self._lock:
                self._pending = True  # the next look tries again
            return

    def _look(self, holder: bool) -> None:
        """Read the requests: the suspension (every replica); the holder fetches when a
        standby recorded a request it has not seen, and reconciles on a new request."""
        try:
            found = self.store.requests()
        except BackendError as err:
            log.warning("fetch requests: the status cannot be read: %s", err)
            return
        if self.on_suspension is not None:
            self.on_suspension(found.suspension)
        if not holder:
            return
        if found.fetch and found.fetch != self._seen:
            self._seen = found.fetch
            self.fetch()
        wanted = found.reconcile
        if wanted and wanted not in (found.handled, self._reconciling):
            self._reconciling = wanted
            log.info("reconcile requested at %s: fetching and planning now", wanted)
            if self.on_reconcile is not None:
                self.on_reconcile(wanted)

    def run(self, stop: threading.Event) -> None:
        """Every ``poll`` seconds until ``stop``: the holder looks for requests, a standby
        records the one pending."""
        while not stop.is_set():
            try:
                if self.fetches_itself():
                    self._look(holder=True)
                else:
                    self._flush()
                    if self.on_suspension is not None:
                        self._look(holder=False)
            except Exception:  # a bug: its traceback, and the next look
                log.exception("fetch requests: unexpected failure")
            self.clock.wait(stop, self.poll)
