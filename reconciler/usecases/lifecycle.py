"""The lifecycle use case: look at the dead nodes (probe), and decide.

A :class:`Lifecycle` keeps the probe history and looks through :class:`Eyes`: the
controller keeps one across its rounds and probes once per interval; a command makes
one, probes for about a minute (enough rounds for a silent verdict), then decides. The
deletions decided go through the deletion protocol (:mod:`.deletion`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconciler.core.lifecycle.planned import lifecycle_plan
from reconciler.core.lifecycle.probes import ProbeHistory, ProbeSchedule, addresses_to_probe
from reconciler.core.lifecycle.record import DeletionRecord
from reconciler.core.lifecycle.rules import Observations
from reconciler.core.planning.plan import LifecyclePlan, Plan
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology
from reconciler.ports import BackendError, Clock, LeaseError, NodeLeases, Prober
from reconciler.usecases.statusmap import StatusConfigMap


@dataclass(frozen=True)
class Eyes:
    """How a lifecycle looks at dead nodes: a clock, and a prober (None: candidates are
    named but not probed, so nothing is deleted); on a live cluster the hourly budget's
    record and the node Leases (signs of life) too."""

    clock: Clock
    prober: Prober | None = None
    schedule: ProbeSchedule = field(default_factory=ProbeSchedule)
    stop: threading.Event = field(default_factory=threading.Event)
    budget: StatusConfigMap | None = None
    leases: NodeLeases | None = None

    @property
    def rounds(self) -> int:
        """Rounds enough for a silent verdict: ``min_probes``, spread over ``min_span``."""
        spread = math.ceil(self.schedule.min_span / self.schedule.interval) + 1
        return max(self.schedule.min_probes, spread)


class Lifecycle:
    """A probe history, and the decisions it supports."""

    def __init__(self, eyes: Eyes) -> None:
        self.eyes = eyes
        self.history = ProbeHistory(eyes.schedule)

    def due(self, now: datetime) -> bool:
        """Whether a probe round is due at ``now`` (at most one per interval)."""
        return self.eyes.schedule.due(self.history.last_at, now)

    def probe(self, nodes: Iterable[NodeState]) -> None:
        """One round: every address of ``nodes`` once, into the history."""
        prober = self.eyes.prober
        if prober is not None:
            found = prober.probe(addresses_to_probe(nodes))
            self.history = self.history.add(found, self.eyes.clock.wall())

    def observe(self, nodes: Iterable[NodeState]) -> None:
        """Enough rounds for a verdict, an interval apart (about a minute), unless stopped."""
        if self.eyes.prober is None:
            return
        nodes = list(nodes)
        for i in range(self.eyes.rounds):
            if i:
                self.eyes.clock.wait(self.eyes.stop, self.eyes.schedule.interval.total_seconds())
            if self.eyes.stop.is_set():
                break
            self.probe(nodes)

    def decide(
        self, topology: Topology, plan: Plan, nodes: Mapping[str, NodeState]
    ) -> LifecyclePlan | None:
        """The plan's lifecycle decisions from what was seen (None: no site deletes)."""
        eyes = self.eyes
        probed = eyes.prober is not None
        seen = Observations(
            now=eyes.clock.wall(),
            probes=self.history.nodes(nodes.values()) if probed else {},
            leases=self._leases() if probed else {},
            record=eyes.budget.read_record()
            if probed and eyes.budget is not None
            else DeletionRecord(),
        )
        return lifecycle_plan(topology, plan, nodes, seen, probed=probed)

    def _leases(self) -> Mapping[str, datetime]:
        """The node Leases' renewals. A renewed Lease means alive, so when they cannot be
        listed nothing is decided: BackendError."""
        if self.eyes.leases is None:
            return {}
        try:
            return self.eyes.leases.renewals()
        except LeaseError as err:
            raise BackendError(f"no deletion without the node Leases ({err})") from None
