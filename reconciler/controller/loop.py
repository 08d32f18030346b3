"""The reconcile loop of ``topoctl run``, shaped as controller-runtime's: a shared cache, a
work queue of sites, one stateless reconcile of a site.

An :class:`~reconciler.controller.informer.Informer` keeps the node cache; every update
that matters to the planner queues the sites it touches (both, for a node moving between
sites), through the shared planner (:mod:`reconciler.controller.plans`); a heartbeat
queues nothing. One worker takes a key at a time: a site is reconciled
(:mod:`reconciler.controller.reconciler`: planned once, written through the apply use
case); a full pass (a new revision, the lease won, every ``resync``) builds the planner
from the cache and queues every site, then the cluster key, which puts the sites' plans
together for what only the whole cluster shows (nothing is planned twice). A site whose
plan has errors is held back alone, one whose writes failed is retried with backoff.
Kilo's freshness flips with no event when a node stops checking in: the cache's timers
queue its sites then; a key the flap limiter held back queues its site for when it may
be written. Writes pass the GuardedWriter (lease, stop, dry run); a site ``topoctl
suspend`` covers is planned and not written (``suspended``). What each reconcile did
goes to the observer (status, metrics). :meth:`ReconcileLoop.reconcile_now`
(``topoctl reconcile``) queues a full pass and tells ``on_handled`` its request once the
pass has planned the cluster. :meth:`ReconcileLoop.request_stop` (SIGTERM) lets the
write in flight end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reconciler.controller.cache import Delta, NodeCache
from reconciler.controller.flapping import FlapLimiter
from reconciler.controller.guard import GuardedWriter
from reconciler.controller.informer import Informer, InformerSettings
from reconciler.controller.plans import Revision, SharedPlanner
from reconciler.controller.queue import SiteQueue
from reconciler.controller.reconciler import SiteReconciler
from reconciler.model.suspension import Hold
from reconciler.ports import Clock, ClusterBackend, ClusterWatcher, Observer

log = logging.getLogger("topoctl.controller")
FULL = "\x00full"  # the queue key of a full pass (no site has this name)
CLUSTER = "\x00cluster"  # the key of the cluster's part, after a full pass's sites


@dataclass(frozen=True)
class LoopSettings:
    """How the loop paces itself (seconds)."""

    resync: float = 600.0
    dry_run: bool = False
    parallel: int = 4
    idle: float = 1.0  # longest wait between looks at the lease and the timers
    retry_base: float = 0.05
    retry_cap: float = 60.0
    flap_interval: float = 10.0  # a key another writer keeps changing: once per this, ...
    flap_cap: float = 300.0  # ... doubling to this
    informer: InformerSettings = field(default_factory=InformerSettings)


@dataclass
class LoopStats:
    """Counters (the metrics read ``writer.stats`` and ``informer.stats`` beside them)."""

    site_plans: int = 0
    full_plans: int = 0  # full passes
    results: dict[str, int] = field(default_factory=dict)  # ok | held | error -> count
    conflicts_retried: int = 0
    deltas_relevant: int = 0
    deltas_ignored: int = 0
    freshness_flips: int = 0
    last_duration: float = 0.0
    last_tick: float = 0.0  # the worker's clock at its last turn (/healthz: not stuck)

    def record(self, result: str, seconds: float) -> None:
        """One reconcile's outcome."""
        self.results[result] = self.results.get(result, 0) + 1
        self.last_duration = seconds


