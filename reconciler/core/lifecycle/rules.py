"""Node lifecycle decisions: which dead member nodes to delete, and why the rest stay.

Pure: the caller passes the sites' members, the probe verdicts, the node Leases' renew
times, the deletion record and ``now``. A NotReady member of a site with
``deleteUnreachable`` is deleted only when every rule holds (docs/lifecycle.md):

- NotReady (Ready False or Unknown) for at least ``after``, from ``lastTransitionTime``;
- SILENT to ICMP on every address over probes spread across at least a minute;
- in scope (``pools``: pool members; ``all``: named members too);
- not protected: control-plane, the ``protect`` selector, the exclude-from-lifecycle
  label, the predicted Kilo leader and the pinned leader candidates;
- no sign of life: a ``kilo.squat.ai/last-seen`` or a node Lease renewed within 60 s;
- neither its site nor the cluster is disrupted (:mod:`.guards`);
- the hourly budget is not spent, counting this round's own deletions.

Ready members get no decision: they are probed only to check the prober's vantage point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from reconciler.core.lifecycle.guards import (
    Guard,
    MemberFacts,
    SiteFacts,
    WithheldReason,
    cluster_guard,
    site_guard,
    vantage_guard,
)
from reconciler.core.lifecycle.probes import NOT_PROBED, NodeProbe, ProbeVerdict
from reconciler.core.lifecycle.record import DeletionRecord
from reconciler.core.lifecycle.text import deletion_text, human_duration
from reconciler.model import keys
from reconciler.model.state import NodeState
from reconciler.model.topology import ClusterLifecycle

LIVENESS_WINDOW = timedelta(seconds=60)  # Kilo's check-in freshness; a kubelet renews in 10 s


_NO_LEASES: Mapping[str, datetime] = MappingProxyType({})
_NO_PROBES: Mapping[str, NodeProbe] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Observations:
    """What was observed, and when: the inputs that are not the topology."""

    now: datetime
    probes: Mapping[str, NodeProbe] = field(default_factory=lambda: _NO_PROBES)
    leases: Mapping[str, datetime] = field(default_factory=lambda: _NO_LEASES)  # renewTime
    record: DeletionRecord = field(default_factory=DeletionRecord)


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete this node; the evidence goes into the Event and the plan."""

    node: str
    site: str
    uid: str
    resource_version: str
    not_ready_since: datetime
    not_ready_for: timedelta
    silent: tuple[str, ...]  # every address, none answered
    probes: int  # rounds in the silent streak
    span: timedelta  # time the silent streak covered

    def text(self, verb: str = "would delete") -> str:
        """``would delete N: NotReady 14m, no answer from A, B``."""
        return deletion_text(self.node, self.not_ready_for, self.silent, verb)

    def evidence(self) -> str:
        """The full evidence, for the Event: the text plus when and how long probed."""
        since = self.not_ready_since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return (
            f"{self.text('deleting')} (NotReady since {since}; {self.probes} probes over "
            f"{human_duration(self.span)})"
        )


@dataclass(frozen=True, slots=True)
class Withhold:
    """Keep this node, for ``reason``."""

    node: str
    site: str
    reason: WithheldReason
    text: str


NodeDecision = Delete | Withhold


@dataclass(frozen=True, slots=True)
class Decisions:
    """One round's lifecycle decisions."""

    nodes: tuple[NodeDecision, ...]  # NotReady members of sites that delete, by site, name
    sites: Mapping[str, Guard]  # guards that stop a whole site (sites that delete only)
    cluster: Guard | None  # a guard that stops every deletion
    disrupted: frozenset[str]  # every disrupted site, deleting or not
    budget_left: int  # deletions the hourly budget still allows after this round

    @property
    def deletions(self) -> tuple[Delete, ...]:
        """The nodes to delete, oldest NotReady first."""
        return tuple(d for d in self.nodes if isinstance(d, Delete))

    @property
    def withheld(self) -> tuple[Withhold, ...]:
        """The nodes kept, with their reasons."""
        return tuple(d for d in self.nodes if isinstance(d, Withhold))


def decide(sites: Sequence[SiteFacts], rails: ClusterLifecycle, seen: Observations) -> Decisions:
    """Decide, for every NotReady member of every site that deletes, delete or withhold."""
    limit = rails.max_unreachable_fraction
    guards = {s.name: g for s in sites if (g := site_guard(s, seen.probes, limit)) is not None}
    ready = [m.node for s in sites for m in s.members if m.node.ready == "True"]
    # A cut-off prober explains everything else it sees, so it is named first.
    cluster = vantage_guard(ready, seen.probes, limit) or cluster_guard(sites, guards)

    decided: list[NodeDecision] = []
    for site in sorted(sites, key=lambda s: s.name):
        if not site.policy.delete_unreachable:
            continue
        for member in sorted(site.members, key=lambda m: m.node.name):
            if member.node.ready == "True":
                continue
            decided.append(_node_decision(site, member, rails, seen))

    # Guards apply to what would otherwise go; then the budget, oldest NotReady first.
    budget = seen.record.remaining(rails.max_deletions_per_hour, seen.now)
    passed: list[Delete] = []
    final: dict[str, NodeDecision] = {}
    for decision in decided:
        if isinstance(decision, Delete):
            stop = cluster or guards.get(decision.site)
            if stop is not None:
                withheld = Withhold(decision.node, decision.site, stop.reason, stop.text)
                final[decision.node] = withheld
                continue
            passed.append(decision)
        final[decision.node] = decision
    for decision in sorted(passed, key=lambda d: (d.not_ready_since, d.node)):
        if budget > 0:
            budget -= 1
            continue
        final[decision.node] = _over_budget(decision, seen.record, rails)

    deleting = {s.name for s in sites if s.policy.delete_unreachable}
    return Decisions(
        nodes=tuple(final[d.node] for d in decided),
        sites=MappingProxyType({k: g for k, g in guards.items() if k in deleting}),
        cluster=cluster,
        disrupted=frozenset(guards),
        budget_left=budget,
    )


