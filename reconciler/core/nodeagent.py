"""The node agent's decisions, pure: settings, addresses, the taint, the condition.

The agent reads only its own Node: the ``topoctl.io/agent`` annotation carries its
settings and routes. Addresses are merged, never replaced by type (a second
InternalIP on a dual-stack node survives, unlike local-ccm's); the uninitialized
taint goes only once addresses are in place; the condition is written only when it
changes.
"""

from __future__ import annotations

import errno
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core.routes import ApplyResult, InvalidRouteError, Route, RouteConflict
from reconciler.model import keys, routerules

MAX_MESSAGE = 1024


@dataclass(frozen=True)
class AgentSettings:
    """What the controller published for this node."""

    external_ip_target: str | None
    internal_ip_target: str | None
    remove_uninitialized_taint: bool
    protocol: int
    routes: tuple[Route, ...]
    invalid_routes: tuple[str, ...] = ()


class SettingsError(ValueError):
    """The agent annotation is missing or unreadable."""


def parse_settings(annotations: Mapping[str, str]) -> AgentSettings:
    """Read ``topoctl.io/agent``; routes that cannot be built are reported, not fatal."""
    raw = annotations.get(keys.TOPOCTL_AGENT)
    if raw is None:
        raise SettingsError(
            f"no {keys.TOPOCTL_AGENT} annotation yet: run topoctl apply "
            "(or the controller) for this node"
        )
    try:
        data = json.loads(raw)
        protocol = routerules.own_protocol(data.get("protocol", keys.DEFAULT_ROUTE_PROTOCOL))
        routes: list[Route] = []
        invalid: list[str] = []
        for entry in data.get("routes") or []:
            try:
                routes.append(
                    Route.build(
                        entry["to"],
                        gateway=entry.get("via"),
                        dev=entry.get("dev"),
                        table=entry.get("table", "main"),
                        metric=entry.get("metric", 0),
                        onlink=entry.get("onlink", False),
                        protocol=protocol,
                    )
                )
            except (InvalidRouteError, KeyError, TypeError, ValueError) as err:
                invalid.append(f"{entry!r}: {err}")
        return AgentSettings(
            external_ip_target=data.get("externalIPTarget"),
            internal_ip_target=data.get("internalIPTarget"),
            remove_uninitialized_taint=data.get("uninitializedTaint", "remove") == "remove",
            protocol=protocol,
            routes=tuple(routes),
            invalid_routes=tuple(invalid),
        )
    except (ValueError, TypeError, AttributeError) as err:
        raise SettingsError(f"{keys.TOPOCTL_AGENT} is not valid agent settings: {err}") from None


def _family(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def merge_addresses(
    current: Sequence[Mapping[str, str]], external: str | None, internal: str | None
) -> list[dict[str, str]]:
    """Status addresses with the detected ones in place; everything else kept.

    A detected address replaces the first address of the same type and family, unless
    it is listed already; other families and types (Hostname, a second InternalIP) stay.
    An ExternalIP equal to an InternalIP is dropped: it is not an address from outside.
    """
    out = [{"type": a["type"], "address": a["address"]} for a in current]

    def put(kind: str, address: str) -> None:
        if {"type": kind, "address": address} in out:
            return  # already listed (maybe second of its family): never duplicate it
        family = _family(address)
        for entry in out:
            if entry["type"] == kind and _family(entry["address"]) == family:
                entry["address"] = address
                return
        last = max((i for i, e in enumerate(out) if e["type"] == kind), default=len(out) - 1)
        out.insert(last + 1, {"type": kind, "address": address})

    if internal is not None:
        put("InternalIP", internal)
    if external is not None:
        put("ExternalIP", external)
    internals = {e["address"] for e in out if e["type"] == "InternalIP"}
    return [e for e in out if not (e["type"] == "ExternalIP" and e["address"] in internals)]


def addresses_ready(settings: AgentSettings, external: str | None, internal: str | None) -> bool:
    """Every enabled detection produced an address (the taint may go)."""
    return (settings.external_ip_target is None or external is not None) and (
        settings.internal_ip_target is None or internal is not None
    )


def without_uninitialized(taints: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """The taint list without the cloud-provider taint, or None when it is not there."""
    kept = [dict(t) for t in taints if t.get("key") != keys.TAINT_UNINITIALIZED]
    return kept if len(kept) != len(taints) else None


@dataclass(frozen=True)
class Condition:
    """The agent's Node condition."""

    status: str  # "True" | "False"
    reason: str
    message: str


def judge(
    settings: AgentSettings | None,
    problems: Sequence[str],
    conflicts: Sequence[RouteConflict],
    result: ApplyResult | None,
    routes_in_place: int,
    *,
    route_errors: Sequence[str] = (),
) -> Condition:
    """Summarise one pass as a condition a person can read with kubectl describe node.

    ``problems`` are address-detection problems; ``route_errors`` say why no route
    could be converged at all (the kernel refused to read them).
    """
    if settings is None:
        return Condition("False", "NoSettings", _clip("; ".join(problems)))
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


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def merge_condition(
    conditions: Sequence[Mapping[str, Any]], condition: Condition, now: str
) -> list[dict[str, Any]] | None:
    """The conditions with ours updated, or None when it already says the same."""
    out = [dict(c) for c in conditions]
    for entry in out:
        if entry.get("type") == keys.CONDITION_AGENT:
            same = (entry.get("status"), entry.get("reason"), entry.get("message")) == (
                condition.status,
                condition.reason,
                condition.message,
            )
            if same:
                return None
            if entry.get("status") != condition.status:
                entry["lastTransitionTime"] = now
            entry.update(
                status=condition.status,
                reason=condition.reason,
                message=condition.message,
                lastHeartbeatTime=now,
            )
            return out
    out.append(
        {
            "type": keys.CONDITION_AGENT,
            "status": condition.status,
            "reason": condition.reason,
            "message": condition.message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
    )
    return out
