"""What each member node should carry: Kilo annotations, labels, taints, agent settings.

Pure: built from the topology and the observed nodes. Merging is site -> pool -> node
(the node level wins). The ``topoctl.io/agent`` annotation resolves ``via: leader``
to the InternalIP of the leader Kilo is predicted to pick once the plan is applied
(the planner passes it in).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import msgspec

from reconciler.core.planning.membership import Member
from reconciler.model import keys
from reconciler.model.addresses import parse_endpoint
from reconciler.model.route import Route
from reconciler.model.settings import AgentRoute, AgentSettings, SettingsFormatError
from reconciler.model.state import TaintValue
from reconciler.model.topology import Cluster, Site, Taint


class DesiredNode(msgspec.Struct, frozen=True):
    """Everything topoctl declares for one member node (before ownership is considered)."""

    name: str
    site: str
    annotations: Mapping[str, str]
    labels: Mapping[str, str]
    taints: Mapping[str, TaintValue]  # by key:effect
    kilo: Mapping[str, str]  # the six user-set Kilo keys git declares


def location_ips_anchor(site: Site, members: Collection[str]) -> str | None:
    """The one member that carries the site's allowed-location-ips under ``full`` and
    ``cross`` granularity, where every node is a Kilo segment of its own and Kilo refuses
    the same CIDR on two segments (pkg/mesh/topology.go: "overlapping allowed location
    IPnets"): the first pinned leader candidate present, else the first listed node
    present, else the first member by name."""
    for name in (*site.spec.leader, *(n.name for n in site.spec.nodes)):
        if name in members:
            return name
    return min(members, default=None)


def kilo_annotations(
    site: Site, member: Member, mesh_port: int, location_ips: bool = True
) -> dict[str, str]:
    """The six Kilo keys, exactly in the formats Kilo parses (docs/domain.md); without
    ``location_ips`` the node leaves the site's allowed-location-ips to another."""
    out = {keys.KILO_LOCATION: site.name}
    named = member.named
    if named is not None and named.name in site.spec.leader:
        out[keys.KILO_LEADER] = "true"
    if named is not None and named.endpoint is not None:
        out[keys.KILO_FORCE_ENDPOINT] = parse_endpoint(named.endpoint).render(mesh_port)
    if named is not None and named.internal_ip is not None:
        out[keys.KILO_FORCE_INTERNAL_IP] = named.internal_ip
    keepalive = named.persistent_keepalive if named is not None else None
    if keepalive is None:
        keepalive = site.spec.persistent_keepalive
    if keepalive is not None:
        out[keys.KILO_PERSISTENT_KEEPALIVE] = str(keepalive)
    if site.spec.allowed_location_ips and location_ips:
        out[keys.KILO_ALLOWED_LOCATION_IPS] = ",".join(site.spec.allowed_location_ips)
    return out


def _merged(
    site: Site, member: Member
) -> tuple[dict[str, str], dict[str, str], dict[str, TaintValue]]:
    levels: list[Any] = [site.spec, member.pool, member.named]
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    taints: dict[str, TaintValue] = {}
    for level in levels:
        if level is None:
            continue
        labels.update(level.labels)
        annotations.update(level.annotations)
        for taint in level.taints:
            value = _taint(taint)
            taints[value.ident] = value
    return labels, annotations, taints


def _taint(taint: Taint) -> TaintValue:
    return TaintValue(taint.key, taint.effect, taint.value)


def desired_node(
    site: Site, member: Member, cluster: Cluster, location_ips: bool = True
) -> DesiredNode:
    """What git declares for one member (the agent settings apart: they need the leader)."""
    labels, annotations, taints = _merged(site, member)
    kilo = kilo_annotations(site, member, cluster.spec.mesh.port, location_ips)
    return DesiredNode(
        name=member.node.name,
        site=site.name,
        annotations={**annotations, **kilo},
        labels=labels,
        taints=taints,
        kilo=kilo,
    )


def routes_for(
    routes: Sequence[Route], is_leader: bool, leader_ip: str | None
) -> tuple[list[AgentRoute], int]:
    """The node's routes with ``via: leader`` resolved; also how many could not be."""
    out: list[AgentRoute] = []
    unresolved = 0
    for route in routes:
        if (route.on == "leader" and not is_leader) or (route.on == "non-leaders" and is_leader):
            continue
        via = route.via
        if via == "leader":
            if is_leader:
                continue  # the leader does not route via itself
            if leader_ip is None:
                unresolved += 1
                continue
            via = leader_ip
        out.append(
            AgentRoute(
                to=route.to,
                via=via,
                dev=route.dev,
                table=route.table_id,
                metric=route.metric,
                onlink=route.onlink,
            )
        )
    return out, unresolved


def leader_dependent(route: Route) -> bool:
    """Whether the leader decides the route: its gateway (``via: leader``) or which
    nodes get it (``on: leader`` or ``non-leaders``)."""
    return route.via == "leader" or route.on != "all"


def _slot(table: int, to: str, metric: int) -> tuple[int, str, int]:
    return (table, to, metric)


def held_routes(routes: Sequence[Route], published: str | None) -> tuple[list[AgentRoute], int]:
    """The node's routes while no leader can be predicted: git's own where the leader
    decides nothing, and the leader-dependent ones as last published on the node
    (``published``: its ``topoctl.io/agent``), matched by slot (table, destination,
    metric), so nothing is withdrawn. Also how many routes via the leader the node lacks
    because it never had them published (nothing to keep, and no leader to resolve)."""
    settings = published_settings(published)
    kept = {r.order(): r for r in settings.routes} if settings is not None else {}
    out, _ = routes_for([r for r in routes if not leader_dependent(r)], False, None)
    missing = 0
    for route in routes:
        if not leader_dependent(route):
            continue
        found = kept.get(_slot(route.table_id, route.to, route.metric))
        if found is not None:
            out.append(found)
        elif settings is None and route.via == "leader" and route.on != "leader":
            missing += 1
    return out, missing


def published_settings(published: str | None) -> AgentSettings | None:
    """The agent settings last published on a node (None: none, or unreadable, so the
    agent could not have installed any of it)."""
    try:
        return AgentSettings.from_annotation(published)[0] if published else None
    except SettingsFormatError:
        return None


def leader_gateways(routes: Sequence[Route], published: Sequence[AgentRoute]) -> set[str]:
    """The gateways ``published`` routes use in the slots of the ``via: leader`` ones."""
    slots = {_slot(r.table_id, r.to, r.metric) for r in routes if r.via == "leader"}
    return {r.via for r in published if r.via is not None and r.order() in slots}


def agent_annotation(cluster: Cluster, routes: Sequence[AgentRoute]) -> str:
    """The ``topoctl.io/agent`` value for a node (the agent reads the same model)."""
    spec = cluster.spec
    return AgentSettings(
        external_ip_target=spec.addresses.external_ip_target,
        internal_ip_target=spec.addresses.internal_ip_target,
        uninitialized_taint=spec.uninitialized_taint,
        protocol=spec.routes.protocol,
        routes=tuple(routes),
    ).to_annotation()
