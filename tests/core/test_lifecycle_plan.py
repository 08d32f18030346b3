"""A plan's lifecycle part: candidates, probes over time, deletions and guard rails,
shown in every format and kept by saved plans; apply deletes only the object judged."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from msgspec.structs import replace

from reconciler.core.lifecycle.probes import ProbeSchedule
from reconciler.core.planning import savedplan
from reconciler.core.planning.plan import Plan
from reconciler.core.rendering import plans
from reconciler.core.rendering.comment import comment
from reconciler.model.probe import ProbeOutcome, ProbeRound
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology
from reconciler.usecases.lifecycle import Eyes
from reconciler.usecases.plan import plan_once
from tests.core.test_plan import site, topology
from tests.lifecycle_support import NOW, node


class FakeClock:
    """Wall time that moves only when the code under test waits."""

    def __init__(self, start: datetime = NOW) -> None:
        self.at = start
        self.waited = 0.0

    def monotonic(self) -> float:
        return self.waited

    def wall(self) -> datetime:
        return self.at

    def wait(self, stop: threading.Event, seconds: float) -> None:
        self.waited += seconds
        self.at += timedelta(seconds=seconds)


class FakeProber:
    """Every address answers except the ``silent`` ones; counts its rounds."""

    def __init__(self, clock: FakeClock, silent: Collection[str]) -> None:
        self.clock, self.silent, self.rounds = clock, set(silent), 0

    def probe(self, addresses: Collection[str]) -> ProbeRound:
        self.rounds += 1
        return ProbeRound(
            self.clock.wall(),
            {
                a: ProbeOutcome.SILENT if a in self.silent else ProbeOutcome.ANSWERED
                for a in addresses
            },
        )


class Reader:
    def __init__(self, nodes: Sequence[NodeState]) -> None:
        self.nodes = list(nodes)

    def list_nodes(self) -> list[NodeState]:
        return list(self.nodes)

    def get_node(self, name: str) -> NodeState:
        return next(n for n in self.nodes if n.name == name)


def fsn1(**lifecycle: object) -> Topology:
    policy = {"deleteUnreachable": True, "after": "10m", **lifecycle}
    return topology(
        site(
            "fsn1",
            nodes=[{"name": "gw-1", "endpoint": "203.0.113.1", "internalIP": "10.0.0.1"}],
            leader=["gw-1"],
            pools=[{"name": "workers", "selector": {"namePattern": "w-*"}}],
            lifecycle=policy,
        )
    )


def member(name: str, ready: str, internal: str) -> NodeState:
    """A node Kilo can mesh (a pod CIDR), NotReady for an hour unless Ready."""
    built = node(name, ready=ready, internal=internal, down_for=timedelta(hours=1))
    return replace(built, pod_cidr="10.244.0.0/24")


def cluster(down: Sequence[str], count: int = 5) -> list[NodeState]:
    nodes = [member("gw-1", "True", "10.0.0.1")]
    for i in range(1, count + 1):
        name = f"w-{i}"
        nodes.append(member(name, "False" if name in down else "True", f"10.0.1.{i}"))
    return nodes


def plan(
    topo: Topology, nodes: list[NodeState], silent: Collection[str] | None
) -> tuple[Plan, FakeProber | None, FakeClock]:
    clock = FakeClock()
    prober = FakeProber(clock, silent) if silent is not None else None
    eyes = Eyes(clock, prober)
    return plan_once(topo, Reader(nodes), eyes=eyes).plan, prober, clock


def test_without_probes_candidates_are_named_and_nothing_is_deleted() -> None:
    the_plan, _, clock = plan(fsn1(), cluster(["w-2"]), None)
    assert the_plan.lifecycle is not None and not the_plan.lifecycle.probed
    assert the_plan.deletions == ()
    assert clock.waited == 0  # no probes: no minute spent
    text = plans.text(the_plan)
    assert "not probed, so not deleted: w-2 (plan with --probe" in text
    assert "vantage" not in text  # the missing probes are said once, not as a guard rail


def test_a_silent_node_notready_long_enough_is_deleted_after_a_minute_of_probes() -> None:
    the_plan, prober, clock = plan(fsn1(), cluster(["w-2"]), {"10.0.1.2"})
    assert prober is not None and prober.rounds == 4  # 3 probes at least, over >= 60 s
    assert clock.waited >= 60
    (deletion,) = the_plan.deletions
    assert (deletion.node, deletion.uid, deletion.resource_version) == ("w-2", "uid-w-2", "7")
    assert (
        deletion.text == "would delete w-2: NotReady 1h1m, no answer from 10.0.1.2"
    )  # probes took a minute
    assert the_plan.has_changes
    assert "1 node to delete" in plans.summary_line(the_plan)
    assert "would delete w-2" in comment(the_plan)
    data = json.loads(plans.as_json(the_plan))
    assert data["summary"]["deletions"] == 1
    assert data["lifecycle"]["deletions"][0]["node"] == "w-2"


def test_a_node_that_answers_is_kept() -> None:
    the_plan, _, _ = plan(fsn1(), cluster(["w-2"]), set())
    assert the_plan.deletions == ()
    assert the_plan.lifecycle is not None
    assert [w.reason for w in the_plan.lifecycle.withheld] == ["answers-ping"]


def test_a_partitioned_site_deletes_nothing_and_says_why() -> None:
    down = ["w-1", "w-2", "w-3", "w-4"]
    silent = {f"10.0.1.{i}" for i in range(1, 5)}
    the_plan, _, _ = plan(fsn1(), cluster(down), silent)
    assert the_plan.deletions == ()
    text = plans.text(the_plan)
    assert "withheld in fsn1: 4 of 6 nodes NotReady (67 % >= 55 %)" in text


def test_the_predicted_leader_is_never_deleted() -> None:
    nodes = cluster([])
    nodes[0] = member("gw-1", "False", "10.0.0.1")
    the_plan, _, _ = plan(fsn1(scope="all"), nodes, {"10.0.0.1"})
    assert the_plan.deletions == ()
    assert the_plan.lifecycle is not None
    reasons = {w.reason for w in the_plan.lifecycle.withheld}
    assert reasons & {"leader", "site-leader-down"}


def test_full_granularity_has_no_location_leader_to_guard() -> None:
    topo = fsn1()
    topo = Topology(
        cluster=topo.cluster.model_copy(
            update={
                "spec": topo.cluster.spec.model_copy(
                    update={
                        "mesh": topo.cluster.spec.mesh.model_copy(update={"granularity": "full"})
                    }
                )
            }
        ),
        sites=topo.sites,
    )
    the_plan, _, _ = plan(topo, cluster(["w-2"]), {"10.0.1.2"})
    assert [d.node for d in the_plan.deletions] == ["w-2"]


def test_sites_without_deletion_give_no_lifecycle_part() -> None:
    topo = topology(site("quiet", nodes=[{"name": "gw-1"}]))
    the_plan, _, _ = plan(topo, cluster(["w-2"]), None)
    assert the_plan.lifecycle is None
    assert "lifecycle" not in json.loads(plans.as_json(the_plan))


def test_a_saved_plan_keeps_its_deletions() -> None:
    the_plan, _, _ = plan(fsn1(), cluster(["w-2"]), {"10.0.1.2"})
    loaded, _source = savedplan.load(savedplan.dump(the_plan, {}))
    assert loaded.lifecycle == the_plan.lifecycle
    assert loaded.deletions == the_plan.deletions


def test_probing_stops_when_asked() -> None:
    clock = FakeClock()
    prober = FakeProber(clock, {"10.0.1.2"})
    eyes = Eyes(clock, prober, ProbeSchedule())
    eyes.stop.set()  # SIGINT during a plan --probe: no more rounds, and no verdict
    the_plan = plan_once(fsn1(), Reader(cluster(["w-2"])), eyes=eyes).plan
    assert prober.rounds == 0
    assert the_plan.deletions == ()
