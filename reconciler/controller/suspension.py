"""What this replica knows to be suspended, and the one statement of what it stops.

``topoctl suspend`` records a hold in the status ConfigMap; every replica reads it
there (at start, then every look of :mod:`reconciler.controller.fetchrequests`) and
keeps it here. A suspended scope - the whole cluster, or a site - gets no Node write,
no lifecycle deletion and no Event of a write, while its sites are still planned and
their drift (what would be written) reported. Until the record has been read once, the
replica writes nothing at all: a hold it cannot see yet is not assumed away.

Each change is logged on one line (who, when, why) and told to ``on_change`` (the loop
plans everything again, so the status shows the drift at once and a resumed scope is
written at once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from reconciler.model.suspension import CLUSTER, Hold, Suspension

log = logging.getLogger("topoctl.run")

UNKNOWN = Hold("", "", "not known yet: the status ConfigMap has not been read")


class SuspensionView:
    """Thread-safe; read by the reconciler, the lifecycle, the status and the metrics."""

    def __init__(
        self,
        on_change: Callable[[Suspension, Suspension], None] | None = None,
        *,
        known: Suspension | None = None,
    ) -> None:
        """``known``: the suspension as already read (None: not read yet, nothing goes)."""
        self.on_change = on_change
        self._lock = threading.Lock()
        self._current = known
        self.changes = 0

    @property
    def current(self) -> Suspension | None:
        """What is suspended (None: not read yet)."""
        return self._current

    def covers(self, site: str) -> Hold | None:
        """The hold that stops writes to ``site`` now, or None."""
        current = self._current
        return UNKNOWN if current is None else current.covers(site)

    def cluster(self) -> Hold | None:
        """The hold on the whole cluster (or that nothing is known yet)."""
        current = self._current
        return UNKNOWN if current is None else current.cluster

    def seen(self, now: Suspension) -> None:
        """The record as just read: logged and told when it changed."""
        with self._lock:
            before, self._current = self._current, now
        if before == now:
            return
        self.changes += 1
        was = before.scopes() if before is not None else {}
        for scope, hold in now.scopes().items():
            if was.get(scope) != hold:
                what = hold.describe()
                log.warning("suspended %s %s: nothing is written there", _name(scope), what)
        for scope in sorted(set(was) - set(now.scopes())):
            log.warning("resumed %s: written again from now on", _name(scope))
        if before is None and not now.active:
            log.info("nothing is suspended")
        if self.on_change is not None:
            self.on_change(before or Suspension(), now)


def _name(scope: str) -> str:
    return "the whole cluster" if scope == CLUSTER else f"site {scope}"
