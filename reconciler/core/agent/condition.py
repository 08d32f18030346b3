"""The agent's ``TopologyReady`` condition: one pass summed up for ``kubectl describe
node``, written only when it changes. Pure."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.core.agent.published import Published
from reconciler.core.agent.routes import RouteApplyResult, RouteConflict
from reconciler.model import keys
from reconciler.model.state import NodeCondition

MAX_MESSAGE = 1024
REFUSED = "RouteRefused"
"""A published route the agent never installs: the whole set is refused."""
OVER_LIMIT = "RouteLimitExceeded"
"""The annotation holds more bytes or routes than the cap: nothing of it is read."""


@dataclass(frozen=True)
class Condition:
    """The agent's Node condition."""

    status: str  # "True" | "False"
    reason: str
    message: str


def judge(
    settings: Published | None,
    problems: Sequence[str],
    conflicts: Sequence[RouteConflict],
    result: RouteApplyResult | None,
    routes_in_place: int,
    *,
    route_errors: Sequence[str] = (),
    refused: Sequence[str] = (),
) -> Condition:
    """Summarise one pass as a condition a person can read with kubectl describe node.

    ``problems`` are address-detection problems; ``route_errors`` say why no route
    could be converged at all (the kernel refused to read them); ``refused`` why the
    published set was refused whole (:mod:`reconciler.core.agent.refusals`), which
    outweighs everything else and comes first in the message.
    """
    if settings is None:
        return Condition("False", "NoSettings", _clip("; ".join(problems)))
    if refused:
        return Condition("False", REFUSED, _clip("; ".join((*refused, *problems))))
    lines = list(problems)
    reason = "Converged"
    if settings.invalid_routes:
        reason = "InvalidRoute"
        lines += [f"invalid route {r}" for r in settings.invalid_routes]
    if route_errors:
        reason = "RouteWriteFailed"
        lines += route_errors
    for conflict in conflicts:
        reason = "RouteConflict"
        lines.append(
            f"route {conflict.route} not written: its slot is held by protocol "
            f"{conflict.holder_protocol}"
        )
    for failure in result.failed if result else ():
        reason = "DeviceMissing" if failure.errno == errno.ENODEV else "RouteWriteFailed"
        lines.append(f"{failure.action} {failure.route}: {failure.reason}")
    if problems and reason == "Converged":
        reason = "AddressDetectionFailed"
    if reason == "Converged":
        return Condition("True", reason, f"{routes_in_place} route(s) in place")
    return Condition("False", reason, _clip("; ".join(lines)))


def over_limit(message: str) -> Condition:
    """The condition of a pass whose settings were too large to read."""
    return Condition("False", OVER_LIMIT, _clip(message))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def merge_condition(
    conditions: Sequence[NodeCondition], condition: Condition, now: str
) -> tuple[NodeCondition, ...] | None:
    """The conditions with ours updated, or None when it already says the same."""
    out = list(conditions)
    for i, entry in enumerate(out):
        if entry.type != keys.CONDITION_AGENT:
            continue
        if (entry.status, entry.reason, entry.message) == (
            condition.status,
            condition.reason,
            condition.message,
        ):
            return None
        changed = entry.status != condition.status
        out[i] = NodeCondition(
            type=keys.CONDITION_AGENT,
            status=condition.status,
            reason=condition.reason,
            message=condition.message,
            last_transition_time=now if changed else entry.last_transition_time,
            last_heartbeat_time=now,
        )
        return tuple(out)
    ours = NodeCondition(
        keys.CONDITION_AGENT, condition.status, condition.reason, condition.message, now, now
    )
    return (*out, ours)
