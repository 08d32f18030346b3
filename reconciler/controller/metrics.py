"""The controller's Prometheus metrics, in a registry of its own (never the global one).

Revisions are labelled by their full name (a commit's 40-character sha, or a
``--source-dir`` content hash). Node states are ``member``, ``pending`` and
``unassigned``, as in docs/topology.md. ``topoctl_suspended{site="*"}`` is the whole
cluster's suspension (``*`` is no site's name), ``{site="fsn1"}`` a site's, present
while it is suspended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from reconciler.model.suspension import CLUSTER, Suspension

NODE_STATES = ("member", "pending", "unassigned")
RECONCILE_RESULTS = ("success", "error", "suspended")
COMMIT_STATES = ("pending", "success", "failure")
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """Every metric ``topoctl run`` exposes, and the few updates that touch several."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.reconcile_total = Counter(
            "topoctl_reconcile", "Reconcile passes, by result.", ["result"], registry=r
        )
        self.reconcile_duration = Histogram(
            "topoctl_reconcile_duration_seconds",
            "Time one reconcile pass took (plan and writes).",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.node_writes = Counter(
            "topoctl_node_writes", "Write requests sent for Nodes.", registry=r
        )
        self.conflicts = Gauge(
            "topoctl_conflicts", "Keys whose live value topoctl may not set.", ["site"], registry=r
        )
        self.nodes = Gauge(
            "topoctl_nodes", "Nodes per site and state.", ["site", "state"], registry=r
        )
        self.revision = Info("topoctl_source_revision", "The source revision in force.", registry=r)
        self.source_last_success = Gauge(
            "topoctl_source_last_success_timestamp_seconds",
            "When the source was last read successfully (Unix time).",
            registry=r,
        )
        self.source_errors = Counter(
            "topoctl_source_errors", "Failed fetches or reads of the source.", registry=r
        )
        self.revision_refused = Counter(
            "topoctl_revision_refused", "Revisions refused for errors in them.", registry=r
        )
        self.leader = Gauge("topoctl_leader", "1 while this replica holds the lease.", registry=r)
        self.watch_restarts = Counter(
            "topoctl_watch_restarts", "Node watches started again.", registry=r
        )
        self.node_lists = Counter(
            "topoctl_node_lists",
            "Lists of every node: the first, and one after each 410 Expired or failed list.",
            registry=r,
        )
        self.watch_backoff = Gauge(
            "topoctl_watch_backoff_seconds",
            "The wait before the node watch's next request while it keeps failing (0: healthy).",
            registry=r,
        )
        self.flapping = Gauge(
            "topoctl_flapping_keys",
            "Keys another writer keeps changing back, written at most once per interval.",
            ["site"],
            registry=r,
        )
        self.agent_ready = Gauge(
            "topoctl_agent_ready", "Nodes whose agent reports TopologyReady.", ["site"], registry=r
        )
        self.node_deletions = Counter(
            "topoctl_node_deletions", "Nodes deleted by the lifecycle.", ["site"], registry=r
        )
        self.lifecycle_failures = Counter(
            "topoctl_lifecycle_pass_failures",
            "Lifecycle passes that failed and deleted nothing (the status says why).",
            registry=r,
        )
        self.deletions_withheld = Counter(
            "topoctl_node_deletions_withheld",
            "Deletions a guard rail held back, by reason.",
            ["site", "reason"],
            registry=r,
        )
        self.held_keys = Gauge(
            "topoctl_held_keys",
            "Keys left to another field manager that wrote them back after topoctl wrote "
            "git's value, by site and manager.",
            ["site", "manager"],
            registry=r,
        )
        self.http_cut = Counter(
            "topoctl_http_connections_cut",
            "HTTP connections closed by the server: past the request deadline, or over the cap.",
            ["reason"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "topoctl_webhook_deliveries",
            "Webhook deliveries, by result: accepted, duplicate (seen before), refused.",
            ["result"],
            registry=r,
        )
        self.suspended = Gauge(
            "topoctl_suspended",
            '1 while topoctl suspend stops writes: site="*" the whole cluster, else a site.',
            ["site"],
            registry=r,
        )
        self.suspended.labels(CLUSTER).set(0)
        self.drift = Gauge(
            "topoctl_suspended_drift_nodes",
            "Nodes of a suspended site that differ from git (left unwritten).",
            ["site"],
            registry=r,
        )
        self.commit_statuses = Counter(
            "topoctl_commit_statuses",
            "Commit statuses posted to the forge, by state.",
            ["state"],
            registry=r,
        )
        self.commit_status_failures = Counter(
            "topoctl_commit_status_failures",
            "Commit statuses the forge refused or did not answer after retries (logged; "
            "the next state change posts again).",
            registry=r,
        )
        for state in COMMIT_STATES:
            self.commit_statuses.labels(state)
        for reason in ("deadline", "capacity"):
            self.http_cut.labels(reason)
        for result in ("accepted", "duplicate", "refused"):
            self.webhook_deliveries.labels(result)
        for result in RECONCILE_RESULTS:
            self.reconcile_total.labels(result)
        self._sites: set[str] = set()
        self._held: dict[str, set[str]] = {}  # site -> managers with a held_keys series
        self._suspended: set[str] = set()

    # ------------------------------------------------------------- source

    def source_succeeded(self, unix_time: float) -> None:
        """The source answered (whatever the revision turned out to hold)."""
        self.source_last_success.set(unix_time)

    def source_failed(self) -> None:
        """A fetch or read failed."""
        self.source_errors.inc()

    def revision_in_force(self, revision: str) -> None:
        """``revision`` is now the one applied from."""
        self.revision.info({"revision": revision})

    def refused(self) -> None:
        """A revision was refused."""
        self.revision_refused.inc()

    # --------------------------------------------------------------- sites

    def site(
        self,
        name: str,
        states: Mapping[str, int],
        conflicts: int,
        agents_ready: int,
        flapping: int = 0,
    ) -> None:
        """One site's gauges, every node state included (absent ones as 0)."""
        self._sites.add(name)
        for state in NODE_STATES:
            self.nodes.labels(name, state).set(states.get(state, 0))
        self.conflicts.labels(name).set(conflicts)
        self.agent_ready.labels(name).set(agents_ready)
        self.flapping.labels(name).set(flapping)
        self.drift.labels(name)  # 0 until the site is suspended and drifts

    def held(self, site: str, by_manager: Mapping[str, int]) -> None:
        """The keys of a site held for each other field manager; a manager that holds
        none any more loses its series."""
        for manager in self._held.get(site, set()) - by_manager.keys():
            self.held_keys.remove(site, manager)
        for manager, count in by_manager.items():
            self.held_keys.labels(site, manager).set(count)
        self._held[site] = set(by_manager)

    def keep_sites(self, names: Iterable[str]) -> None:
        """Drop the per-site gauges of every site not in ``names`` (a site left git)."""
        keep = set(names)
        for name in self._sites - keep:
            for state in NODE_STATES:
                self.nodes.remove(name, state)
            self.conflicts.remove(name)
            self.agent_ready.remove(name)
            self.held(name, {})
            self.flapping.remove(name)
            self.drift.remove(name)
        self._sites &= keep

    # ---------------------------------------------------------- suspension

    def suspension(self, now: Suspension) -> None:
        """``topoctl_suspended``: the cluster's always, each suspended site's."""
        self.suspended.labels(CLUSTER).set(1 if now.cluster is not None else 0)
        sites = set(now.sites)
        for gone in self._suspended - sites:
            self.suspended.remove(gone)
        for name in sites:
            self.suspended.labels(name).set(1)
        self._suspended = sites
