"""Safety properties of lifecycle decisions over random clusters (fixed seeds)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.lifecycle.guards import MemberFacts, SiteFacts
from reconciler.core.lifecycle.probes import NodeProbe, ProbeVerdict
from reconciler.core.lifecycle.record import Deletion, DeletionRecord
from reconciler.core.lifecycle.rules import Decisions, Observations, decide
from reconciler.model import keys
from reconciler.model.probe import ProbeOutcome
from reconciler.model.topology import ClusterLifecycle
from tests.lifecycle_support import GUARD_RAILS, NOW, node, policy, rails

VERDICTS = {
    "answered": (ProbeVerdict.ANSWERED, ProbeOutcome.ANSWERED),
    "silent": (ProbeVerdict.SILENT, ProbeOutcome.SILENT),
    "unknown": (ProbeVerdict.UNKNOWN, ProbeOutcome.UNKNOWN),
    "pending": (ProbeVerdict.PENDING, ProbeOutcome.SILENT),
    "none": None,
}


@st.composite
def member(draw: st.DrawFn, name: str) -> tuple[MemberFacts, NodeProbe | None, bool]:
    ready = draw(st.sampled_from(["True", "True", "True", "False", "Unknown"]))
    labels = {}
    if draw(st.integers(0, 4)) == 0:
        labels[keys.LABEL_CONTROL_PLANE] = ""
    if draw(st.integers(0, 4)) == 0:
        labels[keys.LABEL_EXCLUDE_LIFECYCLE] = "true"
    if draw(st.integers(0, 11)) == 0:
        labels["tier"] = "db"
    notes = {}
    if draw(st.integers(0, 5)) == 0:
        seen = NOW - timedelta(seconds=draw(st.integers(-30, 300)))
        notes[keys.KILO_LAST_SEEN] = str(int(seen.timestamp()))
    down = timedelta(minutes=draw(st.integers(0, 90)))
    state = node(
        name, ready=ready, down_for=down, internal="10.0.0.1", labels=labels, annotations=notes
    )
    # Mostly what a healthy cluster with a few zombies shows, so that deletions happen.
    likely = "answered" if ready == "True" else "silent"
    kind = draw(st.sampled_from([likely] * (15 if ready == "True" else 5) + sorted(VERDICTS)))
    found = VERDICTS[kind]
    probe = None
    if found is not None:
        first = NOW - timedelta(seconds=65)
        probe = NodeProbe(found[0], found[1], ("10.0.0.1",), first, NOW - timedelta(seconds=5), 4)
    lease = draw(st.integers(0, 7)) == 0
    return MemberFacts(state, named=draw(st.integers(0, 3)) == 0), probe, lease


@st.composite
def cluster(draw: st.DrawFn) -> tuple[list[SiteFacts], ClusterLifecycle, Observations]:
    sites: list[SiteFacts] = []
    probes: dict[str, NodeProbe] = {}
    leases = {}
    for s in range(draw(st.integers(2, 4))):
        drawn = [draw(member(f"s{s}-n{i}")) for i in range(draw(st.integers(2, 9)))]
        members = tuple(m for m, _, _ in drawn)
        for m, probe, lease in drawn:
            if probe is not None:
                probes[m.node.name] = probe
            if lease:
                leases[m.node.name] = NOW - timedelta(seconds=draw(st.integers(0, 200)))
        names = [m.node.name for m in members]
        up = [m.node.name for m in members if m.node.ready == "True"]
        # Kilo predicts a Ready member; sometimes the prediction is stale or missing.
        leader = draw(st.sampled_from([up[0]] * 12 + [None, *names])) if up else None
        pinned = (draw(st.sampled_from(names)),) if names and draw(st.integers(0, 2)) == 0 else ()
        lifecycle = policy(
            delete=draw(st.sampled_from([True, True, False])),
            after=draw(st.sampled_from(["2m", "10m", "30m"])),
            scope=draw(st.sampled_from(["pools", "all"])),
        )
        sites.append(SiteFacts(f"s{s}", lifecycle, members, leader, pinned))
    guard = rails(
        fraction=draw(st.sampled_from([0.55, 0.3, 1.0, 0.55, 0.0])),
        per_hour=draw(st.sampled_from([10, 0, 1, 2, 3, 5])),
        protect=draw(st.sampled_from([{}, {"tier": "db"}])),
    )
    past = draw(st.lists(st.integers(-120, 10), max_size=6))
    record = DeletionRecord(tuple(sorted(Deletion(NOW + timedelta(minutes=m), "x") for m in past)))
    if draw(st.integers(0, 9)) == 0:
        record = DeletionRecord.parse("garbage")
    return sites, guard, Observations(NOW, probes, leases, record)


def run(world: tuple[list[SiteFacts], ClusterLifecycle, Observations]) -> Decisions:
    return decide(*world)


PROPS = settings(derandomize=True, max_examples=250, deadline=None)
World = tuple[list[SiteFacts], ClusterLifecycle, Observations]


def a_deleted_node_met_every_rule(world: World, decisions: Decisions) -> None:
    sites, guard, seen = world
    by_name = {m.node.name: (s, m) for s in sites for m in s.members}
    for deletion in decisions.deletions:
        site, m = by_name[deletion.node]
        n = m.node
        assert n.ready != "True" and site.policy.delete_unreachable
        assert deletion.not_ready_for >= timedelta(seconds=site.policy.after_seconds)
        assert seen.probes[n.name].verdict is ProbeVerdict.SILENT  # a node that answered stays
        assert not n.is_control_plane and keys.LABEL_EXCLUDE_LIFECYCLE not in n.labels
        assert not (guard.protect.match_labels and n.labels.get("tier") == "db")
        assert n.name != site.leader and n.name not in site.pinned
        assert site.policy.scope == "all" or not m.named
        lease = seen.leases.get(n.name)
        assert lease is None or NOW - lease >= timedelta(seconds=60)
        assert seen.record.readable


def a_site_never_loses_all_its_members(world: World, decisions: Decisions) -> None:
    gone = {d.node for d in decisions.deletions}
    for site in world[0]:
        if site.members:
            assert any(m.node.name not in gone for m in site.members)
            scoped = [m for m in site.members if site.in_scope(m)]
            assert not scoped or any(m.node.name not in gone for m in scoped)


def deletions_never_exceed_the_budget(world: World, decisions: Decisions) -> None:
    _, guard, seen = world
    left = seen.record.remaining(guard.max_deletions_per_hour, NOW)
    assert len(decisions.deletions) <= left
    assert decisions.budget_left == left - len(decisions.deletions)
    recorded = (Deletion(NOW, d.node) for d in decisions.deletions)  # as the protocol does
    after = seen.record.with_deletions(recorded, NOW)
    assert after.remaining(guard.max_deletions_per_hour, NOW) == decisions.budget_left


def disrupted_sites_and_clusters_delete_nothing(world: World, decisions: Decisions) -> None:
    if decisions.cluster is not None:
        assert decisions.deletions == ()
    assert not {d.site for d in decisions.deletions} & decisions.disrupted


def only_not_ready_members_of_deleting_sites_are_decided(
    world: World, decisions: Decisions
) -> None:
    expected = [
        m.node.name
        for s in sorted(world[0], key=lambda s: s.name)
        if s.policy.delete_unreachable
        for m in sorted(s.members, key=lambda m: m.node.name)
        if m.node.ready != "True"
    ]
    assert [d.node for d in decisions.nodes] == expected


PROPERTIES = (
    a_deleted_node_met_every_rule,
    a_site_never_loses_all_its_members,
    deletions_never_exceed_the_budget,
    disrupted_sites_and_clusters_delete_nothing,
    only_not_ready_members_of_deleting_sites_are_decided,
)


def test_safety_properties() -> None:
    """Every property on every random cluster; then a check that the clusters were varied
    enough for the properties to mean something (deletions and guard rails both seen)."""
    seen = {"worlds": 0, "deleting": 0, "withheld by a guard rail": 0}

    @PROPS
    @given(cluster())
    def check(world: World) -> None:
        decisions = run(world)
        for prop in PROPERTIES:
            prop(world, decisions)
        seen["worlds"] += 1
        seen["deleting"] += bool(decisions.deletions)
        seen["withheld by a guard rail"] += any(d.reason in GUARD_RAILS for d in decisions.withheld)

    check()
    assert seen["deleting"] >= 10, seen
    assert seen["withheld by a guard rail"] >= seen["worlds"] // 5, seen
