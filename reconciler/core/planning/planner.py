"""One planner for every caller: the whole cluster, one site, or one node after a 409.

A :class:`Planner` holds the topology and an index of the live nodes (each node's
claims, which depend on the node alone, and Kilo's locations). :meth:`plan_site` is the
one code path; :meth:`plan_all` is every site's answer put together (:meth:`assemble`)
with what only the whole cluster shows (unassigned nodes, nodes claimed twice), and the
controller assembles the site plans its reconciles made, planning none twice.
:meth:`updated` gives a planner for a cluster where some nodes changed, re-indexing only
those, so the 409 re-plan and the controller's watch-driven re-plans cost one site.

Per site: each member's diff is computed without the agent settings; the projected
state (:func:`project`) of every node Kilo will place in the location - members,
members of other sites still there, nodes git cannot move because Talos owns the key,
outsiders carrying the location - gives the leader Kilo will elect; then the agent
settings, with ``via: leader`` resolved to that leader, complete each member's plan.
Where no leader can be predicted (:mod:`.leaderless`), the routes that depend on it stand
on each member as last published (:func:`~.desired.held_routes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import msgspec

from reconciler.core.kilo.freshness import Reference, TimeSource, reference
from reconciler.core.kilo.leader import PER_NODE, find_leader
from reconciler.core.kilo.node import KiloNode, kilo_location, kilo_node
from reconciler.core.planning.desired import (
    DesiredNode,
    agent_annotation,
    desired_node,
    held_routes,
    leader_gateways,
    location_ips_anchor,
    routes_for,
)
from reconciler.core.planning.diff import diff_node, with_agent
from reconciler.core.planning.leaderless import gateways_text, not_leading, some, why_unknown
from reconciler.core.planning.membership import ClaimIndex, Claims, Member, claims_of
from reconciler.core.planning.plan import LeaderPrediction, NodePlan, Plan, SitePlan
from reconciler.core.planning.project import project
from reconciler.model import keys
from reconciler.model.names import MAX_ANNOTATIONS_BYTES, annotations_bytes
from reconciler.model.settings import MAX_BYTES, MAX_ROUTES
from reconciler.model.state import NodeState
from reconciler.model.topology import Site, Topology


@dataclass
class _Memo:
    """Per-call cache: each member's desired state, its diff without agent settings and
    its projection; how Kilo reads each node once the plan is applied; and the agent
    settings each member got."""

    base: dict[str, tuple[DesiredNode, NodePlan, NodeState]] = field(default_factory=dict)
    kilo: dict[str, KiloNode] = field(default_factory=dict)
    agent: dict[str, str] = field(default_factory=dict)


class Planner:
    """Plans a topology against a set of live nodes. Immutable once built."""

    def __init__(
        self,
        topology: Topology,
        nodes: Iterable[NodeState],
        now: int | None = None,
        source: TimeSource = TimeSource.CLOCK,
    ) -> None:
        """``now`` (unix seconds, from ``source``) times Kilo's ``last-seen`` freshness;
        without it the median check-in of the nodes stands in (:func:`reference`)."""
        self.topology = topology
        self._sites: dict[str, Site] = {s.name: s for s in topology.sites}
        self._index = ClaimIndex(topology.sites)
        self._nodes: dict[str, NodeState] = {}
        self._claims: dict[str, Claims] = {}
        self._members: dict[str, set[str]] = {s.name: set() for s in topology.sites}
        self._located: dict[str, set[str]] = {}
        for node in nodes:
            self._add(node)
        self.reference = reference(self._nodes.values(), now, source)

    # --- the index ---

    def _add(self, node: NodeState) -> None:
        claims = claims_of(self._index, node)
        self._nodes[node.name] = node
        self._claims[node.name] = claims
        if claims.member is not None:
            self._members[claims.member.site.name].add(node.name)
        self._located.setdefault(kilo_location(node), set()).add(node.name)

    def _drop(self, name: str) -> None:
        node = self._nodes.pop(name, None)
        if node is None:
            return
        member = self._claims.pop(name).member
        if member is not None:
            self._members[member.site.name].discard(name)
        self._located[kilo_location(node)].discard(name)

    def updated(
        self, fresh: Iterable[NodeState] = (), gone: Iterable[str] = (), at: int | None = None
    ) -> Planner:
        """A planner for the same topology where ``fresh`` nodes replace (or join) theirs
        and ``gone`` nodes left; only those are indexed again. ``at`` moves ``now`` (the
        planner's clock); without it a given time stays, and one derived from the nodes
        is derived again."""
        other = Planner.__new__(Planner)
        other.topology = self.topology
        other._sites, other._index = self._sites, self._index
        other._nodes, other._claims = dict(self._nodes), dict(self._claims)
        other._members = {k: set(v) for k, v in self._members.items()}
        other._located = {k: set(v) for k, v in self._located.items()}
        fresh = list(fresh)
        for name in [*gone, *(n.name for n in fresh)]:
            other._drop(name)
        for node in fresh:
            other._add(node)
        if at is not None:
            other.reference = Reference(at, TimeSource.CLOCK)
        elif self.reference.source in (TimeSource.CLOCK, TimeSource.CAPTURED):
            other.reference = self.reference
        else:  # derived from the nodes: derived again, as a planner built anew would
            other.reference = reference(other._nodes.values(), None)
        return other

    @property
    def nodes(self) -> Mapping[str, NodeState]:
        """The live nodes this planner plans against, by name."""
        return self._nodes

    def site_of(self, name: str) -> str | None:
        """The one site that claims the node, if exactly one does."""
        claims = self._claims.get(name)
        member = claims.member if claims is not None else None
        return member.site.name if member is not None else None

    def sites_touched_by(self, node: NodeState) -> set[str]:
        """The sites whose plan may depend on ``node``: those claiming it and the one
        whose location it carries (a node moving between sites touches both)."""
        out = {m.site.name for m in claims_of(self._index, node).members}
        location = kilo_location(node)
        if location in self._sites:
            out.add(location)
        return out

    # --- planning ---

    def plan_node(self, name: str) -> NodePlan | None:
        """The plan for one node (its site planned); None when no site alone claims it."""
        site = self.site_of(name)
        if site is None:
            return None
        return next((n for n in self.plan_site(site).nodes if n.node == name), None)

    def plan_site(self, name: str, memo: _Memo | None = None) -> SitePlan:
        """One site's plan: its members' changes, leader prediction, warnings, errors."""
        memo = memo or _Memo()
        site = self._sites[name]
        members = [self._member(n) for n in sorted(self._members[name])]
        for member in members:
            self._base(member, memo)
        leader = self._predict(site, memo)
        per_node = self.topology.cluster.spec.mesh.granularity in PER_NODE
        held = bool(leader.unknown)  # no prediction: what was published stands
        leader_ip = leader.predicted_internal_ip
        warnings: list[str] = []
        errors: list[str] = []
        nodes: list[NodePlan] = []
        agents: dict[bool, tuple[str, int, int]] = {}  # leaders and others differ: once each
        oversize: list[str] = []
        node_errors: list[str] = []  # from live state: they hold back their node alone
        gateways: set[str] = set()
        for member in members:
            node = member.node
            _desired, plan, projected = memo.base[node.name]
            if held:
                routes, unresolved = held_routes(
                    site.spec.routes, node.annotations.get(keys.TOPOCTL_AGENT)
                )
                gateways |= leader_gateways(site.spec.routes, routes)
                agent, count = agent_annotation(self.topology.cluster, routes), len(routes)
            else:
                is_leader = per_node or leader.predicted == node.name
                if is_leader not in agents:
                    routes, unresolved = routes_for(site.spec.routes, is_leader, leader_ip)
                    agent = agent_annotation(self.topology.cluster, routes)
                    agents[is_leader] = agent, unresolved, len(routes)
                agent, unresolved, count = agents[is_leader]
            if unresolved:
                warnings.append(
                    f"{node.name}: {unresolved} route(s) via the leader left out: no "
                    "leader with an internal IP is predicted for this site"
                    + (", and none was published on this node before" if held else "")
                )
            if len(agent) > MAX_BYTES or count > MAX_ROUTES:
                oversize.append(f"{node.name} ({len(agent)} bytes, {count} routes)")
                continue
            final = with_agent(plan, node, agent)
            size = _annotations_after(node, final, projected, agent)
            if size > MAX_ANNOTATIONS_BYTES:
                node_errors.append(
                    f"{node.name}: its annotations would hold {size} bytes of keys and values "
                    f"once this plan is applied, and Kubernetes refuses more than "
                    f"{MAX_ANNOTATIONS_BYTES} (256 KiB) on one object: nothing is written to "
                    "it - make room among its other annotations"
                )
                continue
            memo.agent[node.name] = agent
            errors += self._drift(member, plan, projected)
            nodes.append(final)
        if gateways:
            standing = gateways_text(gateways, (self._nodes[n] for n in memo.kilo))
            leader = replace(leader, held=standing)
        warnings += self._own_segments(site, members, memo)
        if oversize:
            errors.append(
                f"site {site.name!r}: the {keys.TOPOCTL_AGENT} annotation would be over the "
                f"{MAX_BYTES}-byte share of the 256 KiB Kubernetes allows for all annotations "
                f"of a Node, or over {MAX_ROUTES} routes (the node agent refuses either), on "
                f"{len(oversize)} node(s): {some(oversize)} - declare fewer or wider routes"
            )
        return SitePlan(
            site=name,
            nodes=tuple(nodes),
            leader=leader if members else None,
            members=tuple(m.node.name for m in members),
            pending=tuple(n.name for n in site.spec.nodes if n.name not in self._nodes),
            warnings=tuple(warnings),
            errors=tuple(errors),
            node_errors=tuple(node_errors),
        )

    def plan_all(self) -> Plan:
        """The whole plan: every site's, and what only the whole cluster shows."""
        memo = _Memo()
        return self.assemble([self.plan_site(s.name, memo) for s in self.topology.sites])

    def assemble(self, site_plans: Sequence[SitePlan]) -> Plan:
        """The whole plan from site plans already made (nothing is planned again), with
        what only the whole cluster shows: unassigned nodes, nodes claimed twice, pool
        overlaps, Kilo's granularity."""
        cluster = self.topology.cluster
        warnings = [d.brief for d in self.topology.warnings]
        errors: list[str] = []
        for sp in site_plans:
            warnings += sp.warnings
            errors += (*sp.errors, *sp.node_errors)
        for node, claims in sorted(self._claims.items()):
            if claims.pool_overlaps:
                warnings.append(
                    f"{node}: selected by several pools ({', '.join(claims.pool_overlaps)}); "
                    "the first wins"
                )
        warnings += self._granularity_warning()
        unassigned = tuple(sorted(n for n, c in self._claims.items() if not c.members))
        policy = cluster.spec.unassigned_nodes
        if unassigned and policy != "ignore":
            message = f"{len(unassigned)} live node(s) claimed by no site: {some(unassigned)}"
            (errors if policy == "error" else warnings).append(message)
        members = {n: sp.site for sp in site_plans for n in sp.members}
        return Plan(
            cluster=cluster.metadata.name,
            nodes=tuple(n for sp in site_plans for n in sp.nodes),
            leaders=tuple(sp.leader for sp in site_plans if sp.leader is not None),
            claimed_twice={
                n: tuple(m.site.name for m in c.members)
                for n, c in sorted(self._claims.items())
                if len(c.members) > 1
            },
            pending={sp.site: sp.pending for sp in site_plans if sp.pending},
            unassigned=unassigned,
            warnings=tuple(warnings),
            errors=tuple(errors),
            observed={n.name: (n.uid, n.resource_version) for n in self._nodes.values()},
            members=members,
            pools=self._pools(members),
            sites=tuple(sorted(self._sites)),
            agent_problems=self._agent_problems(members),
            now=self.reference,
        )

    def desired(self) -> dict[str, DesiredNode]:
        """Every member's desired state, agent settings included."""
        memo = _Memo()
        for site in self.topology.sites:
            self.plan_site(site.name, memo)
        return {
            name: msgspec.structs.replace(
                desired, annotations={**desired.annotations, keys.TOPOCTL_AGENT: agent}
            )
            for name, (desired, _plan, _projected) in sorted(memo.base.items())
            if (agent := memo.agent.get(name)) is not None
        }

    # --- the pieces ---

    def _member(self, name: str) -> Member:
        member = self._claims[name].member
        assert member is not None
        return member

    def _base(self, member: Member, memo: _Memo) -> tuple[DesiredNode, NodePlan, NodeState]:
        """The member's desired state, its diff without agent settings, and the node as
        it will be."""
        name = member.node.name
        found = memo.base.get(name)
        if found is None:
            cluster = self.topology.cluster
            site = member.site
            location_ips = cluster.spec.mesh.granularity not in PER_NODE or name == (
                location_ips_anchor(site, self._members[site.name])
            )
            desired = desired_node(site, member, cluster, location_ips)
            plan = diff_node(desired, member.node)
            found = memo.base[name] = (desired, plan, project(member.node, plan))
        return found

    def _predict(self, site: Site, memo: _Memo) -> LeaderPrediction:
        """Kilo's leader of the location now, and once every plan is applied; or why no
        leader can be predicted (:mod:`.leaderless`), naming what keeps each node from
        leading."""
        granularity = self.topology.cluster.spec.mesh.granularity
        if granularity in PER_NODE:
            return LeaderPrediction(site.name, None, None, None, granularity)
        here = self._located.get(site.name, set())
        candidates = here | self._members[site.name]
        now: list[KiloNode] = []
        after: list[tuple[KiloNode, NodeState]] = []
        for name in sorted(candidates):
            live = self._nodes[name]
            member = self._claims[name].member
            projected = self._base(member, memo)[2] if member is not None else live
            if name in here:
                now.append(
                    self._kilo(name, live, memo)
                    if projected is live
                    else kilo_node(live, self.reference.at)
                )
            if kilo_location(projected) == site.name:  # unless Talos pins another
                after.append((self._kilo(name, projected, memo), projected))
        current, predicted = find_leader(now), find_leader([k for k, _ in after])
        located = [self._nodes[n] for n in sorted(candidates)]
        members = [self._nodes[n] for n in sorted(self._members[site.name])]
        at = self.reference.at
        unknown = why_unknown(
            located, members, site.spec.routes, at, predicted.name if predicted else None
        )
        if unknown is None and predicted is not None:
            return LeaderPrediction(
                site.name,
                current.name if current else None,
                predicted.name,
                predicted.internal_ip,
            )
        assert unknown is not None
        return LeaderPrediction(
            site.name,
            None if unknown.kilo_unheard or current is None else current.name,
            None,
            None,
            unknown=unknown.why,
            not_ready=not_leading(after, at),
            silent_for=unknown.silent_for,
        )

    def _kilo(self, name: str, projected: NodeState, memo: _Memo) -> KiloNode:
        """How Kilo reads the node once the plan is applied (``projected``), once a call."""
        found = memo.kilo.get(name)
        if found is None:
            found = memo.kilo[name] = kilo_node(projected, self.reference.at)
        return found

    def _own_segments(self, site: Site, members: list[Member], memo: _Memo) -> list[str]:
        """Members without an internal IP are segments of their own under ``location``
        granularity; each carries the site's allowed-location-ips, which then overlap the
        location's own, and Kilo drops the overlap by sort order (pkg/mesh/topology.go)."""
        if (
            not site.spec.allowed_location_ips
            or self.topology.cluster.spec.mesh.granularity in PER_NODE
        ):
            return []
        alone = [
            m.node.name
            for m in members
            if self._kilo(m.node.name, memo.base[m.node.name][2], memo).internal_ip is None
        ]
        if not alone:
            return []
        return [
            f"site {site.name!r}: {len(alone)} member(s) without an internal IP ({some(alone)}) "
            "form Kilo segments of their own, so their allowed-location-ips overlap the "
            "location's and Kilo routes them through only one segment - give them an "
            "internalIP"
        ]

    def _drift(self, member: Member, plan: NodePlan, projected: NodeState) -> list[str]:
        """A member whose label writes would change which site or pool claims it: the
        next plan would undo this one, and it would never converge."""
        selected_by = self._index.selector_labels
        if not any(c.kind == "label" and c.key in selected_by for c in plan.writes):
            return []  # no selector reads a label this plan writes: the claims stay
        before = _claim(self._claims[member.node.name])
        after = _claim(claims_of(self._index, projected))
        if before == after:
            return []
        return [
            f"{member.node.name}: the labels this plan writes would move it from {before} to "
            f"{after}, and the next plan would undo this one - make the pool selectors and "
            "the labels sites and pools set agree"
        ]

    def _granularity_warning(self) -> list[str]:
        """Kilo writes its --mesh-granularity on every node: say when git thinks otherwise."""
        wanted = self.topology.cluster.spec.mesh.granularity
        differ = sorted(
            n.name
            for n in self._nodes.values()
            if n.annotations.get(keys.KILO_GRANULARITY, wanted) != wanted
        )
        if not differ:
            return []
        seen = self._nodes[differ[0]].annotations[keys.KILO_GRANULARITY]
        return [
            f"{len(differ)} node(s) report Kilo's granularity {seen!r} ({some(differ)}), but "
            f"mesh.granularity is {wanted!r}: leader predictions follow the topology, and "
            "will be wrong until the two agree"
        ]

    def _pools(self, members: Mapping[str, str]) -> dict[str, str]:
        """The pool of each member a pool claims and its site does not list by name."""
        out = {}
        for name in sorted(members):
            member = self._claims[name].member
            if member is not None and member.named is None and member.pool is not None:
                out[name] = member.pool.name
        return out

    def _agent_problems(self, members: Mapping[str, str]) -> dict[str, str]:
        """Members whose node agent reports TopologyReady False."""
        out = {}
        for name in sorted(members):
            cond = self._nodes[name].condition(keys.CONDITION_AGENT)
            if cond is not None and cond.status != "True":
                out[name] = f"{cond.reason}: {cond.message}" if cond.message else cond.reason
        return out


def _annotations_after(live: NodeState, plan: NodePlan, projected: NodeState, agent: str) -> int:
    """The bytes Kubernetes counts against its 256 KiB once ``plan`` is applied. A plan
    that writes nothing leaves the node as the API server accepted it; the bound (the
    projection without the agent settings, plus them) is exact enough unless it is over,
    and then :func:`project` says exactly."""
    if not plan.writes:
        return 0
    bound = annotations_bytes(projected.annotations) + len(keys.TOPOCTL_AGENT) + len(agent)
    if bound <= MAX_ANNOTATIONS_BYTES:
        return bound
    return annotations_bytes(project(live, plan).annotations)


def _claim(claims: Claims) -> str:
    member = claims.member
    if member is not None:
        return f"site {member.site.name}" + (f" pool {member.pool.name}" if member.pool else "")
    if claims.members:
        sites = ", ".join(m.site.name for m in claims.members)
        return f"sites {sites} (claimed twice)"
    return "no site"
