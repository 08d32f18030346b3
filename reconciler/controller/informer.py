"""List, then watch from the list's resourceVersion, as client-go's reflector does.

Bookmarks move the resourceVersion on without an event; a 410 Expired (the version was
compacted away) lists again and hands on only what changed meanwhile; a dropped or
failed stream reconnects from the last version seen after a capped, jittered,
exponential backoff (an empty stream counts as a failure, so a server that closes
every watch at once is never spun on). Each watch asks for a bounded, jittered
``timeoutSeconds``. Every update goes to ``on_delta`` (from this thread), marked with
whether it matters to the planner.
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


@dataclass(frozen=True)
class InformerSettings:
    """Watch timeouts and reconnect backoff, in seconds."""

    watch_timeout: float = 300.0  # each watch asks for this to 1.5x it
    backoff_base: float = 0.2
    backoff_cap: float = 30.0


@dataclass
class InformerStats:
    """Counters a metrics module reads."""

    lists: int = 0
    relists_expired: int = 0
    watch_restarts: int = 0
    watch_failures: int = 0
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
        """List and watch until ``stop`` is set."""
        failures = 0
        listed = False
        while not stop.is_set():
            try:
                if not listed:
                    self.list()
                    listed = True
                seen = self.watch_once(stop)
                self.stats.watch_restarts += 1
                failures = 0 if seen else failures + 1
            except ExpiredError as err:
                log.info("node watch expired (%s): listing again", err)
                self.stats.relists_expired += 1
                listed = False
                continue
            except BackendError as err:
                failures += 1
                self.stats.watch_failures += 1
                log.info("node list/watch failed (%s): retrying", err)
            if failures and not stop.is_set():
                self.clock.wait(stop, self._backoff(failures))
