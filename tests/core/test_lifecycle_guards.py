"""Guard rails: partitions, small locations, a dead leader, a cut-off prober, the budget."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from reconciler.core.lifecycle.guards import MemberFacts, SiteFacts, WithheldReason
from reconciler.core.lifecycle.probes import NodeProbe
from reconciler.core.lifecycle.record import Deletion, DeletionRecord
from reconciler.core.lifecycle.rules import Decisions, Delete, Observations, decide
from reconciler.core.lifecycle.text import human_duration, percent, ratio_text
from reconciler.model.state import NodeState
from reconciler.model.topology import ClusterLifecycle
from tests.lifecycle_support import (
    GUARD_RAILS,
    NOW,
    answered,
    node,
    policy,
    rails,
    silent,
    site,
    unknown,
)


def members(prefix: str, ready: int, dead: int, *, dead_for: int = 20) -> list[NodeState]:
    """``ready`` Ready members then ``dead`` NotReady ones (oldest first, a minute apart)."""
    up = [node(f"{prefix}-r{i}") for i in range(ready)]
    down = [
        node(f"{prefix}-d{i}", ready="False", down_for=timedelta(minutes=dead_for - i))
        for i in range(dead)
    ]
    return up + down


def run(
    sites: list[SiteFacts],
    cluster: ClusterLifecycle | None = None,
    probes: dict[str, NodeProbe] | None = None,
    record: DeletionRecord | None = None,
) -> Decisions:
    """Ready nodes answer and NotReady ones are silent unless ``probes`` says otherwise."""
    found: dict[str, NodeProbe] = {}
    for s in sites:
        for m in s.members:
            found[m.node.name] = answered() if m.node.ready == "True" else silent()
    found |= probes or {}
    seen = Observations(NOW, found, {}, record or DeletionRecord())
    return decide(sites, cluster or rails(), seen)


def deleted(decisions: Decisions) -> set[str]:
    return {d.node for d in decisions.deletions}


def reasons(decisions: Decisions, site_name: str) -> set[WithheldReason]:
    return {d.reason for d in decisions.withheld if d.site == site_name}


def test_partition_of_60_percent_holds_that_site_only() -> None:
    fsn1 = site("hetzner-fsn1", members("fsn1", 2, 3))
    nbg1 = site("hetzner-nbg1", members("nbg1", 4, 1))
    decisions = run([fsn1, nbg1])
    assert deleted(decisions) == {"nbg1-d0"}
    assert reasons(decisions, "hetzner-fsn1") == {WithheldReason.SITE_DISRUPTED}
    assert decisions.sites["hetzner-fsn1"].text == (
        "withheld in hetzner-fsn1: 3 of 5 nodes NotReady (60 % >= 55 %)"
    )
    assert decisions.cluster is None and decisions.disrupted == {"hetzner-fsn1"}


def test_the_issue_example_text() -> None:
    decisions = run([site("hetzner-fsn1", members("fsn1", 2, 4)), site("b", members("b", 3, 0))])
    assert decisions.sites["hetzner-fsn1"].text == (
        "withheld in hetzner-fsn1: 4 of 6 nodes NotReady (67 % >= 55 %)"
    )


def test_below_the_fraction_the_site_deletes() -> None:
    decisions = run([site("s", members("s", 3, 2)), site("t", members("t", 3, 0))])
    assert deleted(decisions) == {"s-d0", "s-d1"}  # 40 % < 55 %


def test_silent_ready_members_count_as_impaired() -> None:
    s = site("s", members("s", 3, 2))
    probes = {"s-r1": silent(probes=1)}  # 3 of 5 impaired
    decisions = run([s, site("t", members("t", 3, 0))], probes=probes)
    assert deleted(decisions) == set()
    assert (
        decisions.sites["s"].text == "withheld in s: 3 of 5 nodes NotReady or silent (60 % >= 55 %)"
    )


def test_a_two_node_location_with_one_dead_member_deletes_it() -> None:
    decisions = run([site("pair", members("pair", 1, 1)), site("t", members("t", 3, 0))])
    assert deleted(decisions) == {"pair-d0"}


def test_a_location_behind_a_dead_link_keeps_all_its_members() -> None:
    for size in (1, 2, 5):
        lone = site("lone", members("lone", 0, size), leader=None)
        decisions = run([lone, site("t", members("t", 3, 0))])
        assert deleted(decisions) == set()
        assert reasons(decisions, "lone") == {WithheldReason.SITE_ALL_DOWN}


def test_every_in_scope_member_down_keeps_them() -> None:
    named = MemberFacts(node("named-gw"), named=True)
    pool = [MemberFacts(n) for n in members("p", 0, 2)]
    decisions = run([site("s", [named, *pool]), site("t", members("t", 3, 0))])
    assert deleted(decisions) == set()
    assert decisions.sites["s"].reason is WithheldReason.SITE_ALL_DOWN
    assert "in-scope" in decisions.sites["s"].text


def test_a_silent_leader_stops_its_site() -> None:
    s = site("s", members("s", 4, 1), leader="s-r0")
    decisions = run([s, site("t", members("t", 3, 0))], probes={"s-r0": silent(probes=1)})
    assert deleted(decisions) == set()
    assert decisions.sites["s"].reason is WithheldReason.SITE_LEADER_DOWN
    assert "s-r0" in decisions.sites["s"].text


def test_no_predicted_leader_stops_its_site() -> None:
    decisions = run([site("s", members("s", 4, 1), leader=None), site("t", members("t", 3, 0))])
    assert decisions.sites["s"].reason is WithheldReason.SITE_LEADER_DOWN


def test_every_site_disrupted_deletes_nothing() -> None:
    a = site("a", members("a", 1, 2))
    b = site("b", members("b", 0, 1), leader=None)
    quiet = site("empty", [])  # a site without members does not count
    decisions = run([a, b, quiet])
    assert deleted(decisions) == set()
    assert (
        decisions.cluster is not None
        and decisions.cluster.reason is WithheldReason.CLUSTER_DISRUPTED
    )


def test_disruption_of_a_site_that_does_not_delete_still_counts() -> None:
    a = site("a", members("a", 1, 2))
    b = site("b", members("b", 1, 2), lifecycle=policy(delete=False))
    decisions = run([a, b])
    assert (
        decisions.cluster is not None
        and decisions.cluster.reason is WithheldReason.CLUSTER_DISRUPTED
    )
    assert set(decisions.sites) == {"a"} and decisions.disrupted == {"a", "b"}


def test_a_prober_that_cannot_reach_ready_nodes_deletes_nothing() -> None:
    a = site("a", members("a", 5, 1))
    b = site("b", members("b", 5, 0))
    lost = {f"{p}-r{i}": unknown() for p in "ab" for i in range(4)}  # 8 of 10 Ready unanswered
    decisions = run([a, b], probes=lost)
    assert deleted(decisions) == set()
    assert (
        decisions.cluster is not None and decisions.cluster.reason is WithheldReason.VANTAGE_CUT_OFF
    )
    assert reasons(decisions, "a") == {WithheldReason.VANTAGE_CUT_OFF}
    assert "8 of 10 Ready nodes" in decisions.cluster.text


def test_no_ready_node_probed_means_an_unchecked_vantage_point() -> None:
    a = site("a", members("a", 3, 1))
    b = site("b", members("b", 3, 0))
    seen = Observations(NOW, {"a-d0": silent()})
    decisions = decide([a, b], rails(), seen)
    assert deleted(decisions) == set()
    assert (
        decisions.cluster is not None and decisions.cluster.reason is WithheldReason.VANTAGE_CUT_OFF
    )


def test_budget_takes_the_longest_dead_first_and_counts_this_round() -> None:
    record = DeletionRecord((Deletion(NOW - timedelta(minutes=30), "old"),))
    s = site("s", members("s", 8, 4))  # 4 of 12: 33 %
    decisions = run([s, site("t", members("t", 3, 0))], rails(per_hour=3), record=record)
    assert [d.node for d in decisions.deletions] == ["s-d0", "s-d1"]
    assert {d.node: d.reason for d in decisions.withheld} == {
        "s-d2": WithheldReason.BUDGET_SPENT,
        "s-d3": WithheldReason.BUDGET_SPENT,
    }
    assert decisions.budget_left == 0
    after = record.with_deletions((Deletion(NOW, d.node) for d in decisions.deletions), NOW)
    assert [d.node for d in after.deletions] == ["old", "s-d0", "s-d1"]
    assert after.remaining(3, NOW) == 0
    assert after.remaining(3, NOW + timedelta(minutes=31)) == 1


def test_deletions_keep_a_stable_order_of_nodes() -> None:
    decisions = run([site("s", members("s", 8, 3)), site("t", members("t", 3, 0))])
    assert [d.node for d in decisions.nodes] == ["s-d0", "s-d1", "s-d2"]
    assert all(isinstance(d, Delete) for d in decisions.nodes)


def test_the_reasons_are_the_metric_labels_docs_lifecycle_md_lists() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md").read_text()
    section = docs.split("## Reasons", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"`([a-z-]+)`", section) == [r.value for r in WithheldReason]
    assert "The last seven are the guard rails." in section
    assert {r.value for r in GUARD_RAILS} == {
        "site-all-down",
        "site-leader-down",
        "site-disrupted",
        "cluster-disrupted",
        "vantage-cut-off",
        "budget-spent",
        "budget-unreadable",
    }


def test_texts() -> None:
    assert human_duration(timedelta(minutes=14)) == "14m"
    assert human_duration(timedelta(hours=1, minutes=5, seconds=3)) == "1h5m"
    assert human_duration(timedelta(days=2, hours=3, minutes=9)) == "2d3h"
    assert human_duration(timedelta(seconds=-4)) == "0s"
    assert percent(0.55) == "55 %" and percent(2 / 3) == "67 %" and percent(1) == "100 %"
    assert percent(2 / 3, 1) == "66.7 %"
    assert ratio_text(0.5496, 0.5495) == "55 % >= 55 %"
    assert ratio_text(0.6, 0.55) == "60 % >= 55 %"
