"""Pools guessed from the nodes of a site: a shared name prefix (``fsn1-worker-``) and,
where the nodes carry one, a shared instance type (``node.kubernetes.io/instance-type``),
as autoscaled groups look.

A guess is written as a pool only when its selector claims exactly those nodes among all
live nodes (none of another site, none left out) and it has at least two; otherwise it is
proposed as a YAML comment with the doubt. Control-plane nodes are never put in a pool.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence

from reconciler.core.adoption.values import PoolGuess
from reconciler.core.planning.membership import selects
from reconciler.model import keys
from reconciler.model.names import DNS1123_LABEL
from reconciler.model.state import NodeState
from reconciler.model.topology import Pool

INSTANCE_TYPE = "node.kubernetes.io/instance-type"
_TRAILING_DIGITS = re.compile(r"[0-9]+$")
MIN_GENERATED = 4  # a suffix this long looks generated (autoscaler names): worth a proposal
MIN_PREFIX = 3


def name_prefix(name: str) -> str:
    """The part of a node name a group shares: up to the last '-' (``fsn1-worker-``), or
    the name without trailing digits (``worker``); '' when that leaves fewer than
    :data:`MIN_PREFIX` characters (``w-1``, ``n1``: too short to tell a group)."""
    head, dash, tail = name.rpartition("-")
    if dash and head and tail:
        prefix = head + dash
    else:
        stripped = _TRAILING_DIGITS.sub("", name)
        prefix = stripped if stripped != name else ""
    return prefix if len(prefix.rstrip("-")) >= MIN_PREFIX else ""


def is_control_plane(node: NodeState) -> bool:
    """Whether the node carries a control-plane role label."""
    return keys.LABEL_CONTROL_PLANE in node.labels or keys.LABEL_MASTER in node.labels


def _pool_name(prefix: str, taken: set[str]) -> str:
    base = prefix.rstrip("-.").replace(".", "-")[:50] or "pool"
    if not DNS1123_LABEL.fullmatch(base):
        base = "pool"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def guess_pools(members: Sequence[NodeState], everyone: Iterable[NodeState]) -> list[PoolGuess]:
    """The pools a site's members suggest, sure ones first, by name."""
    everyone = tuple(everyone)
    groups: dict[tuple[str, str | None], list[NodeState]] = {}
    for node in members:
        prefix = name_prefix(node.name)
        if prefix and not is_control_plane(node):
            groups.setdefault((prefix, node.labels.get(INSTANCE_TYPE)), []).append(node)
    taken: set[str] = set()
    out = []
    for (prefix, instance_type), nodes in sorted(
        groups.items(), key=lambda g: (g[0][0], g[0][1] or "")
    ):
        names = tuple(sorted(n.name for n in nodes))
        generated = all(len(n.removeprefix(prefix)) >= MIN_GENERATED for n in names)
        if len(names) < 2 and not generated:
            continue
        labels = {INSTANCE_TYPE: instance_type} if instance_type else {}
        pool = Pool.model_validate(
            {"name": "guess", "selector": {"matchLabels": labels, "namePattern": prefix + "*"}}
        )
        claimed = sorted(n.name for n in everyone if selects(pool, n))
        others = [n for n in claimed if n not in names]
        doubt = ""
        if others:
            doubt = f"its selector would also claim {_some(others)}"
        elif len(names) < 2:
            doubt = "one node only: is it a group?"
        out.append(
            PoolGuess(
                name=_pool_name(prefix, taken),
                name_pattern=prefix + "*",
                match_labels=labels,
                nodes=names,
                sure=not doubt,
                doubt=doubt,
            )
        )
    return sorted(out, key=lambda p: (not p.sure, p.name))


def _some(names: Collection[str], shown: int = 3) -> str:
    listed = list(names)[:shown]
    rest = len(names) - len(listed)
    return ", ".join(listed) + (f" and {rest} more" if rest else "")
