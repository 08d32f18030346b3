"""A picture of the mesh: Kilo locations, their nodes, leaders and tunnels, as values.

From a plan: each site is a location with its allowed-location-ips; nodes listed by name
are drawn, pool members are drawn by name up to :data:`DRAWN` and collapsed to a count
above; the leader Kilo is predicted to elect once the plan is applied, and the one it has
now (and the one the controller last saw live, when given). Under ``location``
granularity the tunnels join the leaders of the locations; under ``full`` and ``cross``
every node (here, every box: a node or a pool) is a segment of its own with tunnels of
its own (``full``: to every other segment; ``cross``: only to other locations). Where
more than :data:`MESHED` endpoints would draw n(n-1)/2 lines, one hub stands for the full
mesh. What the plan changes is marked: nodes written, and a leader change.

:mod:`graphs` turns a :class:`Picture` into Mermaid or DOT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.core.kilo.leader import PER_NODE
from reconciler.core.planning.plan import Plan
from reconciler.model.topology import Topology

DRAWN = 3  # pool members drawn by name; more become one box with their count
MESHED = 8  # endpoints drawn as a full mesh; more are joined through one hub


@dataclass(frozen=True, slots=True)
class Box:
    """A node, or the members of a pool collapsed to a count."""

    key: str  # unique in the picture
    label: str
    leader: bool = False  # Kilo's (predicted) leader of its location
    changed: bool = False  # the plan writes it
    leader_change: bool = False  # it gains or loses the leadership


@dataclass(frozen=True, slots=True)
class Location:
    name: str
    boxes: tuple[Box, ...]
    allowed_ips: tuple[str, ...] = ()
    leader: str | None = None  # predicted
    leader_now: str | None = None
    leader_live: str | None = None  # what the controller's status says
    changed: bool = False

    @property
    def leader_changes(self) -> bool:
        return self.leader != self.leader_now


@dataclass(frozen=True, slots=True)
class Picture:
    cluster: str
    granularity: str
    locations: tuple[Location, ...]
    tunnels: tuple[tuple[str, str], ...]  # box keys
    hub: str = ""  # the label of the hub that stands for a full mesh ("" when drawn)
    hub_ends: tuple[str, ...] = ()  # the box keys the hub joins


def _box_key(site: str, name: str) -> str:
    return f"{site}/{name}"


def from_plan(
    topology: Topology, plan: Plan, live: Mapping[str, str | None] | None = None
) -> Picture:
    """The mesh once ``plan`` is applied; ``live``: the leader per site the controller
    last published (``topoctl status``)."""
    granularity = topology.cluster.spec.mesh.granularity
    leaders = {p.site: p for p in plan.leaders}
    written = {n.node for n in plan.nodes if n.writes}
    members: dict[str, list[str]] = {}
    for node, member_of in sorted(plan.members.items()):
        members.setdefault(member_of, []).append(node)
    locations = []
    for site in topology.sites:
        p = leaders.get(site.name)
        predicted = p.predicted if p else None
        now = p.current if p else None
        moved = p is not None and p.changes
        boxes: list[Box] = []
        pools: dict[str, list[str]] = {}
        for node in members.get(site.name, []):
            pool = plan.pools.get(node)
            if pool is not None:
                pools.setdefault(pool, []).append(node)
                continue
            boxes.append(_node_box(site.name, node, predicted, now, moved, node in written))
        for pool, names in sorted(pools.items()):
            if len(names) <= DRAWN:
                boxes += [_node_box(site.name, n, predicted, now, moved, n in written)
                          for n in names]  # fmt: skip
                continue
            changing = sum(1 for n in names if n in written)
            label = f"pool {pool}: {len(names)} nodes"
            if changing:
                label += f", {changing} to change"
            boxes.append(Box(_box_key(site.name, f"pool:{pool}"), label, changed=bool(changing)))
        for pending in plan.pending.get(site.name, ()):
            boxes.append(Box(_box_key(site.name, pending), f"{pending} (pending)"))
        locations.append(
            Location(
                name=site.name,
                boxes=tuple(boxes),
                allowed_ips=tuple(site.spec.allowed_location_ips),
                leader=predicted,
                leader_now=now,
                leader_live=(live or {}).get(site.name),
                changed=any(b.changed for b in boxes) or moved,
            )
        )
    return _meshed(plan.cluster, granularity, locations)


def _node_box(
    site: str, node: str, predicted: str | None, now: str | None, moved: bool, changed: bool
) -> Box:
    leads = node == predicted
    label = (
        node + (" (leader)" if leads else "") + (" (was leader)" if moved and node == now else "")
    )
    return Box(
        _box_key(site, node),
        label,
        leader=leads,
        changed=changed,
        leader_change=moved and node in (predicted, now),
    )


def from_status(doc: Mapping[str, Any], granularity: str = "location") -> Picture:
    """The live mesh as the controller last published it: per site its member count and
    Kilo's leader (``leader.current``; the predicted one where it differs)."""
    locations = []
    for name, site in sorted((doc.get("sites") or {}).items()):
        leader = site.get("leader") or {}
        current, predicted = leader.get("current"), leader.get("predicted")
        count = (site.get("members") or {}).get("count", 0)
        boxes = []
        if current:
            label = f"{current} (leader)" + (f", next {predicted}" if predicted != current else "")
            boxes.append(Box(_box_key(name, current), label, leader=True,
                             leader_change=predicted != current))  # fmt: skip
        others = count - (1 if current else 0)
        if others > 0:
            boxes.append(Box(_box_key(name, "members"), f"{others} other members"))
        locations.append(
            Location(name, tuple(boxes), leader=current, leader_now=current, leader_live=current)
        )
    return _meshed(str(doc.get("clusterName") or "live"), granularity, locations)


def _meshed(cluster: str, granularity: str, locations: list[Location]) -> Picture:
    """The tunnels between the locations' endpoints (leaders, or every box)."""
    per_node = granularity in PER_NODE
    ends: list[tuple[str, str]] = []  # (location, box key)
    for loc in locations:
        if per_node:
            ends += [(loc.name, b.key) for b in loc.boxes if "(pending)" not in b.label]
        elif loc.leader is not None:
            ends.append((loc.name, _box_key(loc.name, loc.leader)))
    if len(ends) > MESHED:
        tunnels = (
            f"{len(ends)} endpoints, {len(ends) * (len(ends) - 1) // 2:,} WireGuard tunnels"
            if granularity != "cross"
            else f"{len(ends)} endpoints, tunnels between locations"
        )
        hub = f"full mesh: {tunnels}"
        keys = tuple(key for _, key in ends)
        return Picture(cluster, granularity, tuple(locations), (), hub=hub, hub_ends=keys)
    pairs = tuple(
        (a, b)
        for i, (la, a) in enumerate(ends)
        for lb, b in ends[i + 1 :]
        if granularity != "cross" or la != lb
    )
    return Picture(cluster, granularity, tuple(locations), pairs)
