"""Which live nodes belong to which site: by name, or by a pool's selector."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

import msgspec

from reconciler.model.state import NodeState
from reconciler.model.topology import Pool, Site, SiteNode


class Member(msgspec.Struct, frozen=True):
    """A live node claimed by a site: as a named node, through a pool, or both."""

    node: NodeState
    site: Site
    named: SiteNode | None
    pool: Pool | None


def selects(pool: Pool, node: NodeState) -> bool:
    """Whether the pool's selector claims the node (all conditions must hold)."""
    selector = pool.selector
    if selector.name_pattern and not fnmatchcase(node.name, selector.name_pattern):
        return False
    return all(node.labels.get(k) == v for k, v in selector.match_labels.items())


class Claims(msgspec.Struct, frozen=True):
    """Which sites claim one node. A node's claims depend on the node alone."""

    members: tuple[Member, ...] = ()
    pool_overlaps: tuple[str, ...] = ()  # "site/pool" when several pools of a site match

    @property
    def member(self) -> Member | None:
        """The one claim, when exactly one site claims the node."""
        return self.members[0] if len(self.members) == 1 else None


def claims_of(index: ClaimIndex, node: NodeState) -> Claims:
    """Every site's claim on ``node``, in site order."""
    members: list[Member] = []
    overlaps: tuple[str, ...] = ()
    for site, listed, candidates in index.candidates(node):
        pools = [p for p in candidates if selects(p, node)]
        if len(pools) > 1:
            overlaps = tuple(f"{site.name}/{p.name}" for p in pools)
        if listed is not None or pools:
            members.append(Member(node, site, listed, pools[0] if pools else None))
    return Claims(tuple(members), overlaps)


_WILDCARDS = re.compile(r"[*?\[]")


class ClaimIndex:
    """Which sites and pools could claim a node, without trying every pool on every node.

    Named nodes are found by name; a pool by one of its ``matchLabels`` pairs, else by the
    literal start of its ``namePattern``. Candidates still go through :func:`selects`, so
    the index only saves work: the result is what trying every pool would give.
    """

    def __init__(self, sites: tuple[Site, ...]) -> None:
        self.sites = sites
        self.named: dict[str, list[tuple[int, SiteNode]]] = {}
        self.by_label: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.by_prefix: dict[str, list[tuple[int, int]]] = {}
        self.everywhere: list[tuple[int, int]] = []
        self.selector_labels = frozenset(
            key for site in sites for pool in site.spec.pools for key in pool.selector.match_labels
        )  # the label keys any pool selects on
        for s, site in enumerate(sites):
            for listed in site.spec.nodes:
                self.named.setdefault(listed.name, []).append((s, listed))
            for p, pool in enumerate(site.spec.pools):
                selector = pool.selector
                if selector.match_labels:
                    pair = min(selector.match_labels.items())
                    self.by_label.setdefault(pair, []).append((s, p))
                elif selector.name_pattern is not None:
                    prefix = _WILDCARDS.split(selector.name_pattern, maxsplit=1)[0]
                    self.by_prefix.setdefault(prefix, []).append((s, p))
                else:
                    self.everywhere.append((s, p))
        self.prefix_lengths = sorted({len(prefix) for prefix in self.by_prefix})

    def candidates(self, node: NodeState) -> list[tuple[Site, SiteNode | None, list[Pool]]]:
        """In site order: each site that may claim the node, its entry, candidate pools."""
        found: set[tuple[int, int]] = set(self.everywhere)
        for pair in node.labels.items():
            found.update(self.by_label.get(pair, ()))
        name = node.name
        for length in self.prefix_lengths:
            if length > len(name):
                break
            found.update(self.by_prefix.get(name[:length], ()))
        listed = dict(self.named.get(name, ()))
        per_site: dict[int, list[Pool]] = {s: [] for s in listed}
        for s, p in sorted(found):
            per_site.setdefault(s, []).append(self.sites[s].spec.pools[p])
        return [(self.sites[s], listed.get(s), per_site[s]) for s in sorted(per_site)]
