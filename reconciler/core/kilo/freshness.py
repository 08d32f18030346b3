"""Kilo's freshness: a node counts as Ready to Kilo only while its ``kilo.squat.ai/last-seen``
check-in is recent: within two 30 s check-in periods (squat/kilo pkg/mesh/backend.go,
``(*Node).Ready``; docs/domain.md).

The rule is stated here once: the planner's view of Kilo (:func:`~.node.kilo_node`), the
controller's cache timers and the 409 re-plan's heartbeat check all ask these functions.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler.model import keys
from reconciler.model.state import NodeState

KILO_READY_SECONDS = 60  # Kilo: last-seen within two 30 s check-in periods


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


def newest_check_in(nodes: Iterable[NodeState]) -> int | None:
    """The newest Kilo ``last-seen`` among the nodes, or None where Kilo never ran."""
    seen = [s for n in nodes if (s := last_seen(n)) is not None]
    return max(seen) if seen else None
