"""What each member node should carry: Kilo annotations, labels, taints, agent settings.

Pure: built from the topology and the observed nodes. Merging is site -> pool -> node
(the node level wins). The ``topoctl.io/agent`` annotation resolves ``via: leader``
to the InternalIP of the leader Kilo is predicted to pick once the plan is applied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.kilo import find_leader, kilo_location, kilo_node
from reconciler.core.membership import Member
from reconciler.model import keys
from reconciler.model.state import NodeState, TaintValue
from reconciler.model.topology import Cluster, Route, Site, Taint
from reconciler.model.types import parse_endpoint

AGENT_FORMAT = 1
# Kubernetes caps all annotations of an object at 256 KiB together; the agent's share
# is kept to a quarter so labels, Kilo's and others' annotations always fit beside it.
AGENT_ANNOTATION_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class DesiredNode:
    """Everything topoctl declares for one member node (before ownership is considered)."""

    name: str
    site: str
    annotations: Mapping[str, str]
    labels: Mapping[str, str]
    taints: Mapping[str, TaintValue]  # by key:effect
    kilo: Mapping[str, str]  # the six user-set Kilo keys git declares


@dataclass(frozen=True, slots=True)
class LeaderPrediction:
    """Kilo's leader for a site now and once the plan is applied."""

    site: str
    current: str | None
    predicted: str | None
    predicted_internal_ip: str | None

    @property
    def changes(self) -> bool:
        """True when applying the plan moves leadership (tunnels drop: squat/kilo#39)."""
        return self.current != self.predicted


@dataclass(frozen=True)
class SiteDesire:
    """A site's desired nodes, its leader prediction and problems found on the way."""

    nodes: list[DesiredNode] = field(default_factory=list)
    leader: LeaderPrediction | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def kilo_annotations(site: Site, member: Member, mesh_port: int) -> dict[str, str]:
    """The six Kilo keys, exactly in the formats Kilo parses (DOMAIN.md)."""
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
    if site.spec.allowed_location_ips:
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


def after_apply(node: NodeState, kilo: Mapping[str, str]) -> dict[str, str]:
    """A member's annotations once the plan is applied, as far as Kilo reads them.

    The six user-set Kilo keys become what git declares, as the diff writes them: a key
    Talos manages keeps its live value (a reported conflict), and removing a ``force-*``
    key also removes Kilo's mirror of it. Modelling exactly what apply leaves behind keeps
    the prediction - and the routes resolved from it - the same when planning again.
    """
    live = node.annotations
    talos = node.talos_owned("annotation")
    out = dict(live)
    for key in keys.KILO_USER_KEYS:
        current = live.get(key)
        if key in kilo:
            if current is None or key not in talos:
                out[key] = kilo[key]
        elif current is not None and key not in talos:
            del out[key]
            mirror = keys.KILO_MIRRORS.get(key)
            if mirror is not None:
                out.pop(mirror, None)
    return out


def desire_site(
    site: Site,
    members: Sequence[Member],
    cluster: Cluster,
    reference: int | None,
    outsiders: Sequence[NodeState] = (),
    leaving: Sequence[NodeState] = (),
) -> SiteDesire:
    """Desired state for every member of one site, with Kilo's leader now and after.

    Kilo elects a leader per location among every Ready node it places there, not only
    among the site's members: ``outsiders`` are live nodes in this location that the plan
    leaves untouched (claimed by no site, or by two), which stay candidates after apply;
    ``leaving`` are members of other sites still in this location, which apply moves out.
    """
    spec = cluster.spec
    kilo = {m.node.name: kilo_annotations(site, m, spec.mesh.port) for m in members}
    here_now = [m.node for m in members if kilo_location(m.node) == site.name]
    now = [kilo_node(n, n.annotations, reference) for n in (*here_now, *outsiders, *leaving)]
    after = [kilo_node(n, n.annotations, reference) for n in outsiders]
    for member in members:
        annotations = after_apply(member.node, kilo[member.node.name])
        if kilo_location(member.node, annotations) == site.name:  # unless Talos pins another
            after.append(kilo_node(member.node, annotations, reference))
    current, predicted = find_leader(now), find_leader(after)
    leader_ip = predicted.internal_ip if predicted else None
    result = SiteDesire(
        leader=LeaderPrediction(
            site=site.name,
            current=current.name if current else None,
            predicted=predicted.name if predicted else None,
            predicted_internal_ip=leader_ip,
        )
    )
    # The agent's settings differ only between the leader and the others: render each once.
    agents: dict[bool, tuple[str, int]] = {}
    for member in members:
        labels, annotations, taints = _merged(site, member)
        is_leader = predicted is not None and predicted.name == member.node.name
        if is_leader not in agents:
            routes, unresolved = routes_for(site.spec.routes, is_leader, leader_ip)
            agents[is_leader] = agent_annotation(cluster, routes), unresolved
        agent, unresolved = agents[is_leader]
        if unresolved:
            result.warnings.append(
                f"{member.node.name}: {unresolved} route(s) via the leader left out: no "
                "leader with an internal IP is predicted for this site"
            )
        if len(agent) > AGENT_ANNOTATION_LIMIT:
            result.errors.append(
                f"site {site.name!r}: the {keys.TOPOCTL_AGENT} annotation for "
                f"{member.node.name} would be {len(agent)} bytes, over the "
                f"{AGENT_ANNOTATION_LIMIT}-byte share of the 256 KiB Kubernetes allows for "
                "all annotations of a Node - declare fewer or wider routes"
            )
            continue
        annotations = {**annotations, **kilo[member.node.name], keys.TOPOCTL_AGENT: agent}
        result.nodes.append(
            DesiredNode(
                name=member.node.name,
                site=site.name,
                annotations=annotations,
                labels=labels,
                taints=taints,
                kilo=kilo[member.node.name],
            )
        )
    return result


def routes_for(
    routes: Sequence[Route], is_leader: bool, leader_ip: str | None
) -> tuple[list[dict[str, Any]], int]:
    """The node's routes with ``via: leader`` resolved; also how many could not be."""
    out: list[dict[str, Any]] = []
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
        entry: dict[str, Any] = {"to": route.to, "table": route.table_id, "metric": route.metric}
        if via is not None:
            entry["via"] = via
        if route.dev is not None:
            entry["dev"] = route.dev
        if route.onlink:
            entry["onlink"] = True
        out.append(entry)
    return out, unresolved


def agent_annotation(cluster: Cluster, routes: list[dict[str, Any]]) -> str:
    """Compact, canonical JSON the node agent reads (and nothing else)."""
    spec = cluster.spec
    payload = {
        "v": AGENT_FORMAT,
        "externalIPTarget": spec.addresses.external_ip_target,
        "internalIPTarget": spec.addresses.internal_ip_target,
        "uninitializedTaint": spec.uninitialized_taint,
        "protocol": spec.routes.protocol,
        "routes": sorted(routes, key=lambda r: (r["table"], r["to"], r["metric"])),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))
