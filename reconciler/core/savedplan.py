"""Saved plans (``topoctl plan --out``): JSON that ``topoctl apply PLAN`` runs exactly."""

from __future__ import annotations

import json
from typing import Any

from reconciler.core.desired import LeaderPrediction
from reconciler.core.plan import Change, NodePlan, Plan, as_data
from reconciler.model.state import TaintValue

SAVED_KIND = "topoctl-plan"
SAVED_VERSION = 1


class SavedPlanError(ValueError):
    """The file is not a saved plan this version can apply."""


def dump(plan: Plan, source: dict[str, Any]) -> str:
    """The plan, the cluster it was made against and the state it was computed from."""
    data = as_data(plan)
    return (
        json.dumps(
            {"kind": SAVED_KIND, "format_version": SAVED_VERSION, "source": source, "plan": data},
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )


def load(text: str) -> tuple[Plan, dict[str, Any]]:
    """Read a saved plan back; raises SavedPlanError with what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise SavedPlanError(f"not a saved plan (invalid JSON: {err})") from None
    if not isinstance(data, dict) or data.get("kind") != SAVED_KIND:
        raise SavedPlanError("not a saved plan (made by `topoctl plan --out FILE`)")
    if data.get("format_version") != SAVED_VERSION:
        raise SavedPlanError(
            f"saved plan format {data.get('format_version')} is not "
            f"{SAVED_VERSION}: plan again with this topoctl"
        )
    try:
        raw = data["plan"]
        plan = Plan(
            cluster=raw["cluster"],
            nodes=tuple(_node(n) for n in raw["nodes"]),
            leaders=tuple(LeaderPrediction(**p) for p in raw["leaders"]),
            conflicts=tuple(Change(**c) for c in raw["conflicts"]),
            claimed_twice={k: tuple(v) for k, v in raw["claimed_twice"].items()},
            pending={k: tuple(v) for k, v in raw["pending"].items()},
            unassigned=tuple(raw["unassigned"]),
            warnings=tuple(raw["warnings"]),
            errors=tuple(raw["errors"]),
            observed={k: (v[0], v[1]) for k, v in raw["observed"].items()},
            members=dict(raw["members"]),
            sites=tuple(raw["sites"]),
        )
    except (KeyError, TypeError, IndexError) as err:
        raise SavedPlanError(f"saved plan is damaged ({err!r})") from None
    return plan, dict(data.get("source") or {})


def _node(raw: dict[str, Any]) -> NodePlan:
    taints = raw.get("taints_after")
    return NodePlan(
        node=raw["node"],
        site=raw["site"],
        uid=raw["uid"],
        resource_version=raw["resource_version"],
        changes=tuple(Change(**c) for c in raw["changes"]),
        taints_after=None if taints is None else tuple(TaintValue(**t) for t in taints),
    )