def _node_decision(
    site: SiteFacts, member: MemberFacts, rails: ClusterLifecycle, seen: Observations
) -> NodeDecision:
    """The node's own rules, before the site, cluster and budget guards."""
    node = member.node

    def keep(reason: WithheldReason, text: str) -> Withhold:
        return Withhold(node.name, site.name, reason, f"kept {node.name}: {text}")

    if node.is_control_plane:
        return keep(WithheldReason.CONTROL_PLANE, "a control-plane node")
    if keys.LABEL_EXCLUDE_LIFECYCLE in node.labels:
        return keep(WithheldReason.PROTECTED, f"labelled {keys.LABEL_EXCLUDE_LIFECYCLE}")
    selector = rails.protect.match_labels
    if selector and all(node.labels.get(k) == v for k, v in selector.items()):
        return keep(WithheldReason.PROTECTED, "matches the cluster's protect selector")
    if node.name == site.leader:
        return keep(WithheldReason.LEADER, f"the predicted Kilo leader of {site.name}")
    if node.name in site.pinned:
        return keep(WithheldReason.LEADER, f"a pinned leader candidate of {site.name}")
    if not site.in_scope(member):
        return keep(WithheldReason.OUT_OF_SCOPE, "listed by name, and the site's scope is pools")
    life = _sign_of_life(node, seen)
    if life:
        return keep(WithheldReason.SIGNS_OF_LIFE, life)
    since = _parse_time(node.ready_since)
    if since is None:
        return keep(WithheldReason.NOT_READY_TOO_BRIEFLY, "NotReady since an unknown time")
    after = timedelta(seconds=site.policy.after_seconds)
    down_for = seen.now - since
    if down_for < after:
        return keep(
            WithheldReason.NOT_READY_TOO_BRIEFLY,
            f"NotReady {human_duration(down_for)} < {human_duration(after)}",
        )
    probe = seen.probes.get(node.name, NOT_PROBED)
    if probe.verdict is ProbeVerdict.ANSWERED:
        return keep(
            WithheldReason.ANSWERS_PING, f"answers ping (NotReady {human_duration(down_for)})"
        )
    if probe.verdict is ProbeVerdict.UNKNOWN:
        return keep(WithheldReason.PROBE_FAILED, f"probe failed: {probe.error or 'unknown error'}")
    if probe.verdict is ProbeVerdict.PENDING:
        detail = (
            f"silent over {probe.silent_probes} probes in {human_duration(probe.span)} so far"
            if probe.latest is not None
            else "not probed"
        )
        return keep(WithheldReason.PROBING, detail)
    return Delete(
        node=node.name,
        site=site.name,
        uid=node.uid,
        resource_version=node.resource_version,
        not_ready_since=since,
        not_ready_for=down_for,
        silent=probe.addresses,
        probes=probe.silent_probes,
        span=probe.span,
    )


def _sign_of_life(node: NodeState, seen: Observations) -> str:
    """Why the node is alive after all, or "" when there is no sign of life."""
    raw = node.annotations.get(keys.KILO_LAST_SEEN)
    if raw is not None:
        try:
            checked_in = datetime.fromtimestamp(int(raw), UTC)
        except (ValueError, OverflowError, OSError):
            checked_in = None
        if checked_in is not None and seen.now - checked_in < LIVENESS_WINDOW:
            return f"Kilo checked in {human_duration(seen.now - checked_in)} ago"
    renewed = seen.leases.get(node.name)
    if renewed is not None and seen.now - renewed < LIVENESS_WINDOW:
        return f"its node Lease was renewed {human_duration(seen.now - renewed)} ago"
    return ""


def _over_budget(decision: Delete, record: DeletionRecord, rails: ClusterLifecycle) -> Withhold:
    if not record.readable:
        return Withhold(
            decision.node,
            decision.site,
            WithheldReason.BUDGET_UNREADABLE,
            f"withheld {decision.node}: the deletion record cannot be read ({record.problem})",
        )
    return Withhold(
        decision.node,
        decision.site,
        WithheldReason.BUDGET_SPENT,
        f"withheld {decision.node}: {rails.max_deletions_per_hour} deletions per hour spent",
    )


def _parse_time(text: str) -> datetime | None:
    """An RFC 3339 time as the API writes it; None when absent or unreadable."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
