"""Kilo's freshness, the time it is judged at, and when a location's Kilo has gone silent.

Three rules, each stated here once; the planner's view of Kilo (:func:`~.node.kilo_node`),
the controller's cache timers and the 409 re-plan's heartbeat check all ask them.

- **Fresh.** A node counts as Ready to Kilo only while its ``kilo.squat.ai/last-seen``
  check-in is younger than two check-in periods (squat/kilo pkg/mesh/backend.go,
  ``(*Node).Ready``: ``now - LastSeen < 60 s``, each agent with its own clock;
  docs/domain.md). A ``last-seen`` in the future is fresh, as Kilo's subtraction makes it.
- **Now.** Freshness is judged at the planner's own clock: the controller's, or the
  machine's where ``plan``/``apply`` read a live cluster. Offline it is the capture time
  ``topoctl snapshot`` records, else the median of the nodes' ``last-seen`` values
  (:func:`reference`). Never the newest ``last-seen``: that let one node whose clock runs
  ahead, or one forged value, make every other node stale. A node's ``last-seen`` says
  only whether that node is fresh.
- **Kilo silent.** Each Kilo agent checks in on its own 30 s phase, so when a location's
  agents all stop (killed, rolling, cut off from the API server) their check-ins run out
  one at a time, and Kilo's rule read at face value would move the leader from node to
  node before finding none. So a location none of whose nodes has checked in for 25 s
  (a check-in period, less 5 s for clocks a little apart) is *silent* (:func:`silence`),
  and a check-in that ran out after that is no evidence of who leads: the leader is
  unknown until Kilo is heard again, and what topoctl published stands. A leader that
  stops checking in while the others go on is a leader change, as Kilo sees it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.model import keys
from reconciler.model.state import NodeState

CHECK_IN_SECONDS = 30  # Kilo's check-in period: each agent renews its last-seen this often
KILO_READY_SECONDS = 2 * CHECK_IN_SECONDS  # Kilo: last-seen within two check-in periods


def last_seen(node: NodeState) -> int | None:
    """Kilo's ``last-seen`` (unix seconds), if it is a number."""
    value = node.annotations.get(keys.KILO_LAST_SEEN)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def fresh_until(node: NodeState) -> int | None:
    """The unix second from which Kilo no longer counts the node's check-in (None: never
    checked in). The node is fresh while ``now < fresh_until``."""
    seen = last_seen(node)
    return seen + KILO_READY_SECONDS if seen is not None else None


def is_fresh(node: NodeState, now: int) -> bool:
    """Whether Kilo counts the node's check-in as recent at ``now`` (unix seconds)."""
    until = fresh_until(node)
    return until is not None and now < until


# --- now ---------------------------------------------------------------------------


class TimeSource(enum.Enum):
    """Where the time a plan judges Kilo's freshness at came from."""

    CLOCK = "clock"  # the planner's own clock: the controller's, or this machine's
    CAPTURED = "captured"  # the capture time `topoctl snapshot` recorded in the file
    MEDIAN = "median"  # the median last-seen of the nodes: a snapshot without one
    NONE = "none"  # no clock and no check-in: Kubernetes' Ready condition stands in


@dataclass(frozen=True, slots=True)
class Reference:
    """The unix second Kilo's freshness is judged at (None: no clock and no check-in),
    and where it came from."""

    at: int | None
    source: TimeSource = TimeSource.CLOCK


NO_TIME = Reference(None, TimeSource.NONE)


def reference(
    nodes: Iterable[NodeState], now: int | None, source: TimeSource = TimeSource.CLOCK
) -> Reference:
    """``now`` when a clock or a capture time gives one; else the lower median of the
    nodes' ``last-seen`` values (an observed value: fewer than half of the nodes, however
    far ahead their clocks run or whatever they claim, cannot move it past an honest
    one). It lags the real capture time by about half a check-in period."""
    if now is not None:
        return Reference(now, source)
    seen = sorted(s for n in nodes if (s := last_seen(n)) is not None)
    if not seen:
        return NO_TIME
    return Reference(seen[(len(seen) - 1) // 2], TimeSource.MEDIAN)


# --- Kilo silent ---------------------------------------------------------------------

CLOCK_SKEW_SECONDS = 5  # how far apart the agents' clocks may be for the rule to hold
SILENT_AFTER = CHECK_IN_SECONDS - CLOCK_SKEW_SECONDS  # no check-in for this long: silent


@dataclass(frozen=True, slots=True)
class Silence:
    """A location whose Kilo agents have all stopped checking in."""

    heard: int | None  # its newest check-in (None: no node there ever checked in)
    went_stale: tuple[str, ...]  # nodes whose check-in ran out after it fell silent

    def seconds(self, now: int) -> int | None:
        """How long ago the location was last heard from."""
        return None if self.heard is None else now - self.heard


def heard(nodes: Iterable[NodeState], now: int) -> int | None:
    """The location's newest check-in as a sign of life at ``now``: a ``last-seen`` a
    little ahead (a clock running ahead) counts as a check-in now; one more than a
    check-in period ahead (forged, or a clock far off) is no sign of anything."""
    seen = [s for n in nodes if (s := last_seen(n)) is not None and s <= now + CHECK_IN_SECONDS]
    return min(max(seen), now) if seen else None


def silence(nodes: Iterable[NodeState], now: int) -> Silence | None:
    """The location's silence at ``now``, or None while one of ``nodes`` checked in
    within the last :data:`SILENT_AFTER` seconds (:func:`heard`).

    Every node still alive when its agents stopped had checked in within the check-in
    period before, so its check-in runs out no earlier than a period after the last one
    heard: the silence is seen first, with :data:`CLOCK_SKEW_SECONDS` to spare for a
    clock running ahead, and ``went_stale`` names every node whose staleness may be only
    the silence (a clock further ahead delays seeing the silence by as much).
    """
    nodes = list(nodes)
    last = heard(nodes, now)
    if last is not None and now - last < SILENT_AFTER:
        return None
    if last is None:
        return Silence(None, ())
    began = last + SILENT_AFTER
    went_stale = tuple(
        sorted(
            n.name for n in nodes if (until := fresh_until(n)) is not None and began <= until <= now
        )
    )
    return Silence(last, went_stale)
