"""A plan's lifecycle part: the facts each site gives :func:`lifecycle.decide`, and the
decisions as plan values.

Pure. The facts come from the plan itself (its members and the leader it predicts, so
the leader protected from deletion is the one Kilo will elect) and from the topology
(which members are listed by name, each site's policy). A plan made without probes
still names the candidates: they are withheld as "not probed", and the vantage-point
guard (which needs probes of Ready nodes) is left out, since it would only repeat that.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.core.kilo.leader import PER_NODE
from reconciler.core.lifecycle.guards import MemberFacts, SiteFacts, WithheldReason
from reconciler.core.lifecycle.rules import Decisions, Delete, Observations, decide
from reconciler.core.planning.plan import LifecyclePlan, NodeDeletion, Plan, Withheld
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology


def site_facts(topology: Topology, plan: Plan, nodes: Mapping[str, NodeState]) -> list[SiteFacts]:
    """Every site's members (as the plan assigns them) and predicted leader."""
    leaders = {p.site: p for p in plan.leaders}
    by_site: dict[str, list[str]] = {}
    for name, site_name in plan.members.items():
        by_site.setdefault(site_name, []).append(name)
    facts = []
    for site in topology.sites:
        listed = {n.name for n in site.spec.nodes}
        prediction = leaders.get(site.name)
        members = tuple(
            MemberFacts(nodes[name], named=name in listed)
            for name in sorted(by_site.get(site.name, ()))
            if name in nodes
        )
        facts.append(
            SiteFacts(
                name=site.name,
                policy=site.spec.lifecycle,
                members=members,
                leader=prediction.predicted if prediction else None,
                pinned=tuple(site.spec.leader),
                per_node=prediction is not None and prediction.granularity in PER_NODE,
            )
        )
    return facts


def lifecycle_plan(
    topology: Topology,
    plan: Plan,
    nodes: Mapping[str, NodeState],
    seen: Observations,
    *,
    probed: bool,
) -> LifecyclePlan | None:
    """The plan's lifecycle decisions; None when no site deletes unreachable nodes."""
    if not any(site.spec.lifecycle.delete_unreachable for site in topology.sites):
        return None
    decisions = decide(site_facts(topology, plan, nodes), topology.cluster.spec.lifecycle, seen)
    return as_plan(decisions, probed=probed)


def as_plan(decisions: Decisions, *, probed: bool) -> LifecyclePlan:
    """Decisions as plan values: deletions, then what is withheld and why."""
    deletions = tuple(
        NodeDeletion(d.node, d.site, d.uid, d.resource_version, d.text(), d.evidence())
        for d in decisions.nodes
        if isinstance(d, Delete)
    )
    withheld: list[Withheld] = []
    cluster = decisions.cluster
    if cluster is not None and (probed or cluster.reason is not WithheldReason.VANTAGE_CUT_OFF):
        withheld.append(Withheld("", "", cluster.reason.value, cluster.text))
    for site, guard in sorted(decisions.sites.items()):
        withheld.append(Withheld("", site, guard.reason.value, guard.text))
    withheld += [Withheld(d.node, d.site, d.reason.value, d.text) for d in decisions.withheld]
    return LifecyclePlan(probed=probed, deletions=deletions, withheld=tuple(withheld))
