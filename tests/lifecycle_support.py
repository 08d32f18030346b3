"""Builders for lifecycle tests: nodes, sites and probe evidence on a fixed clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from reconciler.controller.plans import PlannedView, Revision
from reconciler.core.lifecycle.guards import MemberFacts, SiteFacts, WithheldReason
from reconciler.core.lifecycle.probes import NodeProbe, ProbeVerdict
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.probe import ProbeOutcome
from reconciler.model.state import NodeCondition, NodeState
from reconciler.model.topology import ClusterLifecycle, SiteLifecycle, Topology

# The partition and rate guards (docs/lifecycle.md: "the last seven"): the other reasons
# say the node is not dead.
GUARD_RAILS = frozenset(list(WithheldReason)[-7:])

NOW = datetime(2026, 12, 2, 20, 0, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(
    name: str,
    *,
    ready: str = "True",
    down_for: timedelta = timedelta(minutes=14),
    internal: str = "",
    external: str = "",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> NodeState:
    """A node; ``ready`` False/Unknown nodes have been so for ``down_for`` before NOW."""
    addresses = [("InternalIP", internal)] if internal else []
    addresses += [("ExternalIP", external)] if external else []
    return NodeState(
        name=name,
        uid=f"uid-{name}",
        resource_version="7",
        labels=MappingProxyType(dict(labels or {})),
        annotations=MappingProxyType(dict(annotations or {})),
        conditions=(
            NodeCondition(
                "Ready",
                ready,
                last_transition_time=iso(NOW - down_for)
                if ready != "True"
                else iso(NOW - timedelta(days=1)),
            ),
        ),
        addresses=tuple(addresses),
    )


def policy(delete: bool = True, after: str = "10m", scope: str = "pools") -> SiteLifecycle:
    return SiteLifecycle.model_validate(
        {"deleteUnreachable": delete, "after": after, "scope": scope}
    )


def rails(
    fraction: float = 0.55, per_hour: int = 10, protect: Mapping[str, str] | None = None
) -> ClusterLifecycle:
    return ClusterLifecycle.model_validate(
        {
            "maxUnreachableFraction": fraction,
            "maxDeletionsPerHour": per_hour,
            "protect": {"matchLabels": dict(protect or {})},
        }
    )


def site(
    name: str,
    members: Sequence[NodeState | MemberFacts],
    *,
    leader: str | None = "",
    lifecycle: SiteLifecycle | None = None,
    pinned: tuple[str, ...] = (),
) -> SiteFacts:
    """A site; ``leader`` "" means its first Ready member, None means no leader."""
    held = tuple(m if isinstance(m, MemberFacts) else MemberFacts(m) for m in members)
    if leader == "":
        leader = next((m.node.name for m in held if m.node.ready == "True"), None)
    return SiteFacts(name, lifecycle or policy(), held, leader, pinned)


def answered(addresses: tuple[str, ...] = ("10.0.0.1",)) -> NodeProbe:
    return NodeProbe(ProbeVerdict.ANSWERED, ProbeOutcome.ANSWERED, addresses, last_at=NOW)


def silent(addresses: tuple[str, ...] = ("10.0.0.1",), probes: int = 4) -> NodeProbe:
    """Silent over ``probes`` rounds 20 s apart, the newest 5 s before NOW."""
    last = NOW - timedelta(seconds=5)
    first = last - timedelta(seconds=20 * (probes - 1))
    verdict = ProbeVerdict.SILENT if probes >= 3 else ProbeVerdict.PENDING
    return NodeProbe(verdict, ProbeOutcome.SILENT, addresses, first, last, probes)


def unknown(addresses: tuple[str, ...] = ("10.0.0.1",)) -> NodeProbe:
    return NodeProbe(
        ProbeVerdict.UNKNOWN, ProbeOutcome.UNKNOWN, addresses, last_at=NOW, error="[Errno 1]"
    )


def cp_labels() -> dict[str, str]:
    return {keys.LABEL_CONTROL_PLANE: ""}


def planned_view(
    topology: Topology, nodes: Sequence[NodeState], now: int | None = None
) -> PlannedView:
    """What the controller's shared planner shows its lifecycle: every site planned
    (once, Kilo's freshness judged at ``now``), and the nodes."""
    planner = Planner(topology, nodes, now)
    plans = tuple(planner.plan_site(site.name) for site in topology.sites)
    return PlannedView(Revision("0" * 40, topology), planner, plans, {n.name: n for n in nodes})
