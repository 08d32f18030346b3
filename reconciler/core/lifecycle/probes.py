"""From probe rounds to a per-node verdict: answered, silent over a minute, or not known.

A node counts as SILENT only after at least ``min_probes`` rounds in a row, spread over at
least ``min_span``, in which every one of its addresses was probed and none answered. Any
answer on any address resets the count; a round where a probe failed (UNKNOWN) breaks it
too, since it proves nothing. Until the evidence is complete the verdict is PENDING. The
clock is the rounds' own timestamps and the ``now`` passed in: nothing here reads time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from reconciler.model import keys
from reconciler.model.probe import ProbeOutcome, ProbeRound
from reconciler.model.state import NodeState


class ProbeVerdict(StrEnum):
    """What a node's probes, taken together, say."""

    ANSWERED = "answered"  # the newest round that reached it got an answer
    SILENT = "silent"  # no answer over enough probes across enough time
    UNKNOWN = "unknown"  # the newest round's probe failed (socket, privilege, route)
    PENDING = "pending"  # silent so far, but not over enough probes or time yet


@dataclass(frozen=True, slots=True)
class NodeProbe:
    """A node's probe evidence: the verdict, the newest round's outcome, and the streak."""

    verdict: ProbeVerdict
    latest: ProbeOutcome | None  # newest round that covered the node; None: never probed
    addresses: tuple[str, ...]
    silent_since: datetime | None = None  # first round of the current silent streak
    last_at: datetime | None = None  # newest round that covered the node
    silent_probes: int = 0  # rounds in the current silent streak
    error: str = ""  # why the newest probe failed, for UNKNOWN

    @property
    def span(self) -> timedelta:
        """How long the current silent streak has lasted."""
        if self.silent_since is None or self.last_at is None:
            return timedelta(0)
        return self.last_at - self.silent_since


NOT_PROBED = NodeProbe(ProbeVerdict.PENDING, None, ())


@dataclass(frozen=True, slots=True)
class ProbeSchedule:
    """How often to probe and how much silence makes a node SILENT (issue 11: >= 1 min)."""

    interval: timedelta = timedelta(seconds=20)
    min_probes: int = 3
    min_span: timedelta = timedelta(seconds=60)
    horizon: timedelta = timedelta(minutes=10)  # rounds older than this are forgotten

    def due(self, last_round: datetime | None, now: datetime) -> bool:
        """Whether a new round is due at ``now``."""
        return last_round is None or now - last_round >= self.interval


@dataclass(frozen=True, slots=True)
class ProbeHistory:
    """The rounds kept within the schedule's horizon, oldest first. Immutable."""

    schedule: ProbeSchedule = field(default_factory=ProbeSchedule)
    rounds: tuple[ProbeRound, ...] = ()

    def add(self, round_: ProbeRound, now: datetime) -> ProbeHistory:
        """A history with ``round_`` added and rounds older than the horizon dropped."""
        cutoff = now - self.schedule.horizon
        kept = tuple(r for r in (*self.rounds, round_) if r.at >= cutoff)
        return ProbeHistory(self.schedule, tuple(sorted(kept, key=lambda r: r.at)))

    @property
    def last_at(self) -> datetime | None:
        """When the newest round started."""
        return self.rounds[-1].at if self.rounds else None

    def node(self, addresses: Sequence[str]) -> NodeProbe:
        """The verdict for a node with these addresses (see the module docstring)."""
        if not addresses:
            return NodeProbe(ProbeVerdict.UNKNOWN, None, (), error="no address to probe")
        addrs = tuple(addresses)
        latest: ProbeOutcome | None = None
        last_at: datetime | None = None
        error = ""
        streak = 0
        since: datetime | None = None
        for round_ in reversed(self.rounds):
            outcome = _node_outcome(round_, addrs)
            if outcome is None:
                continue
            if latest is None:
                latest, last_at = outcome, round_.at
                error = next((round_.errors[a] for a in addrs if a in round_.errors), "")
            if outcome is not ProbeOutcome.SILENT:
                break
            streak, since = streak + 1, round_.at
        if latest is None:
            return NodeProbe(ProbeVerdict.PENDING, None, addrs)
        if latest is ProbeOutcome.ANSWERED:
            return NodeProbe(ProbeVerdict.ANSWERED, latest, addrs, last_at=last_at)
        if latest is ProbeOutcome.UNKNOWN:
            return NodeProbe(ProbeVerdict.UNKNOWN, latest, addrs, last_at=last_at, error=error)
        assert since is not None and last_at is not None
        enough = streak >= self.schedule.min_probes and last_at - since >= self.schedule.min_span
        verdict = ProbeVerdict.SILENT if enough else ProbeVerdict.PENDING
        return NodeProbe(verdict, latest, addrs, since, last_at, streak)

    def nodes(self, nodes: Iterable[NodeState]) -> dict[str, NodeProbe]:
        """Verdicts for many nodes, keyed by name, from their :func:`probe_addresses`."""
        return {n.name: self.node(probe_addresses(n)) for n in nodes}


def _node_outcome(round_: ProbeRound, addresses: tuple[str, ...]) -> ProbeOutcome | None:
    """One round's outcome for a node: an answer on any address wins; a failed probe
    (UNKNOWN) comes next; SILENT only when every address was probed. None: not covered."""
    seen = [round_.outcomes.get(a) for a in addresses]
    if ProbeOutcome.ANSWERED in seen:
        return ProbeOutcome.ANSWERED
    if ProbeOutcome.UNKNOWN in seen:
        return ProbeOutcome.UNKNOWN
    if all(o is ProbeOutcome.SILENT for o in seen):
        return ProbeOutcome.SILENT
    return None


def probe_addresses(node: NodeState) -> tuple[str, ...]:
    """Every address a node may answer on: InternalIPs, ExternalIPs, force-internal-ip."""
    found: list[str] = []
    for kind, address in node.addresses:
        if kind in ("InternalIP", "ExternalIP") and address:
            found.append(address)
    forced = node.annotations.get(keys.KILO_FORCE_INTERNAL_IP, "")
    if forced and forced != "-":
        found.append(forced.split("/", 1)[0])
    return tuple(dict.fromkeys(found))


def addresses_to_probe(nodes: Iterable[NodeState]) -> tuple[str, ...]:
    """The addresses of many nodes, each once, in a stable order (one probe round's input)."""
    return tuple(dict.fromkeys(a for n in nodes for a in probe_addresses(n)))
