"""The lifecycle part of a rendered plan: deletions, then what is withheld and why.

Pure, plain text lines (the callers escape them for their medium). Guard rails that
stop a whole site or the cluster come first, since they explain the nodes after them.
"""

from __future__ import annotations

from typing import Any

from reconciler.core.planning.plan import LifecyclePlan

NOT_PROBED_HINT = "plan with --probe to probe them from here; it takes about a minute"


def lines(lifecycle: LifecyclePlan | None) -> list[str]:
    """One line a decision; empty when there is nothing to say."""
    if lifecycle is None:
        return []
    out = [d.text for d in lifecycle.deletions]
    out += [w.text for w in lifecycle.withheld if not w.node]
    waiting = lifecycle.not_probed
    out += [w.text for w in lifecycle.withheld if w.node and w not in waiting]
    if waiting:
        names = ", ".join(w.node for w in waiting)
        out.append(f"not probed, so not deleted: {names} ({NOT_PROBED_HINT})")
    return out


def summary(lifecycle: LifecyclePlan | None) -> str:
    """``2 nodes to delete`` for the plan's closing line, or empty."""
    count = len(lifecycle.deletions) if lifecycle is not None else 0
    return f"{count} node{'s' * (count != 1)} to delete" if count else ""


def as_data(lifecycle: LifecyclePlan) -> dict[str, Any]:
    """The JSON plan's ``lifecycle`` object."""
    return {
        "probed": lifecycle.probed,
        "deletions": [
            {"node": d.node, "site": d.site, "uid": d.uid, "text": d.text}
            for d in lifecycle.deletions
        ],
        "withheld": [
            {"node": w.node or None, "site": w.site or None, "reason": w.reason, "text": w.text}
            for w in lifecycle.withheld
        ],
    }