class ReconcileLoop:
    """The controller's loop; ``run`` blocks until stopped."""

    def __init__(
        self,
        watcher: ClusterWatcher,
        cluster: ClusterBackend,
        *,
        clock: Clock,
        may_write: Callable[[], bool] = lambda: True,
        settings: LoopSettings | None = None,
        observer: Observer | None = None,
        stop: threading.Event | None = None,
        suspended: Callable[[str], Hold | None] = lambda site: None,
        on_handled: Callable[[str], None] | None = None,
    ) -> None:
        """``suspended`` names the hold that stops writes to a site; ``on_handled`` hears
        each reconcile request the full pass it queued has planned."""
        self.settings = s = settings or LoopSettings()
        self.on_handled = on_handled
        self._requested = ""  # the reconcile request the next full pass handles
        self._handling = ""  # the one the full pass under way handles
        self.clock = clock
        self.watcher = watcher
        self.may_write = may_write
        self.observer = observer
        self.stop = stop or threading.Event()
        self.stats = LoopStats()
        self.cache = NodeCache()
        self.plans = SharedPlanner(self.cache, clock)
        self.queue = SiteQueue(clock, s.retry_base, s.retry_cap)
        self.informer = Informer(watcher, self.cache, self._on_deltas, clock, s.informer)
        self.writer = GuardedWriter(
            cluster, may_write, self.stop, self._revision_sha, clock, dry_run=s.dry_run
        )
        self.flaps = FlapLimiter(clock, s.flap_interval, s.flap_cap)
        self.reconciler = SiteReconciler(
            self.plans,
            cluster,
            self.writer,
            flaps=self.flaps,
            parallel=s.parallel,
            dry_run=s.dry_run,
            suspended=suspended,
        )
        self._thread: threading.Thread | None = None

    # --- inputs ---

    def set_revision(self, revision: Revision) -> None:
        """Converge to ``revision`` from now on (a full pass follows)."""
        self.plans.set_revision(revision)
        self.queue.add(FULL)

    def plan_everything(self) -> None:
        """A full pass, now (a suspension changed: its drift shown, or its sites written)."""
        self.queue.add(FULL)

    def reconcile_now(self, request: str) -> None:
        """``topoctl reconcile``: a full pass now, ``request`` told to ``on_handled`` once
        it has planned the cluster."""
        self._requested = request
        self.queue.add(FULL)

    @property
    def revision(self) -> Revision | None:
        """The revision in force."""
        return self.plans.revision

    @property
    def ready(self) -> bool:
        """The node cache is synced and a good revision is in force (/readyz)."""
        return self.informer.synced.is_set() and self.revision is not None

    def _revision_sha(self) -> str:
        revision = self.revision
        return revision.sha if revision is not None else ""

    def request_stop(self) -> None:
        """Stop soon: the write in flight ends, no other starts, ``run`` returns."""
        self.stop.set()
        self.queue.close()
        self.watcher.close()

    def _on_deltas(self, deltas: Sequence[Delta]) -> None:
        """From the informer (and the freshness timers): queue the sites touched."""
        sites, relevant, ignored = self.plans.sites_for(deltas)
        self.stats.deltas_relevant += relevant
        self.stats.deltas_ignored += ignored
        for site in sorted(sites):
            self.queue.add(site)

    # --- the worker ---

    def run(self) -> None:
        """Watch and reconcile until :meth:`request_stop` (or the stop event)."""
        self._thread = threading.Thread(
            target=self.informer.run, args=(self.stop,), name="informer", daemon=True
        )
        self._thread.start()
        try:
            while not self.stop.is_set() and not self.informer.synced.wait(0.05):
                pass
            self._work()
        finally:
            self.request_stop()
            self._thread.join(timeout=5.0)

    def _work(self) -> None:
        resync_at = self.clock.monotonic() + self.settings.resync
        was_writer = False
        while not self.stop.is_set():
            self.stats.last_tick = self.clock.monotonic()
            flips = self.cache.flips_due(int(self.clock.wall().timestamp()))
            if flips:
                self.stats.freshness_flips += len(flips)
                self._on_deltas(flips)
            writer = self.may_write()
            if writer and not was_writer:
                self.queue.add(FULL)  # the lease won (or the first pass): everything
            was_writer = writer
            if self.clock.monotonic() >= resync_at:
                self.queue.add(FULL)
                resync_at = self.clock.monotonic() + self.settings.resync
            wait = min(self.settings.idle, resync_at - self.clock.monotonic())
            flip = self.cache.next_flip()
            if flip is not None:
                wait = min(wait, flip - self.clock.wall().timestamp())
            key = self.queue.get(self.stop, max(wait, 0.0))
            if key is not None:
                try:
                    self._process(key)
                finally:
                    self.queue.done(key)
            if self.observer is not None:
                self.observer.idle()  # the metrics on every replica; the status guards itself

    def _process(self, key: str) -> None:
        if self.revision is None or not self.may_write():
            return  # a full pass follows the revision, and the lease
        if key == FULL:
            self._full()
        elif key == CLUSTER:
            self._cluster()
        else:
            self._site(key)

    def _full(self) -> None:
        """Build the planner from the cache, then queue every site and the cluster."""
        requested = self._requested
        revision = self.plans.rebuild()
        self.queue.forget(FULL)
        if revision is None:
            return
        if requested:  # handled once this pass has planned the cluster
            self._handling = requested
            if self._requested == requested:
                self._requested = ""
        self.stats.full_plans += 1
        for site in revision.topology.sites:
            self.queue.add(site.name)
        self.queue.add(CLUSTER)

    def _cluster(self) -> None:
        """What only the whole cluster shows, from the sites' latest plans."""
        view = self.plans.view()
        if view is None:
            return
        plan = view.plan
        log.info(
            "planned revision %s: %d site(s), %d warning(s), %d error(s)",
            view.revision.sha[:12],
            len(plan.sites),
            len(plan.warnings),
            len(plan.errors),
        )
        if self.observer is not None:
            self.observer.full_planned(plan, view.planner, view.revision.sha)
        handled, self._handling = self._handling, ""
        if handled and self.on_handled is not None:
            sha = view.revision.sha[:12]
            log.info("reconcile request %s handled: revision %s planned", handled, sha)
            self.on_handled(handled)

    def _site(self, site: str) -> None:
        started = self.clock.monotonic()
        done = self.reconciler.reconcile(site)
        if done is None:
            return
        seconds = self.clock.monotonic() - started
        self.stats.site_plans += 1
        self.stats.conflicts_retried += done.conflicts_retried
        result, error = done.result, done.error
        if result == "held":
            log.warning("site %s held back: %s", site, error)
        elif result == "error" and (self.stop.is_set() or not self.may_write()):
            result, error = "ok", ""  # stopping, or no longer leading: not retried here
        elif result == "error":
            delay = self.queue.retry(site, at_least=done.retry_after)
            log.warning("site %s: %s (retry in %.1fs)", site, error, delay)
        if result != "error":
            self.queue.forget(site)
        if done.recheck_in is not None:
            self.queue.add_after(site, done.recheck_in)  # a key held back, or Kilo silent
        self.stats.record(result, seconds)
        if self.observer is not None:
            self.observer.site_planned(
                done.plan, done.planner, done.revision, error, done.writes, done.flapping
            )
            self.observer.reconciled(result, seconds)
