"""Another writer that keeps putting back a key topoctl owns: rate-limited per node and key.

Someone's ``kubectl annotate`` in a loop, or another controller that rewrites a key the
moment topoctl writes it, would make the two flap at full speed: each write of one is a
watch event for the other. Here each key (an annotation, a label, or the node's taints
as one) that topoctl wrote is remembered with its value and when it was written. When
the plan wants to write the same value again - someone changed it since - the write of
that key waits until ``interval`` seconds after the last one; each further rewrite of
the same value doubles the wait, up to ``cap``. A new value (git changed) is written at
once and starts over, and so does a key left alone for ``quiet`` seconds (twice the
cap). Only the held keys wait: the node's other changes are written as usual.

This is a small mechanism of its own, under whatever else decides what to write: the
reconcile of a site passes each node plan through :meth:`FlapLimiter.hold` just before
it is written (and again after a 409's re-plan), tells :meth:`FlapLimiter.written` what
was written, and queues the site again for when the first held key may be written
(:meth:`FlapLimiter.due`). What is flapping is reported per site (:meth:`flapping`: the
status and ``topoctl_flapping_keys{site}``) until it has been quiet for ``quiet`` seconds
(:meth:`settles_in`: the site is looked at again then), and each longer wait is logged
once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

from reconciler.core.planning.plan import Change, NodePlan
from reconciler.core.planning.project import node_write
from reconciler.model.state import NodeState, NodeWrite
from reconciler.ports import Clock

log = logging.getLogger("topoctl.controller")
FLAPPING = 2  # put back this many times in a row: reported as flapping

Key = tuple[str, str]  # (annotation | label | taints, key)
Want = object  # the value a write sets: a string, None (removed), or the taint list


@dataclass(frozen=True)
class _Written:
    site: str
    want: Want
    at: float  # monotonic
    streak: int  # rewrites of this same value in a row, each within ``quiet`` of the last


def _wants(write: NodeWrite) -> Iterator[tuple[Key, Want]]:
    for key, value in write.annotations.items():
        yield ("annotation", key), value
    for key, value in write.labels.items():
        yield ("label", key), value
    if write.taints is not None:
        yield ("taints", ""), write.taints


def _key(change: Change) -> Key:
    return ("taints", "") if change.kind == "taint" else (change.kind, change.key)


class FlapLimiter:
    """See the module. Thread-safe: the executor's workers call it."""

    def __init__(self, clock: Clock, interval: float = 10.0, cap: float = 300.0) -> None:
        self.clock = clock
        self.interval = interval
        self.cap = cap
        self.quiet = 2 * cap
        self._lock = threading.Lock()
        self._written: dict[tuple[str, Key], _Written] = {}
        self._release: dict[str, float] = {}  # site -> when its first held key may go

    def _wait(self, streak: int) -> float:
        return float(min(self.cap, self.interval * 2.0**streak))

    def hold(self, plan: NodePlan, live: NodeState) -> NodePlan:
        """``plan`` without the writes of keys that must wait (see the module)."""
        if not plan.writes:
            return plan
        now = self.clock.monotonic()
        held: set[Key] = set()
        with self._lock:
            for key, want in _wants(node_write(live, plan)):
                last = self._written.get((plan.node, key))
                if last is None or last.want != want:
                    continue
                release = last.at + self._wait(last.streak)
                if now < release:
                    held.add(key)
                    self._release[plan.site] = min(release, self._release.get(plan.site, release))
        if not held:
            return plan
        kept = tuple(c for c in plan.changes if not (c.writes and _key(c) in held))
        return msgspec.structs.replace(plan, changes=kept)

    def written(self, site: str, write: NodeWrite) -> None:
        """``write`` was taken: remember each key's value, and count a rewrite of the
        same value as another writer's doing."""
        now = self.clock.monotonic()
        with self._lock:
            for key, want in _wants(write):
                last = self._written.get((write.name, key))
                streak = 0
                if last is not None and last.want == want and now - last.at < self.quiet:
                    streak = last.streak + 1
                    log.log(
                        logging.WARNING if streak >= FLAPPING else logging.INFO,
                        "node %s: another writer keeps changing %s %s (put back %d time(s) "
                        "in a row): written again no sooner than %.0fs from now",
                        write.name,
                        key[0],
                        key[1] or "(all)",
                        streak,
                        self._wait(streak),
                    )
                self._written[(write.name, key)] = _Written(site, want, now, streak)
            self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget what no longer holds anything back (a record older than ``quiet``)."""
        if len(self._written) < 1024:
            return
        for entry in [k for k, w in self._written.items() if now - w.at >= self.quiet]:
            del self._written[entry]

    def due(self, site: str) -> float | None:
        """Seconds until the first key of ``site`` held back since the last call may be
        written (None: none was)."""
        with self._lock:
            release = self._release.pop(site, None)
        return None if release is None else max(0.0, release - self.clock.monotonic())

    def settles_in(self, site: str) -> float | None:
        """Seconds until the last key of ``site`` reported flapping no longer is (its
        rewrites ``quiet`` seconds behind it); None when none is."""
        now = self.clock.monotonic()
        with self._lock:
            ends = [
                w.at + self.quiet - now
                for w in self._written.values()
                if w.site == site and w.streak >= FLAPPING and now - w.at < self.quiet
            ]
        return max(ends) if ends else None

    def flapping(self, site: str) -> list[str]:
        """The keys of ``site`` another writer keeps changing back (put back at least
        :data:`FLAPPING` times in a row), one line each."""
        now = self.clock.monotonic()
        with self._lock:
            lines = [
                f"{node}: {key[0]} {key[1] or '(all)'} (put back {w.streak} time(s) in a row; "
                f"written at most once per {self._wait(w.streak):.0f}s)"
                for (node, key), w in self._written.items()
                if w.site == site and w.streak >= FLAPPING and now - w.at < self.quiet
            ]
        return sorted(lines)
