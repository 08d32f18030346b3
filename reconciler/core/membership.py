"""Which live nodes belong to which site: by name, or by a pool's selector."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from reconciler.model.state import NodeState
from reconciler.model.topology import Pool, Site, SiteNode


@dataclass(frozen=True, slots=True)
class Member:
    """A live node claimed by a site: as a named node, through a pool, or both."""

    node: NodeState
    site: Site
    named: SiteNode | None
    pool: Pool | None


@dataclass(frozen=True)
class Membership:
    """The claims of every site over the live nodes."""

    members: dict[str, Member] = field(default_factory=dict)
    by_site: dict[str, list[Member]] = field(default_factory=dict)
    conflicts: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> sites
    pending: dict[str, tuple[str, ...]] = field(default_factory=dict)  # site -> names
    unassigned: tuple[NodeState, ...] = ()
    pool_overlaps: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> pools


def selects(pool: Pool, node: NodeState) -> bool:
    """Whether the pool's selector claims the node (all conditions must hold)."""
    selector = pool.selector
    if selector.name_pattern and not fnmatchcase(node.name, selector.name_pattern):
        return False
    return all(node.labels.get(k) == v for k, v in selector.match_labels.items())


def assign(sites: Iterable[Site], nodes: Iterable[NodeState]) -> Membership:
    """Claim every live node; a node claimed by two sites is a conflict and left alone."""
    sites = tuple(sites)
    live = {node.name: node for node in nodes}
    named: dict[str, dict[str, SiteNode]] = {
        s.name: {n.name: n for n in s.spec.nodes} for s in sites
    }
    claims: dict[str, list[Member]] = {}
    overlaps: dict[str, tuple[str, ...]] = {}
    for node in live.values():
        for site in sites:
            listed = named[site.name].get(node.name)
            pools = [p for p in site.spec.pools if selects(p, node)]
            if len(pools) > 1:
                overlaps[node.name] = tuple(f"{site.name}/{p.name}" for p in pools)
            if listed is not None or pools:
                member = Member(node, site, listed, pools[0] if pools else None)
                claims.setdefault(node.name, []).append(member)
    members = {name: c[0] for name, c in claims.items() if len(c) == 1}
    by_site: dict[str, list[Member]] = {s.name: [] for s in sites}
    for member in sorted(members.values(), key=lambda m: m.node.name):
        by_site[member.site.name].append(member)
    return Membership(
        members=members,
        by_site=by_site,
        conflicts={
            n: tuple(m.site.name for m in c) for n, c in sorted(claims.items()) if len(c) > 1
        },
        pending={
            s.name: missing
            for s in sites
            if (missing := tuple(n.name for n in s.spec.nodes if n.name not in live))
        },
        unassigned=tuple(
            sorted((n for n in live.values() if n.name not in claims), key=lambda n: n.name)
        ),
        pool_overlaps=overlaps,
    )
