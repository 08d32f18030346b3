"""Guard rails against deleting what only looks dead from here: per site and cluster-wide.

A member is *impaired* when it is NotReady (Ready False or Unknown) or its newest probe got
no answer. A site deletes nothing when every member (or every in-scope member) is
impaired, when its predicted Kilo leader is impaired or unknown, or when it has more than
2 members and at least ``maxUnreachableFraction`` of them are impaired. The cluster deletes
nothing when every site with members is disrupted so, or when the prober cannot reach the
Ready nodes (at least that fraction of the probed Ready nodes unanswered, or none probed):
its own vantage point is cut off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler.core.lifecycle.probes import NodeProbe
from reconciler.core.lifecycle.text import ratio_text, site_disrupted_text
from reconciler.model.probe import ProbeOutcome
from reconciler.model.state import NodeState
from reconciler.model.topology import SiteLifecycle

MIN_DISRUPTION_MEMBERS = 3  # Kubernetes: a zone of more than 2 nodes


class WithheldReason(StrEnum):
    """Why a deletion was withheld; a small set, usable as a metric label."""

    CONTROL_PLANE = "control-plane"
    PROTECTED = "protected"  # the protect selector or the exclude-from-lifecycle label
    LEADER = "leader"  # the predicted Kilo leader or a pinned leader candidate
    OUT_OF_SCOPE = "out-of-scope"  # named node under scope: pools
    SIGNS_OF_LIFE = "signs-of-life"  # fresh kilo last-seen or a renewed node Lease
    NOT_READY_TOO_BRIEFLY = "not-ready-too-briefly"
    ANSWERS_PING = "answers-ping"
    PROBE_FAILED = "probe-failed"  # a socket failure: unknown, never silent
    PROBING = "probing"  # not silent over enough probes and time yet
    SITE_ALL_DOWN = "site-all-down"
    SITE_LEADER_DOWN = "site-leader-down"
    SITE_DISRUPTED = "site-disrupted"
    CLUSTER_DISRUPTED = "cluster-disrupted"
    VANTAGE_CUT_OFF = "vantage-cut-off"
    BUDGET_SPENT = "budget-spent"
    BUDGET_UNREADABLE = "budget-unreadable"  # the last seven: the guard rails (docs/lifecycle.md)


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """A site member: its live state, and whether the site lists it by name."""

    node: NodeState
    named: bool = False  # False: a pool member


@dataclass(frozen=True, slots=True)
class SiteFacts:
    """What the lifecycle decision needs to know of one site."""

    name: str
    policy: SiteLifecycle
    members: tuple[MemberFacts, ...]
    leader: str | None  # the predicted Kilo leader; None: no leader can be predicted
    pinned: tuple[str, ...] = ()  # spec.leader: pinned leader candidates
    per_node: bool = False  # granularity full/cross: every node leads a segment of its own

    def in_scope(self, member: MemberFacts) -> bool:
        """``pools``: pool members only; ``all``: named members too."""
        return self.policy.scope == "all" or not member.named


@dataclass(frozen=True, slots=True)
class Guard:
    """A guard rail that tripped: its reason, a text, and the counts behind it."""

    reason: WithheldReason
    text: str
    impaired: int = 0
    members: int = 0


def impaired(node: NodeState, probes: Mapping[str, NodeProbe]) -> bool:
    """NotReady, or its newest probe went unanswered."""
    probe = probes.get(node.name)
    return node.ready != "True" or (probe is not None and probe.latest is ProbeOutcome.SILENT)


def site_guard(site: SiteFacts, probes: Mapping[str, NodeProbe], limit: float) -> Guard | None:
    """The site-level guard that stops every deletion in ``site``, or None."""
    members = site.members
    if not members:
        return None
    down = [m for m in members if impaired(m.node, probes)]
    silent = any(m.node.ready == "True" for m in down)
    where = f"withheld in {site.name}"
    if len(down) == len(members):
        return Guard(
            WithheldReason.SITE_ALL_DOWN,
            f"{where}: all {len(members)} members NotReady or silent (a cut-off location?)",
            len(down),
            len(members),
        )
    scoped = [m for m in members if site.in_scope(m)]
    if scoped and all(m in down for m in scoped):
        return Guard(
            WithheldReason.SITE_ALL_DOWN,
            f"{where}: all {len(scoped)} in-scope members NotReady or silent",
            len(down),
            len(members),
        )
    leader_guard = None if site.per_node else _leader_guard(site, probes, where)
    if leader_guard is not None:
        return Guard(leader_guard.reason, leader_guard.text, len(down), len(members))
    if len(members) >= MIN_DISRUPTION_MEMBERS and down and len(down) / len(members) >= limit:
        text = site_disrupted_text(site.name, len(down), len(members), limit, silent)
        return Guard(WithheldReason.SITE_DISRUPTED, text, len(down), len(members))
    return None


def _leader_guard(site: SiteFacts, probes: Mapping[str, NodeProbe], where: str) -> Guard | None:
    """The location's one leader must be predictable and alive (not under full/cross
    granularity, where a dead node only takes its own segment down)."""
    by_name = {m.node.name: m.node for m in site.members}
    leader = by_name.get(site.leader) if site.leader is not None else None
    if leader is None:
        return Guard(
            WithheldReason.SITE_LEADER_DOWN,
            f"{where}: no Kilo leader can be predicted among its members",
        )
    if impaired(leader, probes):
        return Guard(
            WithheldReason.SITE_LEADER_DOWN,
            f"{where}: its Kilo leader {leader.name} is NotReady or silent",
        )
    return None


def vantage_guard(
    ready: Iterable[NodeState], probes: Mapping[str, NodeProbe], limit: float
) -> Guard | None:
    """Stops everything when the prober cannot reach the Ready nodes: then silence from
    NotReady ones says more about the prober's network than about theirs."""
    probed = [p for n in ready if (p := probes.get(n.name)) is not None and p.latest is not None]
    if not probed:
        return Guard(
            WithheldReason.VANTAGE_CUT_OFF,
            "withheld everywhere: no Ready node was probed, so this vantage point is unchecked",
        )
    lost = sum(1 for p in probed if p.latest is not ProbeOutcome.ANSWERED)
    if lost and lost / len(probed) >= limit:
        return Guard(
            WithheldReason.VANTAGE_CUT_OFF,
            f"withheld everywhere: {lost} of {len(probed)} Ready nodes do not answer from here "
            f"({ratio_text(lost / len(probed), limit)}): this vantage point is cut off",
            lost,
            len(probed),
        )
    return None


def cluster_guard(sites: Sequence[SiteFacts], site_guards: Mapping[str, Guard]) -> Guard | None:
    """Stops everything when every site with members is disrupted."""
    populated = [s.name for s in sites if s.members]
    if populated and all(name in site_guards for name in populated):
        return Guard(
            WithheldReason.CLUSTER_DISRUPTED,
            f"withheld everywhere: all {len(populated)} sites with members are disrupted "
            "(the fault is likely on this side)",
            len(populated),
            len(populated),
        )
    return None
