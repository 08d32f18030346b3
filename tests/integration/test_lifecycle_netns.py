"""Lifecycle end to end over real ICMP: nodes as namespaces, probe rounds from a prober
namespace on an injected clock (four rounds 20 s apart, no real minute waited), the
verdicts fed into the pure decisions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from reconciler.adapters.icmp import IcmpProber
from reconciler.core.lifecycle.guards import WithheldReason
from reconciler.core.lifecycle.probes import NodeProbe, ProbeHistory, addresses_to_probe
from reconciler.core.lifecycle.record import DeletionRecord
from reconciler.core.lifecycle.rules import Decisions, Observations, decide
from reconciler.model.state import NodeState
from tests.conftest import needs_root
from tests.icmp_lab import Lab, inside, lab
from tests.lifecycle_support import NOW, node, rails, site

pytestmark = [pytest.mark.root, needs_root]
ROUNDS = 4
TIMEOUT = 1.0  # generous: a reply queued while this process waits for a core still counts


@pytest.fixture
def net() -> Iterator[Lab]:
    with lab() as built:
        yield built


def member(net: Lab, name: str, *, ready: bool, answers: bool, days: int = 0) -> NodeState:
    """A node namespace and its Node: NotReady for 14 minutes (or ``days``) when not ready."""
    held = net.add_node(name)
    if not answers:
        net.silence(name)
    down_for = timedelta(days=days) if days else timedelta(minutes=14)
    return node(
        name,
        ready="True" if ready else "False",
        down_for=down_for,
        internal=held.internal,
        external=held.external,
    )


def observe(net: Lab, nodes: list[NodeState]) -> dict[str, NodeProbe]:
    """Four real probe rounds, stamped 20 s apart ending 5 s before NOW."""
    stamps = iter(NOW - timedelta(seconds=65 - 20 * i) for i in range(ROUNDS))
    prober = IcmpProber(TIMEOUT, clock=lambda: next(stamps))
    history = ProbeHistory()
    with inside(net.prober):
        for _ in range(ROUNDS):
            found = prober.probe(addresses_to_probe(nodes))
            history = history.add(found, found.at)
    return history.nodes(nodes)


def run(net: Lab, sites: dict[str, list[NodeState]]) -> Decisions:
    probes = observe(net, [n for members in sites.values() for n in members])
    facts = [site(name, members) for name, members in sites.items()]
    return decide(facts, rails(), Observations(NOW, probes, {}, DeletionRecord()))


def test_only_the_silent_not_ready_node_goes(net: Lab) -> None:
    sites = {
        "fsn1": [
            member(net, "fsn1-a", ready=True, answers=True),
            member(net, "fsn1-b", ready=True, answers=True),
            member(net, "fsn1-zombie", ready=False, answers=False),
            member(net, "fsn1-busy", ready=False, answers=True, days=3),
        ],
        "nbg1": [member(net, f"nbg1-{c}", ready=True, answers=True) for c in "abc"],
    }
    decisions = run(net, sites)
    assert [d.node for d in decisions.deletions] == ["fsn1-zombie"]
    (gone,) = decisions.deletions
    zombie = net.nodes["fsn1-zombie"]
    assert gone.silent == (zombie.internal, zombie.external)
    assert gone.probes == ROUNDS and gone.span == timedelta(seconds=60)
    kept = {d.node: d.reason for d in decisions.withheld}
    assert kept == {"fsn1-busy": WithheldReason.ANSWERS_PING}  # NotReady for days, but it answers


def test_partition_of_60_percent_spares_that_site_and_not_the_other(net: Lab) -> None:
    fsn1 = [member(net, f"fsn1-{c}", ready=True, answers=True) for c in "ab"]
    fsn1 += [member(net, f"fsn1-cut{i}", ready=False, answers=False) for i in range(3)]
    nbg1 = [member(net, f"nbg1-{c}", ready=True, answers=True) for c in "abc"]
    nbg1.append(member(net, "nbg1-zombie", ready=False, answers=False))
    decisions = run(net, {"fsn1": fsn1, "nbg1": nbg1})
    assert [d.node for d in decisions.deletions] == ["nbg1-zombie"]
    assert {d.reason for d in decisions.withheld} == {WithheldReason.SITE_DISRUPTED}
    assert decisions.sites["fsn1"].text == "withheld in fsn1: 3 of 5 nodes NotReady (60 % >= 55 %)"


def test_every_site_impaired_deletes_nothing(net: Lab) -> None:
    fsn1 = [member(net, "fsn1-a", ready=True, answers=True)]
    fsn1 += [member(net, f"fsn1-cut{i}", ready=False, answers=False) for i in range(2)]
    nbg1 = [member(net, "nbg1-a", ready=True, answers=True)]
    nbg1 += [member(net, f"nbg1-cut{i}", ready=False, answers=False) for i in range(3)]
    decisions = run(net, {"fsn1": fsn1, "nbg1": nbg1})
    assert decisions.deletions == ()
    assert (
        decisions.cluster is not None
        and decisions.cluster.reason is WithheldReason.CLUSTER_DISRUPTED
    )


def test_a_prober_cut_off_from_ready_nodes_deletes_nothing(net: Lab) -> None:
    sites = {
        "fsn1": [member(net, f"fsn1-{c}", ready=True, answers=True) for c in "abc"],
        "nbg1": [member(net, f"nbg1-{c}", ready=True, answers=True) for c in "abc"],
    }
    sites["fsn1"].append(member(net, "fsn1-zombie", ready=False, answers=False))
    assert [d.node for d in run(net, sites).deletions] == ["fsn1-zombie"]  # from a good spot

    net.cut_off()
    decisions = run(net, sites)
    assert decisions.deletions == ()
    assert (
        decisions.cluster is not None and decisions.cluster.reason is WithheldReason.VANTAGE_CUT_OFF
    )
    assert "6 of 6 Ready nodes do not answer from here" in decisions.cluster.text
    assert {d.reason for d in decisions.withheld} == {WithheldReason.VANTAGE_CUT_OFF}
