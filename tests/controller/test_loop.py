"""The reconcile loop against the API-server double, through the real client over HTTP.

What the loop did is read from the double's request log (every write it sent) and its
store (what the nodes carry), and compared with a fresh plan of the pure core: once
converged, that plan writes nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from kubernetes import client

from reconciler.adapters.kubestatus import KubeEventSink
from reconciler.controller.events import EventRecorder
from reconciler.controller.loop import ReconcileLoop
from reconciler.controller.status import StatusReporter
from reconciler.core.planning.plan import Plan, SitePlan
from reconciler.core.planning.planner import Planner
from reconciler.core.rendering.status import status_text
from reconciler.model import keys
from reconciler.model.state import NodeWrite
from reconciler.model.topology import Topology
from tests.apiserver import ApiServer, RequestInfo
from tests.controller.loop_support import (
    EXAMPLE_SEEN,
    WallClock,
    annotate,
    heartbeat,
    pending_writes,
    running_loop,
    wait_until,
)

LAST_SEEN = keys.KILO_LAST_SEEN
WORKER = "fsn1-worker-new01"  # claimed by hetzner-fsn1's pool once labelled cx32


def node_patches(apiserver: ApiServer) -> list[str]:
    return [e.name or "" for e in apiserver.log.filter(verb="patch", resource="nodes")]


def converged(apiserver: ApiServer, topology: Topology, clock: WallClock) -> bool:
    return not pending_writes(apiserver, topology, clock.now)


def settle(loop: ReconcileLoop, apiserver: ApiServer, topology: Topology, clock: WallClock) -> None:
    """Converged, and the loop has taken in every event its writes caused."""
    assert wait_until(lambda: converged(apiserver, topology, clock))
    assert wait_until(lambda: loop.informer.version == str(apiserver.resource_version))
    assert wait_until(lambda: loop.queue.idle)


def test_converges_then_a_joining_node_costs_one_site(
    cluster: ApiServer, topology: Topology, clock: WallClock
) -> None:
    with running_loop(cluster, topology, clock) as loop:
        settle(loop, cluster, topology, clock)
        assert loop.ready and loop.stats.last_tick > 0
        assert loop.stats.full_plans == 1
        written = set(node_patches(cluster))
        assert "build-runner-1" not in written  # claimed by no site: never written
        for name in written:  # one write per node (a 409 re-plan may refuse one first)
            assert successful_patches(cluster, name) == 1, name
        cluster.log.clear()
        plans = loop.stats.site_plans

        cluster.seed_node(
            WORKER,
            labels={"node.kubernetes.io/instance-type": "cx32"},
            internal_ip="10.10.0.77",
        )
        assert wait_until(lambda: converged(cluster, topology, clock))
        node = cluster.node(WORKER)
        assert node is not None
        assert node["metadata"]["annotations"][keys.KILO_LOCATION] == "hetzner-fsn1"
        settle(loop, cluster, topology, clock)
        assert loop.stats.full_plans == 1  # no full re-plan
        assert {e.name for e in cluster.log.filter(verb="patch", status=200)} == {WORKER}
        assert successful_patches(cluster, WORKER) == 1
        assert 1 <= loop.stats.site_plans - plans <= 3  # the join, and the echo of the write


def test_kilo_heartbeats_cost_no_plan_and_no_write(
    cluster: ApiServer, topology: Topology, clock: WallClock
) -> None:
    with running_loop(cluster, topology, clock) as loop:
        settle(loop, cluster, topology, clock)
        cluster.log.clear()
        plans, events = loop.stats.site_plans, loop.informer.stats.events
        ignored = loop.stats.deltas_ignored
        rounds, count = 20, len(cluster.nodes())
        for i in range(rounds):
            heartbeat(cluster, EXAMPLE_SEEN + 1 + i % 3)  # each a change, fresh all along
        assert wait_until(lambda: loop.informer.stats.events == events + rounds * count)
        assert wait_until(lambda: loop.informer.version == str(cluster.resource_version))
        assert cluster.log.writes() == []
        assert loop.stats.site_plans == plans
        # the first round may make a node fresh that was not (one re-plan, if a site's)
        assert loop.stats.deltas_ignored - ignored >= (rounds - 1) * count


def test_a_foreign_annotation_is_kept(
    cluster: ApiServer, topology: Topology, clock: WallClock
) -> None:
    with running_loop(cluster, topology, clock) as loop:
        settle(loop, cluster, topology, clock)
        cluster.log.clear()
        annotate(cluster, "fsn1-gw-1", **{"example.com/owner": "team-a"})
        # and one topoctl declares, changed by hand: put back, the foreign key kept
        annotate(cluster, "fsn1-gw-1", **{keys.KILO_PERSISTENT_KEEPALIVE: "99"})
        assert wait_until(lambda: node_patches(cluster) == ["fsn1-gw-1"])
        settle(loop, cluster, topology, clock)
        node = cluster.node("fsn1-gw-1")
        assert node is not None
        annotations = node["metadata"]["annotations"]
        assert annotations["example.com/owner"] == "team-a"
        assert annotations[keys.KILO_PERSISTENT_KEEPALIVE] == "10"


def test_without_the_lease_nothing_is_written(
    cluster: ApiServer, topology: Topology, clock: WallClock
) -> None:
    leader = threading.Event()
    with running_loop(cluster, topology, clock, may_write=leader.is_set) as loop:
        assert wait_until(loop.informer.synced.is_set)
        cluster.seed_node(WORKER, labels={"node.kubernetes.io/instance-type": "cx32"})
        assert wait_until(lambda: loop.informer.version == str(cluster.resource_version))
        assert cluster.log.writes() == []
        assert loop.stats.site_plans == 0
        leader.set()  # the lease won: everything converges
        settle(loop, cluster, topology, clock)
        assert cluster.log.writes() != []


def test_dry_run_writes_nothing_and_counts(
    cluster: ApiServer, topology: Topology, clock: WallClock
) -> None:
    expected = pending_writes(cluster, topology, clock.now)
    with running_loop(cluster, topology, clock, dry_run=True) as loop:
        assert wait_until(lambda: loop.stats.full_plans == 1 and loop.queue.idle)
        assert wait_until(lambda: loop.writer.stats.dry_run == len(expected))
        assert cluster.log.writes() == []
        assert pending_writes(cluster, topology, clock.now) == expected


def successful_patches(apiserver: ApiServer, name: str) -> int:
    return apiserver.log.count(verb="patch", resource="nodes", name=name, status=200)


def test_dropped_streams_410_and_5xx_lose_and_repeat_no_write(
    cluster: ApiServer, topology: Topology, clock: WallClock
) -> None:
    with running_loop(cluster, topology, clock) as loop:
        settle(loop, cluster, topology, clock)
        cluster.log.clear()
        # a stream reset, and a change while no watch is open
        cluster.faults.fail(503, times=3, watch=True)
        cluster.drop_watches(abrupt=True)
        annotate(cluster, "fsn1-gw-1", **{keys.KILO_PERSISTENT_KEEPALIVE: "1"})
        settle(loop, cluster, topology, clock)
        # a compaction: the next watch gets 410 in the stream, and lists again
        relists = loop.informer.stats.relists_expired
        cluster.faults.fail(500, times=2, method="PATCH")

        def behind_the_watch(_req: RequestInfo) -> None:
            annotate(cluster, "ams1-gw-1", **{keys.KILO_PERSISTENT_KEEPALIVE: "7"})
            cluster.compact()
            annotate(cluster, "weu-gw-1", **{keys.KILO_LOCATION: "elsewhere"})

        rule = cluster.faults.before(behind_the_watch, watch=True, times=1)
        assert cluster.wait_for_watches(1)
        cluster.drop_watches()
        assert wait_until(lambda: rule.hits == 1)
        settle(loop, cluster, topology, clock)
        assert loop.informer.stats.relists_expired > relists
        assert loop.informer.stats.watch_failures >= 1
        for name in ("fsn1-gw-1", "ams1-gw-1", "weu-gw-1"):
            assert successful_patches(cluster, name) == 1, name
        assert cluster.log.count(verb="patch", resource="nodes", status=500) == 2


def test_a_leader_that_alone_stops_checking_in_moves_the_predicted_leader(
    cluster: ApiServer, topology: Topology, clock: WallClock, controller_api: client.ApiClient
) -> None:
    events = EventRecorder(KubeEventSink(controller_api, "topoctl-0"), clock)
    reporter = StatusReporter(None, events, clock)
    with running_loop(cluster, topology, clock, observer=reporter) as loop:
        settle(loop, cluster, topology, clock)
        plans = loop.stats.site_plans
        assert reporter.document["sites"]["hetzner-fsn1"]["leader"]["predicted"] == "fsn1-gw-1"
        cluster.log.clear()
        for _ in range(4):  # the others check in every 30 s; fsn1-gw-1 no more
            clock.advance(30)
            for node in cluster.nodes():
                if node["metadata"]["name"] != "fsn1-gw-1":
                    annotate(cluster, node["metadata"]["name"], **{LAST_SEEN: str(clock.now)})
        assert wait_until(lambda: loop.stats.freshness_flips >= 1)
        settle(loop, cluster, topology, clock)
        assert loop.stats.site_plans > plans
        assert loop.stats.full_plans == 1
        assert cluster.log.count(verb="patch", resource="nodes") > 0  # routes via the leader
        leader = reporter.document["sites"]["hetzner-fsn1"]["leader"]
        assert leader["predicted"] not in (None, "fsn1-gw-1"), leader
    moved = [e for e in cluster.objects("Event", "default") if e["reason"] == "KiloLeaderChange"]
    assert any(e["involvedObject"]["name"] == leader["predicted"] for e in moved)
    assert any("site hetzner-fsn1" in e["message"] for e in moved)


def test_kilo_going_silent_everywhere_withdraws_nothing(
    cluster: ApiServer, topology: Topology, clock: WallClock, controller_api: client.ApiClient
) -> None:
    """Every Kilo agent stops: the check-ins run out one by one, which is no leader
    change; nothing is written, the status says why the leader is unknown, and once Kilo
    checks in again the leader is known again, still without a write."""
    events = EventRecorder(KubeEventSink(controller_api, "topoctl-0"), clock)
    reporter = StatusReporter(None, events, clock)
    with running_loop(cluster, topology, clock, observer=reporter) as loop:
        settle(loop, cluster, topology, clock)
        published = {n["metadata"]["name"]: agent_of(n) for n in cluster.nodes()}
        cluster.log.clear()
        clock.advance(120)  # no node checked in for two minutes: Kilo counts none Ready
        assert wait_until(lambda: loop.stats.freshness_flips >= 5)
        # A silent site is looked at again every few seconds: the queue is never idle.
        assert wait_until(lambda: all(unknown(reporter, s) for s in SITES))
        assert cluster.log.count(verb="patch", resource="nodes") == 0
        assert {n["metadata"]["name"]: agent_of(n) for n in cluster.nodes()} == published
        leader = reporter.document["sites"]["hetzner-fsn1"]["leader"]
        assert leader["predicted"] is None
        assert leader["unknown"].startswith("Kilo is silent here: no node has checked in for")
        assert "fsn1-gw-1: stale last-seen (" in "\n".join(leader["notReady"]["items"])
        assert leader["held"] == "10.10.0.2 (fsn1-gw-1)"
        shown = status_text(reporter.document)
        assert "hetzner-fsn1: leader unknown: Kilo is silent here" in shown
        assert "routes via the leader stand as last published: 10.10.0.2 (fsn1-gw-1)" in shown
        plans = loop.stats.site_plans
        # Kilo is back, the leaders first (a node back before its leader is, for a moment,
        # the only one Kilo counts Ready there: Kilo elects it, and the plan follows Kilo).
        for name in GATEWAYS:
            annotate(cluster, name, **{LAST_SEEN: str(clock.now)})
        heartbeat(cluster, clock.now)
        assert wait_until(lambda: loop.stats.site_plans > plans)
        settle(loop, cluster, topology, clock)
        assert cluster.log.count(verb="patch", resource="nodes") == 0
        leader = reporter.document["sites"]["hetzner-fsn1"]["leader"]
        assert leader == {"current": "fsn1-gw-1", "predicted": "fsn1-gw-1"}
    # Only the first plan's real moves (to the pinned gateways), none to or from "none".
    for message in leader_events(cluster):
        moved = re.search(r"from (\S+) to (\S+) \(revision", message)
        assert moved is not None and moved.group(2) in GATEWAYS, message
        assert "none" not in moved.groups(), message


def leader_events(cluster: ApiServer) -> list[str]:
    events = cluster.objects("Event", "default")
    return sorted(e["message"] for e in events if e["reason"] == "KiloLeaderChange")


SITES = ("azure-weu", "hetzner-fsn1", "onprem-ams1")
GATEWAYS = ("weu-gw-1", "fsn1-gw-1", "ams1-gw-1")


def unknown(reporter: StatusReporter, site: str) -> bool:
    leader = reporter.document["sites"].get(site, {}).get("leader") or {}
    return bool(leader.get("unknown"))


def agent_of(node: dict[str, Any]) -> str | None:
    annotations: dict[str, str] = node["metadata"].get("annotations") or {}
    return annotations.get("topoctl.io/agent")


class Planned:
    """An observer that remembers which sites were planned."""

    def __init__(self) -> None:
        self.sites: list[str] = []

    def site_planned(
        self,
        plan: SitePlan,
        planner: Planner,
        revision: str,
        error: str,
        writes: Sequence[NodeWrite],
        flapping: Sequence[str],
    ) -> None:
        self.sites.append(plan.site)

    def full_planned(self, plan: Plan, planner: Planner, revision: str) -> None:
        pass

    def reconciled(self, result: str, seconds: float) -> None:
        pass

    def idle(self) -> None:
        pass


def test_a_node_moving_between_sites_queues_both(
    cluster: ApiServer, topology: Topology, clock: WallClock
) -> None:
    planned = Planned()
    with running_loop(cluster, topology, clock, observer=planned) as loop:
        settle(loop, cluster, topology, clock)
        planned.sites.clear()
        cluster.log.clear()
        # moved by hand into another site's Kilo location: both sites re-plan
        annotate(cluster, "fsn1-worker-7kq2p", **{keys.KILO_LOCATION: "onprem-ams1"})
        settle(loop, cluster, topology, clock)
        assert {"hetzner-fsn1", "onprem-ams1"} <= set(planned.sites)
        assert loop.stats.full_plans == 1
        patched = node_patches(cluster)
        assert "fsn1-worker-7kq2p" in patched
        node_after = cluster.node("fsn1-worker-7kq2p")
        assert node_after is not None
        assert node_after["metadata"]["annotations"][keys.KILO_LOCATION] == "hetzner-fsn1"


def test_stopping_finishes_the_write_in_flight_and_starts_no_other(
    cluster: ApiServer, topology: Topology, clock: WallClock
) -> None:
    expected = pending_writes(cluster, topology, clock.now)
    assert len(expected) > 2
    with running_loop(cluster, topology, clock) as loop:

        def sigterm(_req: RequestInfo) -> None:
            loop.request_stop()  # as the SIGTERM handler does, while a write is on the wire

        cluster.faults.before(sigterm, method="PATCH", times=1)
        assert wait_until(loop.stop.is_set)
    patches = cluster.log.filter(verb="patch", resource="nodes")
    assert len(patches) <= loop.settings.parallel  # the writes already sent, no more
    assert all(p.status == 200 for p in patches)  # each one finished
    assert len(pending_writes(cluster, topology, clock.now)) == len(expected) - len(patches)
