"""The shared planner: the revision in force, a Planner kept in step with the node cache,
and the latest plan of every site. Every reconcile of a site and the lifecycle read it.

The planner is built from the cache once per full pass (a new revision, the lease won,
the resync); after that only the nodes that moved are indexed again
(:meth:`~reconciler.core.planning.planner.Planner.updated`), and what a reconcile wrote
is folded in at once, ahead of the watch. A node's planning-relevant change queues the
sites it touches, before and after (a node moving between sites queues both); a Kilo
heartbeat queues nothing and is folded in when its site is next planned.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from reconciler.controller.cache import Delta, NodeCache
from reconciler.core.planning.plan import Plan, SitePlan
from reconciler.core.planning.planner import Planner
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology
from reconciler.ports import Clock


@dataclass(frozen=True)
class Revision:
    """A good revision to converge to: its full sha and its topology."""

    sha: str
    topology: Topology


@dataclass(frozen=True)
class PlannedView:
    """What the lifecycle and the cluster's status read: the revision, the planner, the
    sites' latest plans, and every node as the cache has it now."""

    revision: Revision
    planner: Planner
    site_plans: tuple[SitePlan, ...]
    nodes: dict[str, NodeState]

    @cached_property
    def plan(self) -> Plan:
        """The cluster's plan, assembled from the sites' (nothing is planned again)."""
        return self.planner.assemble(self.site_plans)


class SharedPlanner:
    """Thread-safe: the informer's thread reports deltas, the worker plans, the lifecycle
    reads."""

    def __init__(self, cache: NodeCache, clock: Clock) -> None:
        self.cache = cache
        self.clock = clock
        self.changed = threading.Event()  # set whenever a site plan is stored
        self._lock = threading.Lock()
        self._revision: Revision | None = None
        self._planner: Planner | None = None
        self._moved: set[str] = set()  # planning-relevant changes not in the planner yet
        self._touched: set[str] = set()  # heartbeats not in the planner yet
        self._sites_of: dict[str, frozenset[str]] = {}  # node -> sites it touched
        self._plans: dict[str, SitePlan] = {}

    def _now(self) -> int:
        return int(self.clock.wall().timestamp())

    @property
    def revision(self) -> Revision | None:
        """The revision in force."""
        return self._revision

    def set_revision(self, revision: Revision) -> None:
        """Converge to ``revision`` from the next full pass on."""
        with self._lock:
            self._revision = revision

    def sites_for(self, deltas: Iterable[Delta]) -> tuple[set[str], int, int]:
        """The sites the relevant deltas touch (to queue), and how many deltas were
        relevant and ignored."""
        sites: set[str] = set()
        relevant = ignored = 0
        with self._lock:
            planner = self._planner
            for d in deltas:
                if not d.relevant:
                    self._touched.add(d.name)
                    ignored += 1
                    continue
                relevant += 1
                self._moved.add(d.name)
                if planner is None:
                    continue
                sites |= self._sites_of.pop(d.name, frozenset())
                if d.new is not None:
                    now = frozenset(planner.sites_touched_by(d.new))
                    self._sites_of[d.name] = now
                    sites |= now
        return sites, relevant, ignored

    def rebuild(self) -> Revision | None:
        """A planner for the revision in force, from every node in the cache (a full
        pass); a new revision drops every site plan of the old one."""
        with self._lock:
            revision = self._revision
            if revision is None:
                return None
            planner = Planner(revision.topology, self.cache.nodes(), self._now())
            self._moved.clear()
            self._touched.clear()
            self._sites_of = {
                name: frozenset(planner.sites_touched_by(node))
                for name, node in planner.nodes.items()
            }
            if self._planner is None or self._planner.topology is not revision.topology:
                self._plans = {}  # a new revision: no plan of the old one stands
            self._planner = planner
        return revision

    def planner_for(self, site: str) -> Planner | None:
        """The planner for one site: the nodes that moved (and the site's own heartbeats)
        indexed again, or the same planner when nothing did - unless the site's Kilo was
        silent when last planned: how long it has been is judged at the clock again."""
        with self._lock:
            old = self._planner
            if old is None or self._revision is None:
                return None
            if old.topology is not self._revision.topology:
                return None  # a new revision: its full pass builds the planner
            names = self._moved | {n for n in self._touched if site in self._sites_of.get(n, ())}
            last = self._plans.get(site)
            leader = last.leader if last is not None else None
            if not names and (leader is None or leader.silent_for is None):
                return old
            self._moved.clear()
            self._touched -= names
            fresh = [node for n in names if (node := self.cache.get(n)) is not None]
            gone = [n for n in names if self.cache.get(n) is None and n in old.nodes]
            self._planner = old.updated(fresh, gone, at=self._now())
            return self._planner

    def planned(self, plan: SitePlan) -> None:
        """Keep ``plan`` as its site's latest, and say so (the lifecycle looks then)."""
        with self._lock:
            self._plans[plan.site] = plan
        self.changed.set()

    def written(self, planner: Planner, nodes: Iterable[NodeState]) -> None:
        """Fold the nodes as written into ``planner``'s successor, ahead of the watch (the
        next plan starts from what was written, not from the stale read)."""
        nodes = list(nodes)
        with self._lock:
            if nodes and self._planner is planner:
                self._planner = planner.updated(nodes)

    def view(self) -> PlannedView | None:
        """The latest site plans put together, with the cache's nodes; None before the
        first full pass."""
        with self._lock:
            revision, planner = self._revision, self._planner
            sites = revision.topology.sites if revision is not None else ()
            plans = [self._plans[s.name] for s in sites if s.name in self._plans]
        if revision is None or planner is None or planner.topology is not revision.topology:
            return None
        nodes = {n.name: n for n in self.cache.nodes()}
        return PlannedView(revision, planner, tuple(plans), nodes)
