"""The commit status of the revision in force, on the forge (``--commit-status``).

One state per revision, posted when it changes, never again for the same one:

- ``pending`` when a new revision is fetched and taken ("applying");
- ``failure`` when a fetched revision is refused (its first errors), or a site of the
  revision in force is held back by errors in its plan;
- ``success`` once every site of the revision has been planned and written without
  error (converged); a site ``topoctl suspend`` covers with drift keeps it ``pending``,
  as does a site whose writes are being retried.

Posting happens in a thread of its own, and a commit's state not posted yet gives way
to a newer one (pending then success within the same second is one post): a slow or
failing forge never holds a reconcile back. A post that fails (after the adapter's retries of
transient failures) is logged and counted (``topoctl_commit_status_failures_total``);
the next change posts again. Only the lease holder posts; ``--dry-run`` logs what it
would post.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.controller.metrics import Metrics
from reconciler.controller.source import Good, Refused
from reconciler.controller.status import drift
from reconciler.core.planning.plan import Plan, SitePlan
from reconciler.core.planning.planner import Planner
from reconciler.model.state import NodeWrite
from reconciler.model.suspension import Hold
from reconciler.ports import CommitStatuses, ForgeError

log = logging.getLogger("topoctl.commitstatus")
KEEP = 256  # commits whose last state is remembered


@dataclass(frozen=True)
class Wanted:
    """A state to post for a commit."""

    sha: str
    state: str  # pending | success | failure
    description: str


class CommitStatusReporter:
    """Hears the source (fetched, refused) and the loop (an Observer), posts in a thread."""

    def __init__(
        self,
        port: CommitStatuses,
        *,
        metrics: Metrics | None = None,
        may_write: Callable[[], bool] = lambda: True,
        dry_run: bool = False,
        suspended: Callable[[str], Hold | None] = lambda site: None,
    ) -> None:
        self.port = port
        self.metrics = metrics
        self.may_write = may_write
        self.dry_run = dry_run
        self.suspended = suspended
        self.posted: list[Wanted] = []  # what was posted, in order (the forge's answer 2xx)
        self._lock = threading.Condition()
        self._queue: OrderedDict[str, Wanted] = OrderedDict()  # sha -> latest wanted
        self._last: dict[str, str] = {}  # sha -> the state last wanted for it
        self._sites: dict[str, tuple[str, ...]] = {}  # revision -> its sites
        self._outcomes: dict[str, dict[str, tuple[str, str]]] = {}  # revision -> site ->

    # --- what happened ---

    def fetched(self, good: Good) -> None:
        """A new revision is in force: pending until it has converged (a revision that
        has a state already keeps it)."""
        with self._lock:
            if good.revision in self._last:
                return
        self._want(Wanted(good.revision, "pending", "topoctl: applying this revision"))

    def refused(self, refused: Refused) -> None:
        """A revision was refused: failure, with its first errors."""
        first = "; ".join(d.brief for d in refused.errors[:2])
        more = refused.total - min(len(refused.errors), 2)
        tail = f" (+{more} more)" if more > 0 else ""
        self._want(Wanted(refused.revision, "failure", f"topoctl refused it: {first}{tail}"))

    def site_planned(
        self,
        plan: SitePlan,
        planner: Planner,
        revision: str,
        error: str,
        writes: Sequence[NodeWrite],
        flapping: Sequence[str],
    ) -> None:
        if plan.errors:
            outcome = ("held", f"site {plan.site} held back: {plan.errors[0]}")
        elif self.suspended(plan.site) is not None and drift(plan):
            outcome = ("suspended", f"site {plan.site} suspended, {len(drift(plan))} node(s) drift")
        elif error:
            outcome = ("retrying", f"site {plan.site}: {error}")
        else:
            outcome = ("ok", "")
        with self._lock:
            self._outcomes.setdefault(revision, {})[plan.site] = outcome
        self._judge(revision)

    def full_planned(self, plan: Plan, planner: Planner, revision: str) -> None:
        with self._lock:
            self._sites = {revision: tuple(plan.sites)}  # only the revision in force counts
            self._outcomes = {revision: self._outcomes.get(revision, {})}
        self._judge(revision)

    def reconciled(self, result: str, seconds: float) -> None:
        """Nothing: the site's plan said it all."""

    def idle(self) -> None:
        """Nothing: the thread posts as soon as something is wanted."""

    def _judge(self, revision: str) -> None:
        with self._lock:
            sites = self._sites.get(revision)
            outcomes = self._outcomes.get(revision, {})
            if sites is None or any(s not in outcomes for s in sites):
                return  # not every site planned yet
            found = [outcomes[s] for s in sites]
        held = [why for kind, why in found if kind == "held"]
        waiting = [why for kind, why in found if kind in ("suspended", "retrying")]
        if held:
            self._want(Wanted(revision, "failure", f"topoctl: {held[0]}"))
        elif waiting:
            self._want(Wanted(revision, "pending", f"topoctl: {waiting[0]}"))
        else:
            self._want(Wanted(revision, "success", f"topoctl: converged ({len(sites)} site(s))"))

    def _want(self, wanted: Wanted) -> None:
        """Queue ``wanted`` unless its commit is in that state already."""
        with self._lock:
            if self._last.get(wanted.sha) == wanted.state:
                return
            self._last.pop(wanted.sha, None)
            self._last[wanted.sha] = wanted.state
            while len(self._last) > KEEP:  # the oldest commits' states are forgotten
                del self._last[next(iter(self._last))]
            self._queue.pop(wanted.sha, None)
            self._queue[wanted.sha] = wanted
            self._lock.notify_all()

    # --- posting ---

    def run(self, stop: threading.Event) -> None:
        """Post what is wanted, oldest commit first, until ``stop``."""
        while not stop.is_set():
            with self._lock:
                if not self._queue:
                    self._lock.wait(1.0)
                    continue
                _sha, wanted = self._queue.popitem(last=False)
            self._post(wanted)

    def wake(self) -> None:
        """End :meth:`run`'s wait (on stop)."""
        with self._lock:
            self._lock.notify_all()

    def _post(self, wanted: Wanted) -> None:
        what = f"{self.port.describe()} {wanted.sha[:12]}: {wanted.state}"
        if self.dry_run:
            log.info("dry run: would set the commit status %s (%s)", what, wanted.description)
            return
        if not self.may_write():
            return  # the holder posts
        try:
            self.port.post(wanted.sha, wanted.state, wanted.description)
        except ForgeError as err:
            log.warning("commit status %s not set: %s", what, err)
            if self.metrics is not None:
                self.metrics.commit_status_failures.inc()
            return
        except Exception:  # a bug: its traceback; reconciling goes on
            log.exception("commit status %s: unexpected failure", what)
            if self.metrics is not None:
                self.metrics.commit_status_failures.inc()
            return
        self.posted.append(wanted)
        log.info("commit status %s (%s)", what, wanted.description)
        if self.metrics is not None:
            self.metrics.commit_statuses.labels(wanted.state).inc()
