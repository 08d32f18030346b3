"""The reconcile loop of ``topoctl run``: node events and revisions in, guarded writes out.

An :class:`~reconciler.controller.informer.Informer` keeps the node cache; every update
that matters to the planner queues the sites it touches (both, for a node moving
between sites); a heartbeat queues nothing. One worker takes a site at a time, plans
it alone through the one Planner (kept up to date by re-indexing only the nodes that
moved) and writes through the executor (``reconciler.usecases.executor``: resourceVersion guard,
409 re-plan). A new revision, the lease won and every ``resync`` plan everything. A
site whose plan has errors is held back alone, and one whose writes failed is retried
with backoff. Kilo's freshness flips with no event when a node stops checking in: the
cache's timers queue its sites then. Writes pass the GuardedWriter (lease, stop,
dry run). :meth:`ReconcileLoop.request_stop` (SIGTERM) lets the write in flight end.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.controller.cache import Delta, NodeCache
from reconciler.controller.guard import GuardedWriter
from reconciler.controller.informer import Informer, InformerSettings
from reconciler.controller.queue import SiteQueue
from reconciler.core.kilo.freshness import CHECK_IN_SECONDS
from reconciler.core.planning.plan import Plan, SitePlan
from reconciler.core.planning.planner import Planner
from reconciler.model.topology import Topology
from reconciler.ports import Clock, ClusterBackend, ClusterWatcher, Observer
from reconciler.usecases.executor import apply_plan, replanner

log = logging.getLogger("topoctl.controller")
EVERYTHING = "\x00all"  # the queue key of a full pass (no site has this name)
SILENT_RECHECK = CHECK_IN_SECONDS / 3  # how often a site whose Kilo is silent is re-planned


@dataclass(frozen=True)
class Revision:
    """A good revision to converge to: its full sha and its topology."""

    sha: str
    topology: Topology


@dataclass(frozen=True)
class LoopSettings:
    """How the loop paces itself (seconds)."""

    resync: float = 600.0
    dry_run: bool = False
    parallel: int = 4
    idle: float = 1.0  # longest wait between looks at the lease and the timers
    retry_base: float = 0.05
    retry_cap: float = 60.0
    informer: InformerSettings = field(default_factory=InformerSettings)


@dataclass
class LoopStats:
    """Counters a metrics module reads (with ``writer.stats`` and ``informer.stats``)."""

    site_plans: int = 0
    full_plans: int = 0
    results: dict[str, int] = field(default_factory=dict)  # ok | held | error -> count
    conflicts_retried: int = 0
    deltas_relevant: int = 0
    deltas_ignored: int = 0
    freshness_flips: int = 0
    last_duration: float = 0.0
    last_tick: float = 0.0  # the worker's clock at its last turn (/healthz: not stuck)
    observe: Callable[[str, float], None] | None = None  # (result, seconds) per reconcile

    def record(self, result: str, seconds: float) -> None:
        """One reconcile's outcome."""
        self.results[result] = self.results.get(result, 0) + 1
        self.last_duration = seconds
        if self.observe is not None:
            self.observe(result, seconds)


