"""One reconcile of a site, stateless: everything it needs is in the shared planner.

The site is planned once (from the planner kept in step with the node cache), its plan
kept as the site's latest, and - unless it has errors, which hold back this site alone -
written through the apply use case (resourceVersion-guarded patches, a 409 re-planned
through the same planner), each node's plan passing the flap limiter just before it is
written (:mod:`reconciler.controller.flapping`: a key another writer keeps changing
back waits); a node error (annotations that would pass 256 KiB) leaves that node out
and is reported as the site's error. What was written (and what a 409 re-read) is
folded into the planner at once. The result says what the loop does next: ``ok``
(forget the site's backoff), ``held`` (its plan has errors: nothing written),
``suspended`` (``topoctl suspend`` covers the site: planned, nothing written, the nodes
that drift from git kept for the status) or ``error`` (some writes failed: retry with
backoff); and when to look at the site again: for a key the limiter held back, or,
while the site's Kilo is silent, every :data:`SILENT_RECHECK` seconds (the check-in
that ends a silence flips no freshness, so no delta would queue the site; a suspended
site is re-planned so too, and still written nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reconciler.controller.flapping import FlapLimiter
from reconciler.controller.plans import SharedPlanner
from reconciler.core.kilo.freshness import CHECK_IN_SECONDS
from reconciler.core.planning.plan import Plan, SitePlan
from reconciler.core.planning.planner import Planner
from reconciler.model.state import NodeWrite
from reconciler.model.suspension import Hold
from reconciler.ports import ClusterReader, ClusterWriter
from reconciler.usecases.apply import write_plan

log = logging.getLogger("topoctl.reconcile")
SILENT_RECHECK = CHECK_IN_SECONDS / 3  # how often a site whose Kilo is silent is re-planned


@dataclass(frozen=True)
class Reconciled:
    """One site's reconcile: its plan, the planner it came from, and what was written."""

    plan: SitePlan
    planner: Planner
    revision: str
    result: str  # ok | held | suspended | error
    error: str = ""
    writes: Sequence[NodeWrite] = field(default_factory=tuple)  # sent, and taken
    conflicts_retried: int = 0
    retry_after: float = 0.0  # seconds the API asked to wait before writing again
    flapping: Sequence[str] = ()  # keys another writer keeps changing back
    recheck_in: float | None = None  # seconds until the site is looked at again


class SiteReconciler:
    """Reconciles one site at a time against the shared planner."""

    def __init__(
        self,
        plans: SharedPlanner,
        reader: ClusterReader,
        writer: ClusterWriter,
        *,
        flaps: FlapLimiter,
        parallel: int = 4,
        dry_run: bool = False,
        suspended: Callable[[str], Hold | None] = lambda site: None,
    ) -> None:
        """``suspended`` names the hold that stops writes to a site (None: write)."""
        self.suspended = suspended
        self.plans = plans
        self.reader = reader
        self.writer = writer
        self.flaps = flaps
        self.parallel = parallel
        self.dry_run = dry_run

    def reconcile(self, site: str) -> Reconciled | None:
        """Plan ``site`` and write its plan; None when it is not (or not yet) planned: no
        revision in force, or a site of an older one."""
        revision = self.plans.revision
        if revision is None or site not in {s.name for s in revision.topology.sites}:
            return None
        planner = self.plans.planner_for(site)
        if planner is None:
            return None  # the revision's full pass has not built the planner yet
        plan = planner.plan_site(site)
        self.plans.planned(plan)
        if plan.errors:
            error = "; ".join(plan.errors[:3])
            return self._unwritten(plan, planner, revision.sha, "held", error)
        held = "; ".join(plan.node_errors[:3])  # those nodes are left out: the rest goes ahead
        if held:
            log.warning("site %s: node(s) held back: %s", site, held)
        if not any(n.writes for n in plan.nodes):
            return self._unwritten(plan, planner, revision.sha, "ok", held)
        if self.suspended(site) is not None:  # planned and reported, never written
            return self._unwritten(plan, planner, revision.sha, "suspended", held)
        whole = Plan(
            cluster=revision.topology.cluster.metadata.name,
            nodes=plan.nodes,
            leaders=(plan.leader,) if plan.leader is not None else (),
        )
        hold = None if self.dry_run else self.flaps.hold  # a dry run writes nothing to wait
        report = write_plan(whole, planner, self.reader, self.writer, self.parallel, hold)
        if not self.dry_run:  # a dry run's "written" nodes are not the cluster's
            # what was written, and what a 409 re-read that left nothing to write
            self.plans.written(planner, [*report.states.values(), *report.reread.values()])
            for write in report.writes.values():
                self.flaps.written(site, write)
        failed = (f"{n}: {w}" for n, w in sorted(report.failed.items()))
        error = "; ".join((*([held] if held else []), *failed))
        return Reconciled(
            plan,
            planner,
            revision.sha,
            "error" if report.failed else "ok",
            error,
            tuple(report.writes.values()),
            report.conflicts_retried,
            report.retry_after,
            tuple(self.flaps.flapping(site)),
            self._recheck(plan),
        )

    def _unwritten(
        self, plan: SitePlan, planner: Planner, sha: str, result: str, error: str
    ) -> Reconciled:
        flapping = tuple(self.flaps.flapping(plan.site))
        recheck = self._recheck(plan)
        return Reconciled(plan, planner, sha, result, error, flapping=flapping, recheck_in=recheck)

    def _recheck(self, plan: SitePlan) -> float | None:
        """When to look at the site again: a key held back may be written, the keys
        reported flapping have been quiet long enough to report no more, or (its Kilo
        silent) Kilo may be heard again."""
        site = plan.site
        due = [t for t in (self.flaps.due(site), self.flaps.settles_in(site)) if t is not None]
        if plan.leader is not None and plan.leader.silent_for is not None:
            due.append(SILENT_RECHECK)
        return min(due) if due else None
