"""Routes the node agent keeps: canonical route values and the pure diff. No I/O.

Ownership lives in the kernel: a route is topoctl's when it carries topoctl's
rtnetlink protocol number. Everything else (Kilo's static routes, Cilium's,
the kernel's) is foreign and is never written: a desired route whose slot a
foreign route holds is a reported conflict.

A slot is what the kernel treats as one route for replace: (table, dst,
metric) for a given family. The kernel's IPv4 identity also includes the TOS,
which topoctl never sets; a foreign route with a TOS is still counted as
holding the slot, which errs on the side of not writing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, cast

from reconciler.model import routerules
from reconciler.model.keys import DEFAULT_ROUTE_PROTOCOL, MAIN_TABLE

Action = Literal["replace", "delete"]


class InvalidRouteError(ValueError):
    """A route given to `KernelRoute.build` that the kernel could not hold as written."""


class RouteKey(NamedTuple):
    """The slot a route occupies: a replace acts on it, whoever holds it."""

    table: int
    dst: str
    metric: int


_new_key = tuple.__new__  # RouteKey(...) costs 3x more; keys are made per route per pass


@dataclass(frozen=True, slots=True)
class KernelRoute:
    """One unicast route; every field is part of its identity.

    Build it with `KernelRoute.build` from loose input. The adapter constructs it
    directly from kernel data, whose fields are canonical already.
    """

    dst: str
    gateway: str | None = None
    dev: str | None = None
    table: int = MAIN_TABLE
    metric: int = 0
    onlink: bool = False
    protocol: int = DEFAULT_ROUTE_PROTOCOL

    @classmethod
    def build(
        cls,
        dst: str | ipaddress.IPv4Network | ipaddress.IPv6Network,
        *,
        gateway: str | ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
        dev: str | None = None,
        table: int | str = MAIN_TABLE,
        metric: int = 0,
        onlink: bool = False,
        protocol: int = DEFAULT_ROUTE_PROTOCOL,
    ) -> KernelRoute:
        """Validate loose input and return the canonical route.

        The rules are reconciler.model.routerules, the ones `topoctl validate`
        applies. Raises InvalidRouteError naming the route and the reason.
        """
        network = _network(dst)
        label = str(network)
        try:
            via = None if gateway is None else routerules.gateway(gateway, network.version)
            device = None if dev is None else routerules.device_name(dev)
            _check_shape(via, device, onlink)
            return cls(
                dst=label,
                gateway=via,
                dev=device,
                table=routerules.table_id(table),
                metric=routerules.slot_metric(network.version, routerules.metric(metric)),
                onlink=onlink,
                protocol=routerules.own_protocol(protocol),
            )
        except routerules.RouteRuleError as error:
            raise InvalidRouteError(f"route {label}: {error}") from None

    @property
    def version(self) -> int:
        """IP version of the destination: 4 or 6."""
        return 6 if ":" in self.dst else 4

    @property
    def key(self) -> RouteKey:
        """The slot this route occupies."""
        return _new_key(RouteKey, (self.table, self.dst, self.metric))

    def satisfied_by(self, actual: KernelRoute) -> bool:
        """Whether `actual` (read from the kernel) is this desired route.

        A desired route without a device leaves the device to the kernel,
        which reports the one it chose.
        """
        return (
            self.dst == actual.dst
            and self.table == actual.table
            and self.metric == actual.metric
            and self.gateway == actual.gateway
            and self.onlink == actual.onlink
            and self.protocol == actual.protocol
            and (self.dev is None or self.dev == actual.dev)
        )

    def __str__(self) -> str:
        return routerules.route_text(
            self.dst, self.gateway, self.dev, self.table, self.metric, self.onlink
        )


@dataclass(frozen=True, slots=True)
class RouteConflict:
    """A desired route whose slot a foreign protocol holds: reported, never written."""

    route: KernelRoute
    holder_protocol: int


@dataclass(frozen=True, slots=True)
class RouteSnapshot:
    """What the kernel holds: our routes, and the slots of everyone else's."""

    owned: tuple[KernelRoute, ...]
    foreign_keys: Mapping[RouteKey, int]


@dataclass(frozen=True, slots=True)
class RouteDiff:
    """The writes that make the kernel hold the desired routes.

    Apply `replace` before `delete`. `vacant_slots` are the keys of `replace`
    routes whose slot held nothing at read time: they are written as
    exclusive creates, so a route someone added since the read is never
    overwritten.
    """

    replace: tuple[KernelRoute, ...] = ()
    delete: tuple[KernelRoute, ...] = ()
    conflicts: tuple[RouteConflict, ...] = ()
    vacant_slots: frozenset[RouteKey] = field(default_factory=frozenset)

    @property
    def writes(self) -> int:
        """Number of route writes this diff needs."""
        return len(self.replace) + len(self.delete)


@dataclass(frozen=True, slots=True)
class RouteFailure:
    """One route write that did not happen, with a reason a person can act on."""

    route: KernelRoute
    action: Action
    reason: str
    errno: int | None = None


