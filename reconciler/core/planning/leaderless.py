"""When Kilo's leader of a site cannot be predicted, and why. Pure.

Kilo's own rules say which node leads (``core.kilo``); these say when topoctl will not
take Kilo's answer as a leader change, so that what it last published stands
(``desired.held_routes``): docs/controller.md, "Kilo's clock, and Kilo going silent".

- The location's Kilo is silent and a check-in ran out since (``freshness.silence``).
- Kilo's agent on the node the routes via the leader were last published for stopped
  cleanly (``node.kg_stopped``): a rollout restarting it, or Kilo stopping everywhere.
- No node Kilo counts as Ready, with an internal IP, would lead the location.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from reconciler.core.kilo.freshness import silence
from reconciler.core.kilo.node import KiloNode, addresses, kg_stopped, not_ready
from reconciler.core.planning.desired import leader_gateways, published_settings
from reconciler.model import keys
from reconciler.model.route import Route
from reconciler.model.state import NodeState

NO_READY_LEADER = "no node Kilo counts as Ready, with an internal IP, would lead it"


@dataclass(frozen=True, slots=True)
class Unknown:
    """Why no leader can be predicted; ``kilo_unheard``: Kilo's own leader now is not
    known either (its agents are silent or stopping)."""

    why: str
    kilo_unheard: bool = False
    silent_for: int | None = None


def why_unknown(
    located: Collection[NodeState],
    members: Iterable[NodeState],
    routes: Sequence[Route],
    at: int | None,
    predicted: str | None,
) -> Unknown | None:
    """Why the leader of a location (``located``: its nodes, live) cannot be predicted at
    ``at``, or None when Kilo's rule's answer (``predicted``) stands. ``members`` carry
    what topoctl last published; ``routes`` are the site's."""
    quiet = silence(located, at) if at is not None else None
    if at is not None and quiet is not None and quiet.went_stale:
        heard = quiet.seconds(at)
        return Unknown(
            f"Kilo is silent here: no node has checked in for {heard} s, and the check-ins "
            f"of {some(quiet.went_stale)} ran out since: that says nothing of who leads",
            kilo_unheard=True,
            silent_for=heard,
        )
    stopped = stopped_leader(located, members, routes)
    if stopped is not None and predicted != stopped:
        return Unknown(
            f"Kilo's agent on {stopped}, the leader the routes via the leader were last "
            "published for, stopped and removed its keys (a rollout, or Kilo stopping): "
            "that is no leader change until it checks in again or its Node goes",
            kilo_unheard=True,
        )
    return Unknown(NO_READY_LEADER) if predicted is None else None


def stopped_leader(
    located: Iterable[NodeState], members: Iterable[NodeState], routes: Sequence[Route]
) -> str | None:
    """The node the routes via the leader were last published for (their gateway in the
    members' ``topoctl.io/agent``), when Kilo's agent on it stopped cleanly."""
    stopped = [n for n in located if kg_stopped(n)]
    if not stopped:
        return None
    gateways: set[str] = set()
    for member in members:
        settings = published_settings(member.annotations.get(keys.TOPOCTL_AGENT))
        if settings is not None:
            gateways |= leader_gateways(routes, settings.routes)
    return next((n.name for n in sorted(stopped, key=_name) if addresses(n) & gateways), None)


def not_leading(after: Iterable[tuple[KiloNode, NodeState]], at: int | None) -> tuple[str, ...]:
    """The location's nodes that cannot lead it once the plan is applied, each with what
    Kilo lacks (``after``: how Kilo reads each, and the node)."""
    out = []
    for kilo, projected in after:
        if not kilo.ready:
            why = not_ready(projected, at) if at is not None else ["NotReady"]
            out.append(f"{kilo.name}: {', '.join(why)}")
        elif kilo.internal_ip is None:
            out.append(f"{kilo.name}: no internal IP (a Kilo segment of its own)")
    return tuple(out)


def gateways_text(gateways: Iterable[str], nodes: Iterable[NodeState]) -> str:
    """The gateways held routes via the leader use, with the node each belongs to."""
    owners = {ip: n.name for n in sorted(nodes, key=_name) for ip in addresses(n)}
    return ", ".join(f"{ip} ({owners[ip]})" if ip in owners else ip for ip in sorted(gateways))


def some(names: Iterable[str], shown: int = 10) -> str:
    """The first names, and how many more."""
    items = list(names)
    rest = len(items) - shown
    return ", ".join(items[:shown]) + (f" ... and {rest} more" if rest > 0 else "")


def _name(node: NodeState) -> str:
    return node.name
