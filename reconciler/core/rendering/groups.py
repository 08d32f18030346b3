"""Nodes with identical changes, shown once: "14 nodes of pool workers: +location, ...".

A plan for a pool of hundreds of nodes repeats the same lines for each of them. Here the
nodes of one site and pool whose changes read the same (every line a plan shows, the
reasons included) form one group, shown once with its node names; nothing a plan shows
is lost, only repeated less. The same goes for what a pull request changes in the
desired state (``--base``): nodes whose deltas read the same form one group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.core.planning.plan import Change, DesiredDelta, NodePlan
from reconciler.core.rendering.lines import SIGNS, change_line, shown_value

NO_SITE = "(no site)"  # a node no site claims at the head of a change: its deltas only


@dataclass(frozen=True, slots=True)
class Group:
    """Nodes of one site (and pool) that show the same lines."""

    site: str
    pool: str | None  # None: nodes the site lists by name
    nodes: tuple[str, ...]
    lines: tuple[str, ...]  # what each of them shows, in order
    shape: str  # the lines in a few words: "+location, +keepalive, ~agent"

    @property
    def label(self) -> str:
        """ "node fsn1-gw-1", "14 nodes of pool fsn1/workers", "2 listed nodes of fsn1"."""
        if len(self.nodes) == 1:
            return f"node {self.nodes[0]}"
        if self.pool is not None:
            return f"{len(self.nodes)} nodes of pool {self.site}/{self.pool}"
        if self.site == NO_SITE:
            return f"{len(self.nodes)} nodes no site claims"
        return f"{len(self.nodes)} listed nodes of {self.site}"


def some(names: Sequence[str], shown: int = 10) -> str:
    """``a, b, c and 11 more``: the first names of a long list, and how many are left."""
    rest = len(names) - shown
    if rest <= 1:  # "and 1 more" is no shorter than the name
        return ", ".join(names)
    return ", ".join(names[:shown]) + f" and {rest} more"


def change_lines(change: Change) -> tuple[str, ...]:
    """The lines a plan shows for one change: the change, and its reason unless it is
    the plain one (a declared value set or updated)."""
    line = change_line(change)
    if change.verb not in ("set", "update") and change.why:
        return (line, f"# {change.why}")
    return (line,)


def short_key(kind: str, key: str) -> str:
    """A key as a word: ``location``, ``keepalive``, ``label zone``, ``taint dedicated``."""
    name = key.split(":", 1)[0] if kind == "taint" else key
    name = name.rsplit("/", 1)[-1]
    name = {"persistent-keepalive": "keepalive"}.get(name, name)
    if kind == "annotation":
        return name
    return f"{kind} {name}"


def change_shape(changes: Iterable[Change]) -> str:
    """Each change as its sign and key's word: ``+location, +keepalive, ~agent``."""
    return ", ".join(f"{SIGNS[c.verb]}{short_key(c.kind, c.key)}" for c in changes)


def delta_line(delta: DesiredDelta) -> str:
    """One key of the desired state, before and after the change to git."""
    return (
        f"{delta.kind} {delta.key}: {shown_value(delta.key, delta.base)} -> "
        f"{shown_value(delta.key, delta.head)}"
    )


def delta_shape(deltas: Iterable[DesiredDelta]) -> str:
    """``+location, ~keepalive, -label zone``: added, changed, dropped keys."""
    out = []
    for d in deltas:
        sign = "+" if d.base is None else "-" if d.head is None else "~"
        out.append(f"{sign}{short_key(d.kind, d.key)}")
    return ", ".join(out)


def _grouped(
    rows: Iterable[tuple[str, str, tuple[str, ...], str]], pools: Mapping[str, str]
) -> list[Group]:
    """Rows (site, node, lines, shape) in order, put together by site, pool and lines;
    each group where its first node was."""
    found: dict[tuple[str, str | None, tuple[str, ...]], list[str]] = {}
    shapes: dict[tuple[str, str | None, tuple[str, ...]], str] = {}
    for site, node, lines, shape in rows:
        key = (site, pools.get(node), lines)
        found.setdefault(key, []).append(node)
        shapes.setdefault(key, shape)
    return [
        Group(site, pool, tuple(names), lines, shapes[(site, pool, lines)])
        for (site, pool, lines), names in found.items()
    ]


def plan_groups(nodes: Iterable[NodePlan], pools: Mapping[str, str]) -> list[Group]:
    """The node plans with changes, grouped; in the plans' order."""
    return _grouped(
        (
            (
                n.site,
                n.node,
                tuple(line for c in n.changes for line in change_lines(c)),
                change_shape(n.changes),
            )
            for n in nodes
            if n.changes
        ),
        pools,
    )


def delta_groups(
    deltas: Iterable[DesiredDelta], sites: Mapping[str, str], pools: Mapping[str, str]
) -> list[Group]:
    """What a change to git does to each node's desired state, grouped; by site (nodes
    no site claims at the head last), then in the deltas' order."""
    by_node: dict[str, list[DesiredDelta]] = {}
    for d in deltas:
        by_node.setdefault(d.node, []).append(d)
    rows = sorted(
        (
            (sites.get(node, NO_SITE), node, tuple(map(delta_line, ds)), delta_shape(ds))
            for node, ds in by_node.items()
        ),
        key=lambda row: (row[0] == NO_SITE, row[0], row[1]),
    )
    return _grouped(rows, pools)
