"""What the agent refuses to install, whatever its Node's annotation says. Pure.

The ``topoctl.io/agent`` annotation is written by whoever may patch the Node: the
controller, but also anyone who holds that right. So the ranges the agent never routes
are its own settings (:class:`Boundary`, from its flags), plus the node's own pod
CIDRs from the Node's spec; nothing in the annotation can widen them (the settings
model forbids unknown fields).

A refused set is refused whole: when one published route is refused, the agent writes
no route at all that pass - it neither installs the rest nor deletes what it installed
before - and reports each refusal. A set that asks for something it must never do is
not trusted for the rest either, and what was working stands until a set it accepts
comes. (An *invalid* route, one the kernel could not hold, costs only itself: that is
a mistake, not a hazard.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.model import keys, routerules
from reconciler.model.routerules import Network, ProtectedRange
from reconciler.model.settings import AgentSettings
from reconciler.model.state import NodeState

KILO_SUBNET: Network = ipaddress.ip_network(keys.KILO_DEFAULT_SUBNET)


@dataclass(frozen=True)
class Boundary:
    """The agent's own settings: the address ranges it never routes into."""

    kilo_subnets: tuple[Network, ...] = (KILO_SUBNET,)
    pod_cidrs: tuple[Network, ...] = ()
    service_cidrs: tuple[Network, ...] = ()

    def ranges(self, node: NodeState) -> tuple[ProtectedRange, ...]:
        """Every protected range, the node's own pod CIDRs (``spec.podCIDRs``) included."""
        own = _networks(node.pod_cidrs or (node.pod_cidr,))
        named = (
            (self.kilo_subnets, "Kilo's WireGuard subnet (--kilo-subnet)"),
            (own, "this node's pod CIDR (spec.podCIDRs)"),
            (self.pod_cidrs, "the cluster's pod CIDR (--pod-cidr)"),
            (self.service_cidrs, "the cluster's service CIDR (--service-cidr)"),
        )
        return tuple(ProtectedRange(n, what) for networks, what in named for n in networks)


DEFAULT_BOUNDARY = Boundary()
"""Kilo's default subnet only: what an agent protects without any flag."""


def refusals(settings: AgentSettings, protected: Iterable[ProtectedRange]) -> tuple[str, ...]:
    """One line per reason to refuse the whole set; empty when the agent may apply it.

    Refused: a protocol reserved for another owner (the agent would take that owner's
    routes for its own), and each route that is a default route, points inside a
    protected range, or goes into a reserved table (Kilo's 1107, the kernel's). Routes
    too malformed to judge are left to the route rules (reported as invalid).
    """
    ranges = tuple(protected)
    out: list[str] = []
    try:
        routerules.own_protocol(settings.protocol)
    except routerules.RouteRuleError as err:
        out.append(f"{err}: no route of this set is installed")
    for route in settings.routes:
        why = _refused(route.to, route.table, ranges)
        if why is not None:
            out.append(f"route {route} refused: {why}")
    return tuple(out)


def _refused(to: str, table: int, ranges: tuple[ProtectedRange, ...]) -> str | None:
    reserved = routerules.RESERVED_TABLES.get(table)
    if reserved is not None:
        return f"table {table} is {reserved}"
    try:
        destination = ipaddress.ip_network(to, strict=True)
    except ValueError:
        return None  # not a destination at all: an invalid route, reported as such
    return routerules.never_routed(destination, ranges)


def _networks(texts: Iterable[str]) -> tuple[Network, ...]:
    out = []
    for text in texts:
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue  # kube-controller-manager writes valid CIDRs; anything else protects nothing
    return tuple(out)
