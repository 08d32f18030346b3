"""List, then watch from the list's resourceVersion, as client-go's reflector does.

Bookmarks move the resourceVersion on without an event; a 410 Expired (the version was
compacted away) lists again and hands on only what changed meanwhile; a dropped or
failed stream reconnects from the last version seen. Each watch asks for a bounded,
jittered ``timeoutSeconds``. Every update goes to ``on_delta`` (from this thread),
marked with whether it matters to the planner.

Nothing is ever retried at once. Every failure - a 410 (answered at the start of a
watch as in a storm of them), a failed list (5xx), a dropped or refused stream, a watch
that ends at once with nothing in it - waits a capped, jittered, exponential backoff
(``backoff_base`` doubling to ``backoff_cap``, each wait between half and all of it)
before the next request, and the backoff starts over only after a healthy watch: one
that ended cleanly after bringing events (bookmarks count), or that stayed open for
``healthy_after`` seconds however it ended. So a 410 after hours of watching relists
within ``backoff_base``, and a server that expires every watch gets a relist every
``backoff_cap`` at most, never a spin.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.controller.cache import Delta, NodeCache
from reconciler.ports import BackendError, Clock, ClusterWatcher, ExpiredError

log = logging.getLogger("topoctl.informer")
WARN_AFTER = 3  # failures in a row logged as warnings from this many on


@dataclass(frozen=True)
class InformerSettings:
    """Watch timeouts and reconnect backoff, in seconds."""

    watch_timeout: float = 300.0  # each watch asks for this to 1.5x it
    backoff_base: float = 0.2
    backoff_cap: float = 30.0
    healthy_after: float = 30.0  # a watch open this long was healthy, however it ended


@dataclass
class InformerStats:
    """Counters a metrics module reads."""

    lists: int = 0
    relists_expired: int = 0
    watch_restarts: int = 0
    watch_failures: int = 0  # lists and watches that failed (410s apart)
    backoff: float = 0.0  # the wait before the next request (0 while healthy)
    events: int = 0
    bookmarks: int = 0


class Informer:
    """Keeps a NodeCache in step with the cluster."""

    def __init__(
        self,
        watcher: ClusterWatcher,
        cache: NodeCache,
        on_delta: Callable[[list[Delta]], None],
        clock: Clock,
        settings: InformerSettings | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.watcher = watcher
        self.cache = cache
        self.on_delta = on_delta
        self.clock = clock
        self.settings = settings or InformerSettings()
        self.rng = rng
        self.stats = InformerStats()
        self.synced = threading.Event()
        self.version = ""

    def _now(self) -> int:
        return int(self.clock.wall().timestamp())

    def _backoff(self, failures: int) -> float:
        s = self.settings
        return min(s.backoff_cap, s.backoff_base * 2.0 ** (failures - 1)) * (0.5 + self.rng() / 2)

    def list(self) -> None:
        """List every node; the cache takes it whole and the differences go on."""
        nodes, version = self.watcher.list_nodes_versioned()
        self.stats.lists += 1
        deltas = self.cache.replace(nodes, self._now())
        self.version = version
        self.synced.set()
        if deltas:
            self.on_delta(deltas)

    def watch_once(self, stop: threading.Event) -> int:
        """One watch from the current version; returns how many events it brought."""
        timeout = self.settings.watch_timeout * (1.0 + self.rng() / 2)
        seen = 0
        for event in self.watcher.watch_nodes(self.version, timeout):
            seen += 1
            if event.resource_version:
                self.version = event.resource_version
            if event.kind == "BOOKMARK":
                self.stats.bookmarks += 1
            elif event.node is not None:
                self.stats.events += 1
                if event.kind == "DELETED":
                    delta = self.cache.remove(event.node.name)
                else:
                    delta = self.cache.upsert(event.node, self._now())
                if delta is not None:
                    self.on_delta([delta])
            if stop.is_set():
                break
        return seen

    def run(self, stop: threading.Event) -> None:
        """List and watch until ``stop`` is set (see the module for the backoff)."""
        failures = 0
        listed = False
        while not stop.is_set():
            started = self.clock.monotonic()
            failed = True
            try:
                if not listed:
                    self.list()
                    listed = True
                seen = self.watch_once(stop)
                self.stats.watch_restarts += 1
                failed = not seen
            except ExpiredError as err:
                self.stats.relists_expired += 1
                listed = False
                why = f"node watch expired ({err}): listing again"
            except BackendError as err:
                self.stats.watch_failures += 1
                why = f"node list/watch failed ({err}): retrying"
            else:
                why = "node watch ended at once with nothing in it: watching again"
            if self.clock.monotonic() - started >= self.settings.healthy_after:
                failures = 0  # it was healthy for a while before this
            failures = failures + 1 if failed else 0
            self.stats.backoff = self._backoff(failures) if failures else 0.0
            if failures and not stop.is_set():
                level = logging.INFO if failures < WARN_AFTER else logging.WARNING
                log.log(
                    level, "%s in %.1fs (%d failure(s) in a row)", why, self.stats.backoff, failures
                )
                self.clock.wait(stop, self.stats.backoff)
