"""Saved plans (``topoctl plan --out``): JSON that ``topoctl apply PLAN`` runs exactly."""

from __future__ import annotations

import json
from typing import Any

from reconciler.core.kilo.freshness import NO_TIME, Reference, TimeSource
from reconciler.core.planning.plan import (
    Action,
    Change,
    LeaderPrediction,
    LifecyclePlan,
    NodeDeletion,
    NodePlan,
    Plan,
    Reason,
    Withheld,
    as_data,
)
from reconciler.model.state import TaintValue

SAVED_KIND = "topoctl-plan"
SAVED_VERSION = 2  # 2: changes carry an action and a reason code


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


def is_saved(text: str) -> bool:
    """Whether ``text`` is a saved plan, by its format marker (whatever the file's name)."""
    if not text.lstrip().startswith("{"):
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("kind") == SAVED_KIND


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
            leaders=tuple(_leader(p) for p in raw["leaders"]),
            claimed_twice={k: tuple(v) for k, v in raw["claimed_twice"].items()},
            pending={k: tuple(v) for k, v in raw["pending"].items()},
            unassigned=tuple(raw["unassigned"]),
            warnings=tuple(raw["warnings"]),
            errors=tuple(raw["errors"]),
            observed={k: (v[0], v[1]) for k, v in raw["observed"].items()},
            members=dict(raw["members"]),
            pools=dict(raw.get("pools") or {}),
            sites=tuple(raw["sites"]),
            agent_problems=dict(raw.get("agent_problems") or {}),
            lifecycle=_lifecycle(raw.get("lifecycle")),
            now=_now(raw.get("now")),
        )
    except (KeyError, TypeError, IndexError, ValueError) as err:
        raise SavedPlanError(f"saved plan is damaged ({err!r})") from None
    return plan, dict(data.get("source") or {})


def _node(raw: dict[str, Any]) -> NodePlan:
    return NodePlan(
        node=raw["node"],
        site=raw["site"],
        uid=raw["uid"],
        resource_version=raw["resource_version"],
        changes=tuple(_change(c) for c in raw["changes"]),
    )


def _change(raw: dict[str, Any]) -> Change:
    taint = raw.get("taint")
    return Change(
        node=raw["node"],
        site=raw["site"],
        kind=raw["kind"],
        key=raw["key"],
        action=Action(raw["action"]),
        reason=Reason(raw["reason"]),
        before=raw["before"],
        after=raw["after"],
        taint=None if taint is None else TaintValue(**taint),
    )


def _leader(raw: dict[str, Any]) -> LeaderPrediction:
    return LeaderPrediction(**{**raw, "not_ready": tuple(raw.get("not_ready") or ())})


def _now(raw: dict[str, Any] | None) -> Reference:
    if raw is None:  # saved before plans said when they judged Kilo's freshness
        return NO_TIME
    return Reference(raw["at"], TimeSource(raw["source"]))


def _lifecycle(raw: dict[str, Any] | None) -> LifecyclePlan | None:
    if raw is None:
        return None
    return LifecyclePlan(
        probed=bool(raw["probed"]),
        deletions=tuple(NodeDeletion(**d) for d in raw["deletions"]),
        withheld=tuple(Withheld(**w) for w in raw["withheld"]),
    )