class ReconcileLoop:
    """The controller's loop; ``run`` blocks until stopped."""

    def __init__(
        self,
        watcher: ClusterWatcher,
        cluster: ClusterBackend,
        *,
        may_write: Callable[[], bool] = lambda: True,
        clock: Clock,
        settings: LoopSettings | None = None,
        observer: Observer | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings or LoopSettings()
        self.clock = clock
        self.cluster = cluster
        self.watcher = watcher
        self.may_write = may_write
        self.observer = observer
        self.stop = stop or threading.Event()
        self.stats = LoopStats()
        self.cache = NodeCache()
        s = self.settings
        self.queue = SiteQueue(self.clock, s.retry_base, s.retry_cap)
        self.informer = Informer(watcher, self.cache, self._on_deltas, self.clock, s.informer)
        self.writer = GuardedWriter(
            cluster,
            may_write,
            self.stop,
            self._revision_sha,
            dry_run=s.dry_run,
            on_written=observer.node_written if observer is not None else None,
        )
        self._lock = threading.Lock()
        self._revision: Revision | None = None
        self._planner: Planner | None = None
        self._moved: set[str] = set()  # planning-relevant changes not in the planner yet
        self._touched: set[str] = set()  # heartbeats not in the planner yet
        self._sites_of: dict[str, frozenset[str]] = {}
        self._thread: threading.Thread | None = None

    # --- inputs ---

    def set_revision(self, revision: Revision) -> None:
        """Converge to ``revision`` from now on (a full pass follows)."""
        with self._lock:
            self._revision = revision
        self.queue.add(EVERYTHING)

    @property
    def revision(self) -> Revision | None:
        """The revision in force."""
        return self._revision

    @property
    def ready(self) -> bool:
        """The node cache is synced and a good revision is in force (/readyz)."""
        return self.informer.synced.is_set() and self._revision is not None

    def _revision_sha(self) -> str:
        return self._revision.sha if self._revision is not None else ""

    def request_stop(self) -> None:
        """Stop soon: the write in flight ends, no other starts, ``run`` returns."""
        self.stop.set()
        self.queue.close()
        self.watcher.close()

    def _now(self) -> int:
        return int(self.clock.wall().timestamp())

    def _on_deltas(self, deltas: list[Delta]) -> None:
        """From the informer (and the freshness timers): queue the sites touched."""
        sites: set[str] = set()
        with self._lock:
            planner = self._planner
            for d in deltas:
                if not d.relevant:
                    self._touched.add(d.name)
                    self.stats.deltas_ignored += 1
                    continue
                self.stats.deltas_relevant += 1
                self._moved.add(d.name)
                if planner is None:
                    continue
                sites |= self._sites_of.pop(d.name, frozenset())
                if d.new is not None:
                    now = frozenset(planner.sites_touched_by(d.new))
                    self._sites_of[d.name] = now
                    sites |= now
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
            flips = self.cache.flips_due(self._now())
            if flips:
                self.stats.freshness_flips += len(flips)
                self._on_deltas(flips)
            writer = self.may_write()
            if writer and not was_writer:
                self.queue.add(EVERYTHING)  # the lease won (or the first pass): everything
            was_writer = writer
            if self.clock.monotonic() >= resync_at:
                self.queue.add(EVERYTHING)
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
            if self.observer is not None and writer:
                self.observer.idle()

    def _process(self, key: str) -> None:
        revision = self._revision
        if revision is None or not self.may_write():
            return  # a full pass follows the revision, and the lease
        started = self.clock.monotonic()
        result = self._full(revision) if key == EVERYTHING else self._site(key, revision)
        if result:
            self.stats.record(result, self.clock.monotonic() - started)

    def _planner_for(self, revision: Revision, site: str | None) -> Planner:
        """The planner for one site (only moved nodes re-indexed), or a fresh one."""
        with self._lock:
            now = self._now()
            old = self._planner
            if site is None or old is None or old.topology is not revision.topology:
                planner = Planner(revision.topology, self.cache.nodes(), now)
                self._moved.clear()
                self._touched.clear()
                self._sites_of = {
                    name: frozenset(planner.sites_touched_by(node))
                    for name, node in planner.nodes.items()
                }
            else:
                names = self._moved | {
                    n for n in self._touched if site in self._sites_of.get(n, ())
                }
                self._moved.clear()
                self._touched -= names
                fresh = [node for n in names if (node := self.cache.get(n)) is not None]
                gone = [n for n in names if self.cache.get(n) is None and n in old.nodes]
                planner = old.updated(fresh, gone, at=now)
            self._planner = planner
        return planner

    def _full(self, revision: Revision) -> str:
        planner = self._planner_for(revision, None)
        plan = planner.plan_all()
        self.stats.full_plans += 1
        log.info(
            "planned revision %s: %d node(s) to write, %d warning(s), %d error(s)",
            revision.sha[:12],
            len(plan.writes),
            len(plan.warnings),
            len(plan.errors),
        )
        if self.observer is not None:
            self.observer.full_planned(plan, planner, revision.sha)
        results = []
        for site in plan.sites:
            if self.stop.is_set():
                break
            self.stats.site_plans += 1
            results.append(self._apply_site(planner.plan_site(site), planner, revision))
        self.queue.forget(EVERYTHING)
        return next((r for r in ("error", "held") if r in results), "ok")

    def _site(self, site: str, revision: Revision) -> str:
        if site not in {s.name for s in revision.topology.sites}:
            return ""  # queued under an older revision
        planner = self._planner_for(revision, site)
        self.stats.site_plans += 1
        return self._apply_site(planner.plan_site(site), planner, revision)

    def _apply_site(self, plan: SitePlan, planner: Planner, revision: Revision) -> str:
        """Write one site's plan unless it has errors; the result's name."""
        error, result = "", "ok"
        if plan.errors:
            error, result = "; ".join(plan.errors[:3]), "held"
            log.warning("site %s held back: %s", plan.site, error)
        elif any(n.writes for n in plan.nodes):
            whole = Plan(
                cluster=revision.topology.cluster.metadata.name,
                nodes=plan.nodes,
                leaders=(plan.leader,) if plan.leader is not None else (),
            )
            report = apply_plan(
                whole,
                planner.nodes,
                self.cluster,
                self.writer,
                replanner(planner),
                self.settings.parallel,
            )
            self.stats.conflicts_retried += report.conflicts_retried
            written = self.writer.take_results()
            if written:  # plan the next round from what was written, not the stale read
                with self._lock:
                    if self._planner is planner:
                        self._planner = planner.updated(written)
            if report.failed and not self.stop.is_set() and self.may_write():
                error, result = (
                    "; ".join(f"{n}: {w}" for n, w in sorted(report.failed.items())),
                    ("error"),
                )
                delay = self.queue.retry(plan.site)
                log.warning("site %s: %s (retry in %.1fs)", plan.site, error, delay)
        if result != "error":
            self.queue.forget(plan.site)
        if plan.leader is not None and plan.leader.silent_for is not None:
            # Kilo silent here: it is heard again at a check-in that flips no freshness
            # and so queues nothing; look again until then.
            self.queue.add_after(plan.site, SILENT_RECHECK)
        if self.observer is not None:
            self.observer.site_planned(plan, planner, revision.sha, error)
        return result
