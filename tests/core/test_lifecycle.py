"""Lifecycle decisions, rule by rule: one zombie in an otherwise healthy cluster, varied."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest

from reconciler.core.lifecycle.guards import MemberFacts, SiteFacts, WithheldReason
from reconciler.core.lifecycle.probes import NodeProbe
from reconciler.core.lifecycle.record import Deletion, DeletionRecord
from reconciler.core.lifecycle.rules import Decisions, Delete, Observations, Withhold, decide
from reconciler.model import keys
from reconciler.model.state import NodeCondition, NodeState
from reconciler.model.topology import ClusterLifecycle, SiteLifecycle
from tests.lifecycle_support import (
    NOW,
    answered,
    cp_labels,
    node,
    policy,
    rails,
    silent,
    site,
    unknown,
)

ZOMBIE = "fsn1-worker-x9m4t"
ZOMBIE_ADDRS = ("10.10.0.7", "203.0.113.7")


@dataclass
class World:
    """Two sites: fsn1 (3 Ready + the zombie), nbg1 (3 Ready). Tests vary one thing."""

    zombie: NodeState = field(
        default_factory=lambda: node(
            ZOMBIE, ready="False", internal="10.10.0.7", external="203.0.113.7"
        )
    )
    named: bool = False
    lifecycle: SiteLifecycle = field(default_factory=policy)
    rails: ClusterLifecycle = field(default_factory=rails)
    leader: str | None = "fsn1-a"
    pinned: tuple[str, ...] = ()
    probe: NodeProbe | None = field(default_factory=lambda: silent(ZOMBIE_ADDRS))
    leases: dict[str, datetime] = field(default_factory=dict)
    record: DeletionRecord = field(default_factory=DeletionRecord)

    def sites(self) -> list[SiteFacts]:
        fsn1 = [MemberFacts(node(f"fsn1-{c}")) for c in "abc"] + [
            MemberFacts(self.zombie, self.named)
        ]
        nbg1 = [node(f"nbg1-{c}") for c in "abc"]
        return [
            SiteFacts("hetzner-fsn1", self.lifecycle, tuple(fsn1), self.leader, self.pinned),
            site("hetzner-nbg1", nbg1),
        ]

    def decide(self) -> Decisions:
        probes = {n: answered() for n in ("fsn1-a", "fsn1-b", "fsn1-c")}
        probes |= {n: answered() for n in ("nbg1-a", "nbg1-b", "nbg1-c")}
        if self.probe is not None:
            probes[ZOMBIE] = self.probe
        seen = Observations(NOW, probes, self.leases, self.record)
        return decide(self.sites(), self.rails, seen)


def zombie_decision(world: World) -> Delete | Withhold:
    (decision,) = world.decide().nodes
    assert decision.node == ZOMBIE
    return decision


def test_a_dead_zombie_goes_with_its_evidence() -> None:
    decision = zombie_decision(World())
    assert isinstance(decision, Delete)
    assert decision.text() == (
        "would delete fsn1-worker-x9m4t: NotReady 14m, no answer from 10.10.0.7, 203.0.113.7"
    )
    assert decision.uid == f"uid-{ZOMBIE}" and decision.resource_version == "7"
    assert decision.probes == 4 and decision.span == timedelta(seconds=60)
    assert "NotReady since 2026-12-02T19:46:00Z; 4 probes over 1m" in decision.evidence()


def with_zombie(**changes: object) -> World:
    world = World()
    zombie = world.zombie
    labels = dict(zombie.labels) | dict(changes.pop("labels", {}))  # type: ignore[call-overload]
    notes = dict(zombie.annotations) | dict(changes.pop("annotations", {}))  # type: ignore[call-overload]
    world.zombie = node(
        ZOMBIE,
        ready=str(changes.pop("ready", "False")),
        down_for=changes.pop("down_for", timedelta(minutes=14)),  # type: ignore[arg-type]
        internal="10.10.0.7",
        external="203.0.113.7",
        labels=labels,
        annotations=notes,
    )
    for key, value in changes.items():
        setattr(world, key, value)
    return world


def seen_ago(seconds: int) -> str:
    return str(int((NOW - timedelta(seconds=seconds)).timestamp()))


CASES: list[tuple[str, World, WithheldReason | None]] = [
    ("Ready Unknown counts as NotReady", with_zombie(ready="Unknown"), None),
    ("control-plane", with_zombie(labels=cp_labels()), WithheldReason.CONTROL_PLANE),
    ("master label", with_zombie(labels={keys.LABEL_MASTER: ""}), WithheldReason.CONTROL_PLANE),
    (
        "exclude-from-lifecycle label",
        with_zombie(labels={keys.LABEL_EXCLUDE_LIFECYCLE: "true"}),
        WithheldReason.PROTECTED,
    ),
    (
        "protect selector matches",
        with_zombie(labels={"tier": "db", "x": "1"}, rails=rails(protect={"tier": "db"})),
        WithheldReason.PROTECTED,
    ),
    (
        "protect selector needs every label",
        with_zombie(labels={"tier": "db"}, rails=rails(protect={"tier": "db", "zone": "a"})),
        None,
    ),
    ("predicted leader", with_zombie(leader=ZOMBIE), WithheldReason.LEADER),
    ("pinned leader candidate", with_zombie(pinned=(ZOMBIE,)), WithheldReason.LEADER),
    ("named node under scope pools", with_zombie(named=True), WithheldReason.OUT_OF_SCOPE),
    ("named node under scope all", with_zombie(named=True, lifecycle=policy(scope="all")), None),
    (
        "Kilo checked in 30 s ago",
        with_zombie(annotations={keys.KILO_LAST_SEEN: seen_ago(30)}),
        WithheldReason.SIGNS_OF_LIFE,
    ),
    (
        "Kilo's check-in clock ahead of ours",
        with_zombie(annotations={keys.KILO_LAST_SEEN: seen_ago(-300)}),
        WithheldReason.SIGNS_OF_LIFE,
    ),
    (
        "Kilo last checked in 5 min ago",
        with_zombie(annotations={keys.KILO_LAST_SEEN: seen_ago(300)}),
        None,
    ),
    ("unreadable last-seen", with_zombie(annotations={keys.KILO_LAST_SEEN: "soon"}), None),
    (
        "node Lease renewed 10 s ago",
        with_zombie(leases={ZOMBIE: NOW - timedelta(seconds=10)}),
        WithheldReason.SIGNS_OF_LIFE,
    ),
    (
        "node Lease renewed 2 min ago",
        with_zombie(leases={ZOMBIE: NOW - timedelta(minutes=2)}),
        None,
    ),
    (
        "NotReady 5m under after 10m",
        with_zombie(down_for=timedelta(minutes=5)),
        WithheldReason.NOT_READY_TOO_BRIEFLY,
    ),
    ("NotReady exactly after", with_zombie(down_for=timedelta(minutes=10)), None),
    (
        "after 1h",
        with_zombie(lifecycle=policy(after="1h")),
        WithheldReason.NOT_READY_TOO_BRIEFLY,
    ),
    ("answers ping", with_zombie(probe=answered(ZOMBIE_ADDRS)), WithheldReason.ANSWERS_PING),
    ("probe socket failed", with_zombie(probe=unknown(ZOMBIE_ADDRS)), WithheldReason.PROBE_FAILED),
    (
        "silent over 2 probes only",
        with_zombie(probe=silent(ZOMBIE_ADDRS, 2)),
        WithheldReason.PROBING,
    ),
    ("never probed", with_zombie(probe=None), WithheldReason.PROBING),
    ("budget of 0", with_zombie(rails=rails(per_hour=0)), WithheldReason.BUDGET_SPENT),
    (
        "budget spent in the last hour",
        with_zombie(
            rails=rails(per_hour=2),
            record=DeletionRecord(
                (
                    Deletion(NOW - timedelta(minutes=50), "a"),
                    Deletion(NOW - timedelta(minutes=5), "b"),
                )
            ),
        ),
        WithheldReason.BUDGET_SPENT,
    ),
    (
        "deletions over an hour ago are forgotten",
        with_zombie(
            rails=rails(per_hour=1),
            record=DeletionRecord((Deletion(NOW - timedelta(minutes=61), "a"),)),
        ),
        None,
    ),
    (
        "unreadable record leaves no budget",
        with_zombie(record=DeletionRecord.parse("{not json")),
        WithheldReason.BUDGET_UNREADABLE,
    ),
]


@pytest.mark.parametrize(("world", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules(world: World, reason: WithheldReason | None) -> None:
    decision = zombie_decision(world)
    if reason is None:
        assert isinstance(decision, Delete), decision
    else:
        assert isinstance(decision, Withhold), decision
        assert decision.reason is reason
        assert ZOMBIE in decision.text


def test_sites_that_do_not_delete_decide_nothing() -> None:
    decisions = with_zombie(lifecycle=policy(delete=False)).decide()
    assert decisions.nodes == () and decisions.sites == {}


def test_ready_nodes_get_no_decision() -> None:
    decisions = World().decide()
    assert [d.node for d in decisions.nodes] == [ZOMBIE]


def test_not_ready_since_unknown_is_not_long_enough() -> None:
    world = World()
    world.zombie = NodeState(
        ZOMBIE, conditions=(NodeCondition("Ready", "False"),), addresses=world.zombie.addresses
    )
    decision = zombie_decision(world)
    assert (
        isinstance(decision, Withhold) and decision.reason is WithheldReason.NOT_READY_TOO_BRIEFLY
    )