@dataclass(frozen=True, slots=True)
class RouteApplyResult:
    """Outcome of applying a RouteDiff; `messages_sent` counts write messages."""

    replaced: tuple[KernelRoute, ...] = ()
    deleted: tuple[KernelRoute, ...] = ()
    failed: tuple[RouteFailure, ...] = ()
    messages_sent: int = 0

    @property
    def ok(self) -> bool:
        """Every write succeeded."""
        return not self.failed


class DuplicateRouteKeyError(ValueError):
    """Two different desired routes claim the same slot."""


def diff_routes(
    desired: Iterable[KernelRoute],
    owned: Iterable[KernelRoute],
    foreign_keys: Mapping[RouteKey, int],
) -> RouteDiff:
    """Compute the writes that turn `owned` into `desired` without touching foreign slots.

    - a desired route already held (as owned) needs no write;
    - a desired route whose slot holds an owned route with other attributes
      is one replace of that slot;
    - a desired route whose slot a foreign protocol holds is a conflict;
    - owned routes in slots nothing desires are deleted, as are surplus
      owned routes sharing a desired slot (only a manual append makes those);
    - owned routes in a conflicting slot are left alone (deleting is a write).

    Raises DuplicateRouteKeyError when two different desired routes share a slot.
    """
    wanted = _by_unique_key(desired)
    held, surplus = _by_key(owned)
    foreign = cast(Mapping[_Slot, int], foreign_keys)  # RouteKey is a tuple: same hash
    replace: list[KernelRoute] = []
    delete: list[KernelRoute] = []
    conflicts: list[RouteConflict] = []
    vacant: list[KernelRoute] = []
    for key, route in wanted.items():
        holder = foreign.get(key)
        if holder is not None:
            conflicts.append(RouteConflict(route, holder))
            continue
        current = held.get(key)
        if current is None:
            replace.append(route)
            vacant.append(route)
            continue
        if (current == route or route.satisfied_by(current)) and key not in surplus:
            continue  # the common, converged case
        candidates = [current, *surplus.get(key, ())]
        match = next((r for r in candidates if route.satisfied_by(r)), None)
        if match is None:
            replace.append(route)
            delete.extend(candidates[1:])
        else:
            delete.extend(r for r in candidates if r is not match)
    for key, extra in held.items():
        if key not in wanted:
            delete.append(extra)
            delete.extend(surplus.get(key, ()))
    return RouteDiff(
        replace=tuple(sorted(replace, key=route_order)),
        delete=tuple(sorted(delete, key=route_order)),
        conflicts=tuple(sorted(conflicts, key=lambda c: route_order(c.route))),
        vacant_slots=frozenset(route.key for route in vacant),
    )


def route_order(route: KernelRoute) -> tuple[int, str, int, str, str, bool, int]:
    """Deterministic sort key: slot first, then the remaining fields."""
    return (
        route.table,
        route.dst,
        route.metric,
        route.gateway or "",
        route.dev or "",
        route.onlink,
        route.protocol,
    )


def check_own_protocol(protocol: int) -> int:
    """Return `protocol` if topoctl may own routes with it, else raise ValueError."""
    return routerules.own_protocol(protocol)


_Slot = tuple[int, str, int]
"""A RouteKey's fields as a plain tuple: equal to it, and made without a call."""


def _by_unique_key(routes: Iterable[KernelRoute]) -> dict[_Slot, KernelRoute]:
    wanted: dict[_Slot, KernelRoute] = {}
    clashes: list[str] = []
    for route in routes:
        previous = wanted.setdefault((route.table, route.dst, route.metric), route)
        if previous is not route and previous != route:
            clashes.append(f"{previous} / {route}")
    if clashes:
        raise DuplicateRouteKeyError("desired routes share a slot: " + "; ".join(clashes))
    return wanted


def _by_key(
    routes: Iterable[KernelRoute],
) -> tuple[dict[_Slot, KernelRoute], dict[_Slot, list[KernelRoute]]]:
    """The first route held in each slot, and the rest (only a manual append makes them)."""
    first: dict[_Slot, KernelRoute] = {}
    rest: dict[_Slot, list[KernelRoute]] = {}
    for route in routes:
        key = (route.table, route.dst, route.metric)
        if first.setdefault(key, route) is not route:
            rest.setdefault(key, []).append(route)
    return first, rest


def _network(
    dst: str | ipaddress.IPv4Network | ipaddress.IPv6Network,
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(dst, str | ipaddress.IPv4Network | ipaddress.IPv6Network):
        raise InvalidRouteError(f"route {dst!r}: the destination must be a CIDR in text")
    try:
        text = dst if not isinstance(dst, str) else routerules.destination(dst)
        return ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        raise InvalidRouteError(f"route {dst}: {error}") from None


def _check_shape(gateway: str | None, dev: str | None, onlink: object) -> None:
    if gateway is None and dev is None:
        raise routerules.RouteRuleError("needs a gateway, a device or both")
    if not isinstance(onlink, bool):
        raise routerules.RouteRuleError(f"onlink must be true or false, got {onlink!r}")
    if onlink and (gateway is None or dev is None):
        raise routerules.RouteRuleError("onlink needs both a gateway and a device")
