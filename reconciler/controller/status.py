"""What the controller last did, for people and tools: the status document of the
``topoctl-status`` ConfigMap, and Node Events.

The :class:`StatusReporter` hears the loop (it is one of its observers) and the source
(a refused revision). It keeps, per site, the members, pending nodes, the leader Kilo has
and the one it is predicted to have, Talos conflicts, the last error and the agents'
TopologyReady; and for the cluster the revision in force (full sha) and when it was
applied, the last refused revision and why. It publishes when idle, at most every
``min_interval`` seconds and only when something changed (and, after the API answered
with Retry-After, not before that time), through the ConfigMap's one owner
(:class:`~reconciler.usecases.statusmap.StatusConfigMap`). The JSON stays
under 256 KiB: long lists are cut, their counts kept. Only the lease holder publishes,
and ``--dry-run`` publishes nothing. Events: ``TopologyApplied`` on each node written
(naming the revision), ``TopologyConflict`` when a node's conflicts change,
``KiloLeaderChange`` when a site's predicted leader changes.

While ``topoctl suspend`` holds (the :class:`SuspensionView`), the document says what
is suspended (``suspended``: scope -> who, when, why), each suspended site its
``drift`` (the nodes git would change, and how) and the cluster the total
(``driftNodes``); a suspended site's leader moves nowhere, so no ``KiloLeaderChange``
is recorded for it until it is resumed and written. ``lastHandledReconcileAt`` echoes
the last ``topoctl reconcile`` request handled.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.controller.events import EventRecorder, short, when
from reconciler.controller.guard import describe
from reconciler.controller.source import Refused
from reconciler.controller.suspension import SuspensionView
from reconciler.core.planning.plan import LeaderPrediction, Plan, SitePlan
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.state import NodeWrite
from reconciler.model.suspension import Suspension
from reconciler.ports import BackendError, Clock, ThrottledError
from reconciler.usecases.statusmap import HANDLED_KEY, STATUS_NAME, StatusConfigMap

log = logging.getLogger("topoctl.status")
FORMAT_VERSION = 1
SIZE_LIMIT = 256 * 1024
DOC_LIMIT = SIZE_LIMIT - 16 * 1024  # room for the other keys and the object's metadata
FLUSH_INTERVAL = 1.0  # seconds between looks at the held-back event series
KEEP = (200, 50, 10, 0)  # list lengths tried, longest first
RETRY_AFTER_CAP = 300.0  # seconds: the longest Retry-After honoured


def listing(items: Sequence[str], keep: int) -> dict[str, Any]:
    """A list as the status shows it: its count, and at most ``keep`` items."""
    return {"count": len(items), "items": list(items[:keep])}


def _conflicts(plan: SitePlan) -> list[str]:
    return [f"{c.node}: {c.kind} {c.key} ({c.why})" for n in plan.nodes for c in n.conflicts]


def _leader(leader: LeaderPrediction | None) -> dict[str, Any]:
    """Kilo's leader now and predicted; where none can be predicted, why, what keeps
    each node from leading, and the gateways the routes via the leader keep meanwhile."""
    if leader is None:
        return {"current": None, "predicted": None}
    out: dict[str, Any] = {"current": leader.current, "predicted": leader.predicted}
    if leader.unknown:
        out["unknown"] = leader.unknown
        out["notReady"] = listing(leader.not_ready, 1000)
        out["held"] = leader.held or None
    return out


def _agents(plan: SitePlan, planner: Planner) -> tuple[dict[str, int], dict[str, str]]:
    counts = {"ready": 0, "notReady": 0, "unknown": 0}
    problems: dict[str, str] = {}
    for name in plan.members:
        node = planner.nodes.get(name)
        cond = node.condition(keys.CONDITION_AGENT) if node is not None else None
        if cond is None:
            counts["unknown"] += 1
        elif cond.status == "True":
            counts["ready"] += 1
        else:
            counts["notReady"] += 1
            problems[name] = f"{cond.reason}: {cond.message}" if cond.message else cond.reason
    return counts, problems


def drift(plan: SitePlan) -> list[str]:
    """The nodes of a plan that differ from git, and how: ``w-1: set a, remove b``."""
    return [
        f"{n.node}: " + ", ".join(f"{c.verb} {c.key}" for c in n.writes)
        for n in plan.nodes
        if n.writes
    ]


def render(doc: Mapping[str, Any]) -> str:
    """The document as JSON under :data:`DOC_LIMIT` (lists cut until it fits)."""
    text = ""
    for keep in KEEP:
        text = json.dumps(_cut(doc, keep), sort_keys=True, separators=(",", ":"))
        if len(text.encode()) <= DOC_LIMIT:
            return text
    # still too large (thousands of sites): counts only
    sites = doc.get("sites") or {}
    return json.dumps(
        {**_cut({k: v for k, v in doc.items() if k != "sites"}, 0), "sitesCount": len(sites)},
        sort_keys=True,
        separators=(",", ":"),
    )


def _cut(value: Any, keep: int) -> Any:
    if isinstance(value, dict):
        if set(value) == {"count", "items"}:
            return {"count": value["count"], "items": value["items"][:keep]}
        return {k: _cut(v, keep) for k, v in value.items()}
    return value


class StatusReporter:
    """The loop's Observer that publishes the status ConfigMap and records Events."""

    def __init__(
        self,
        status: StatusConfigMap | None,
        events: EventRecorder | None,
        clock: Clock,
        *,
        status_events: EventRecorder | None = None,
        may_write: Callable[[], bool] = lambda: True,
        dry_run: bool = False,
        min_interval: float = 2.0,
        suspension: SuspensionView | None = None,
    ) -> None:
        self.suspension = suspension or SuspensionView(known=Suspension())
        self.status = status
        self.events = events
        self.status_events = status_events  # about the status ConfigMap, in its namespace
        self.clock = clock
        self.may_write = may_write
        self.dry_run = dry_run
        self.min_interval = min_interval
        self.publishes = 0
        self._lock = threading.Lock()
        self._doc: dict[str, Any] = {
            "formatVersion": FORMAT_VERSION,
            "revision": None,
            "appliedAt": None,
            "refused": None,
            "cluster": {},
            "sites": {},
        }
        self._dirty = False
        self._published_at = float("-inf")
        self._quiet_until = float("-inf")  # the API's Retry-After, on our clock
        self._flushed_at = float("-inf")
        self._leaders: dict[str, str | None] = {}
        self._conflicts: dict[str, frozenset[str]] = {}

    @property
    def document(self) -> dict[str, Any]:
        """The status as it stands (uncut)."""
        with self._lock:
            copied: dict[str, Any] = json.loads(json.dumps(self._doc))
        return copied

    def _set(self, path: tuple[str, ...], value: Any) -> None:
        target = self._doc
        for part in path[:-1]:
            target = target.setdefault(part, {})
        if target.get(path[-1]) != value:
            target[path[-1]] = value
            self._dirty = True

    # --- from the source ---

    def revision_refused(self, refused: Refused) -> None:
        """A revision was refused: the status says which and why, and a Warning Event on
        the status ConfigMap names the commit and its first errors."""
        errors = [d.brief for d in refused.errors]
        self.refused(refused.revision, errors)
        events = self.status_events if self._events() is not None else None
        if events is not None:
            left = refused.total - len(errors)
            more = f" (and {left} more)" if left > 0 else ""
            events.record(
                STATUS_NAME,
                "RevisionRefused",
                f"revision {refused.revision} not applied: {'; '.join(errors[:3])}{more}",
                warning=True,
                kind="ConfigMap",
            )

    def refused(self, revision: str, errors: Sequence[str]) -> None:
        """A revision was not applied, and why (its first errors with file:line)."""
        with self._lock:
            entry = {"revision": revision, "errors": listing(errors, 20)}
            if (self._doc.get("refused") or {}).get("revision") != revision:
                entry["at"] = when(self.clock.wall())
                self._set(("refused",), entry)

    # --- from the status ConfigMap's requests ---

    def suspension_changed(self, now: Suspension) -> None:
        """What is suspended now (the record as read); a Normal Event on the status
        ConfigMap says so."""
        with self._lock:
            self._set(("suspended",), now.as_status())
            if not now.active:
                for site in self._doc["sites"].values():
                    site.pop("drift", None)
                    site.pop("suspended", None)
                self._set(("driftNodes",), 0)
        events = self.status_events if self._events() is not None else None
        if events is not None:
            scopes = now.scopes()
            note = (
                "suspended: " + "; ".join(f"{k} {h.describe()}" for k, h in scopes.items())
                if scopes
                else "resumed: every site is written again"
            )
            events.record(
                STATUS_NAME,
                "TopologySuspended" if scopes else "TopologyResumed",
                note,
                kind="ConfigMap",
            )

    def reconcile_handled(self, request: str) -> None:
        """``topoctl reconcile``'s request, fetched and planned: echoed."""
        with self._lock:
            self._set((HANDLED_KEY,), request)

    # --- from the lifecycle ---

    def lifecycle_failed(self, why: str | None) -> None:
        """The last lifecycle pass failed and why (None: it succeeded)."""
        with self._lock:
            current = (self._doc.get("lifecycle") or {}).get("lastError")
            if why is None:
                if current is not None:
                    self._set(("lifecycle",), {"lastError": None})
            elif why != current:
                self._set(("lifecycle",), {"lastError": why, "at": when(self.clock.wall())})

    # --- from the loop ---

    def full_planned(self, plan: Plan, planner: Planner, revision: str) -> None:
        """The revision in force, and what only the whole cluster shows."""
        with self._lock:
            if self._doc["revision"] != revision:
                self._set(("revision",), revision)
                self._set(("appliedAt",), when(self.clock.wall()))
            self._set(
                ("cluster",),
                {
                    "nodes": len(planner.nodes),
                    "unassigned": listing(plan.unassigned, 1000),
                    "claimedTwice": listing(sorted(plan.claimed_twice), 1000),
                    "errors": listing(plan.errors, 50),
                    "warnings": len(plan.warnings),
                },
            )
            for gone in set(self._doc["sites"]) - set(plan.sites):
                del self._doc["sites"][gone]
                self._dirty = True

    def site_planned(
        self,
        plan: SitePlan,
        planner: Planner,
        revision: str,
        error: str,
        writes: Sequence[NodeWrite],
        flapping: Sequence[str],
    ) -> None:
        """One site's picture; Events for the writes taken, a moved leader and changed
        conflicts."""
        agents, problems = _agents(plan, planner)
        leader = plan.leader
        hold = self.suspension.covers(plan.site)
        held = {"suspended": hold.as_json(), "drift": listing(drift(plan), 1000)} if hold else {}
        with self._lock:
            self._set(
                ("sites", plan.site),
                {
                    **held,
                    "members": listing(plan.members, 1000),
                    "pending": listing(plan.pending, 1000),
                    "leader": _leader(leader),
                    "conflicts": listing(_conflicts(plan), 1000),
                    "flapping": listing(list(flapping), 1000),
                    "errors": listing(plan.errors, 1000),
                    "lastError": error or None,
                    "agents": {**agents, "problems": listing(sorted(problems), 1000)},
                },
            )
            total = sum(
                (site.get("drift") or {}).get("count", 0) for site in self._doc["sites"].values()
            )
            self._set(("driftNodes",), total)
            before = self._leaders.get(plan.site, leader.current if leader else None)
            predicted = leader.predicted if leader else None
            if leader is not None and leader.unknown:
                predicted = before  # not knowing the leader is no leader change
            if hold is None:  # a suspended site's leader moves nowhere
                self._leaders[plan.site] = predicted
            else:
                predicted = before
        events = self._events()
        if events is not None:
            for write in writes:
                events.record(
                    write.name,
                    "TopologyApplied",
                    f"revision {short(revision)} applied: {describe(write)}",
                )
        if events is not None and predicted != before and (predicted or before):
            events.record(
                predicted or before or "",
                "KiloLeaderChange",
                f"site {plan.site}: Kilo's leader is predicted to move from {before or 'none'} "
                f"to {predicted or 'none'} (revision {short(revision)})",
                node_uid=_uid(planner, predicted or before),
            )
        for node in plan.nodes:
            now = frozenset(f"{c.kind} {c.key}" for c in node.conflicts)
            if now and now != self._conflicts.get(node.node) and events is not None:
                events.record(
                    node.node,
                    "TopologyConflict",
                    "; ".join(f"{c.kind} {c.key}: {c.why}" for c in node.conflicts),
                    warning=True,
                    node_uid=node.uid,
                )
            self._conflicts[node.node] = now

    def reconciled(self, result: str, seconds: float) -> None:
        """Counted by the metrics; the status shows each site's last error instead."""

    def _events(self) -> EventRecorder | None:
        """The recorder, when events may be written now."""
        if self.events is None or self.dry_run or not self.may_write():
            return None
        return self.events

    def idle(self) -> None:
        """Publish what changed (rate-limited) and the held-back event series."""
        now = self.clock.monotonic()
        events = self._events()
        if events is not None and now - self._flushed_at >= FLUSH_INTERVAL:
            self._flushed_at = now
            events.flush()
        if (
            self._dirty
            and now - self._published_at >= self.min_interval
            and now >= self._quiet_until
        ):
            self.publish()

    def publish(self) -> bool:
        """Write the ConfigMap now if allowed and changed; True when it was written."""
        if self.status is None or self.dry_run or not self.may_write():
            return False
        with self._lock:
            doc = render(self._doc)
            revision, applied = self._doc["revision"], self._doc["appliedAt"]
            self._dirty = False
        self._published_at = self.clock.monotonic()
        try:
            written = self.status.publish(doc, revision or "", applied or "")
        except BackendError as err:
            log.info("status not published: %s", err)
            if isinstance(err, ThrottledError):
                wait = min(err.retry_after, RETRY_AFTER_CAP)
                self._quiet_until = self.clock.monotonic() + wait
            with self._lock:
                self._dirty = True
            return False
        self.publishes += written
        return written


def _uid(planner: Planner, name: str | None) -> str:
    node = planner.nodes.get(name or "")
    return node.uid if node is not None else ""
