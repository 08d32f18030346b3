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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.core.routes import InvalidRouteError, KernelRoute, RouteApplyResult, RouteConflict
from reconciler.model import keys
from reconciler.model.settings import AgentSettings, SettingsFormatError
from reconciler.model.state import NodeCondition, TaintValue

MAX_MESSAGE = 1024
Address = tuple[str, str]  # (type, address), as NodeState holds it

SettingsError = SettingsFormatError


@dataclass(frozen=True)
class Published:
    """This node's agent settings, with the routes built as kernel routes.

    ``invalid_routes`` names every published route that could not be used.
    """

    settings: AgentSettings
    routes: tuple[KernelRoute, ...]
    invalid_routes: tuple[str, ...] = ()

    @property
    def protocol(self) -> int:
        """The rtnetlink protocol that marks topoctl's routes."""
        return self.settings.protocol


def parse_settings(annotations: Mapping[str, str]) -> Published:
    """Read ``topoctl.io/agent``; routes that cannot be built are reported, not fatal.

    Raises SettingsError when the annotation is missing, of an unknown format version
    or not agent settings.
    """
    settings, invalid = AgentSettings.from_annotation(annotations.get(keys.TOPOCTL_AGENT))
    routes: list[KernelRoute] = []
    problems = list(invalid)
    for entry in settings.routes:
        try:
            routes.append(
                KernelRoute.build(
                    entry.to,
                    gateway=entry.via,
                    dev=entry.dev,
                    table=entry.table,
                    metric=entry.metric,
                    onlink=entry.onlink,
                    protocol=settings.protocol,
                )
            )
        except InvalidRouteError as err:
            problems.append(str(err))
    return Published(settings, tuple(routes), tuple(problems))


def _family(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def merge_addresses(
    current: Sequence[Address], external: str | None, internal: str | None
) -> tuple[Address, ...]:
    """Status addresses with the detected ones in place; everything else kept.

    A detected address replaces the first address of the same type and family, unless
    it is listed already; other families and types (Hostname, a second InternalIP) stay.
    An ExternalIP equal to an InternalIP is dropped: it is not an address from outside.
    """
    out = [(kind, address) for kind, address in current]

    def put(kind: str, address: str) -> None:
        if (kind, address) in out:
            return  # already listed (maybe second of its family): never duplicate it
        family = _family(address)
        for i, (other_kind, other) in enumerate(out):
            if other_kind == kind and _family(other) == family:
                out[i] = (kind, address)
                return
        last = max((i for i, e in enumerate(out) if e[0] == kind), default=len(out) - 1)
        out.insert(last + 1, (kind, address))

    if internal is not None:
        put("InternalIP", internal)
    if external is not None:
        put("ExternalIP", external)
    internals = {a for kind, a in out if kind == "InternalIP"}
    return tuple(e for e in out if not (e[0] == "ExternalIP" and e[1] in internals))


def addresses_ready(settings: AgentSettings, external: str | None, internal: str | None) -> bool:
    """Every enabled detection produced an address (the taint may go)."""
    return (settings.external_ip_target is None or external is not None) and (
        settings.internal_ip_target is None or internal is not None
    )


def without_uninitialized(taints: Sequence[TaintValue]) -> tuple[TaintValue, ...] | None:
    """The taint list without the cloud-provider taint, or None when it is not there."""
    kept = tuple(t for t in taints if t.key != keys.TAINT_UNINITIALIZED)
    return kept if len(kept) != len(taints) else None


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
