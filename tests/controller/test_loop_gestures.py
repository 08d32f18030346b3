"""The reconcile loop on the double under topoctl suspend and topoctl reconcile: a
suspended site is planned - on every pass and every node event - and never written,
while the others converge; resumed, it is written at once; a reconcile request is
answered by a full pass, echoed once it has planned the cluster; a suspended site whose
Kilo falls silent is still re-planned on the silence's timer, written nothing, and its
status shows the suspension, the drift and the unknown leader together."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from reconciler.adapters.kubestatus import KubeEventSink
from reconciler.controller.events import EventRecorder
from reconciler.controller.reconciler import SILENT_RECHECK
from reconciler.controller.status import StatusReporter
from reconciler.controller.suspension import SuspensionView
from reconciler.core.rendering.status import status_text
from reconciler.model import keys
from reconciler.model.suspension import Hold, Suspension
from reconciler.model.topology import Topology
from tests.apiserver import ApiServer
from tests.controller.loop_support import (
    WallClock,
    annotate,
    pending_writes,
    running_loop,
    wait_until,
)

SITE = "hetzner-fsn1"
HOLD = Hold("alice", "2026-12-07T23:40:00Z", "incident")


def site_of(topology: Topology, apiserver: ApiServer, clock: WallClock) -> dict[str, bool]:
    """Each node a fresh plan still writes: whether it is in the suspended site."""
    from reconciler.core.planning.planner import Planner
    from tests.controller.loop_support import live

    plan = Planner(topology, live(apiserver), clock.now).plan_all()
    return {n.node: n.site == SITE for n in plan.writes}


def test_a_suspended_site_is_planned_never_written_and_resumed_at_once(
    cluster: ApiServer, topology: Topology, clock: WallClock
) -> None:
    holds: dict[str, Hold] = {SITE: HOLD}
    with running_loop(cluster, topology, clock, suspended=holds.get) as loop:
        assert wait_until(
            lambda: (
                bool(pending_writes(cluster, topology, clock.now))
                and all(site_of(topology, cluster, clock).values())
                and loop.queue.idle
            )
        )  # every other site converged; the suspended one still drifts
        drifting = site_of(topology, cluster, clock)
        assert drifting and all(drifting.values())
        written = {e.name for e in cluster.log.filter(verb="patch", resource="nodes")}
        assert not written & set(drifting)
        assert loop.stats.results.get("suspended", 0) >= 1

        gateway = "fsn1-gw-1"  # a node event in the suspended site: planned, not written
        plans = loop.stats.site_plans
        annotate(cluster, gateway, **{keys.KILO_PERSISTENT_KEEPALIVE: "99"})
        assert wait_until(lambda: loop.stats.site_plans > plans and loop.queue.idle)
        node = cluster.node(gateway)
        assert node is not None
        assert node["metadata"]["annotations"][keys.KILO_PERSISTENT_KEEPALIVE] == "99"
        assert cluster.log.count(verb="patch", resource="nodes", name=gateway) == 0

        holds.clear()
        loop.plan_everything()  # what the suspension's change does
        assert wait_until(lambda: not pending_writes(cluster, topology, clock.now))
        node = cluster.node(gateway)
        assert node is not None
        assert node["metadata"]["annotations"][keys.KILO_PERSISTENT_KEEPALIVE] == "10"


def test_a_reconcile_request_is_a_full_pass_echoed_once_it_planned_the_cluster(
    cluster: ApiServer, topology: Topology, clock: WallClock
) -> None:
    handled: list[str] = []
    with running_loop(cluster, topology, clock, on_handled=handled.append) as loop:
        assert wait_until(lambda: loop.stats.full_plans == 1 and loop.queue.idle)
        assert handled == []
        loop.reconcile_now("T1")
        assert wait_until(lambda: handled == ["T1"])
        assert loop.stats.full_plans == 2
        loop.reconcile_now("T2")
        loop.reconcile_now("T3")  # before the pass: one pass answers both
        assert wait_until(lambda: handled[-1:] == ["T3"] and loop.queue.idle)
        assert handled[0] == "T1" and set(handled[1:]) <= {"T2", "T3"}


def test_a_suspended_site_gone_silent_is_rechecked_unwritten_and_shows_both(
    cluster: ApiServer, topology: Topology, clock: WallClock, controller_api: client.ApiClient
) -> None:
    view = SuspensionView(known=Suspension().suspend((SITE,), HOLD))
    events = EventRecorder(KubeEventSink(controller_api, "topoctl-0"), clock)
    reporter = StatusReporter(None, events, clock, suspension=view)
    with running_loop(cluster, topology, clock, observer=reporter, suspended=view.covers) as loop:
        assert wait_until(
            lambda: (
                bool(pending_writes(cluster, topology, clock.now))
                and all(site_of(topology, cluster, clock).values())
                and loop.queue.idle
            )
        )  # every other site converged; the suspended one still drifts
        members = {n for n, ours in site_of(topology, cluster, clock).items() if ours}
        clock.advance(120)  # no node checked in for two minutes: Kilo is silent everywhere

        def shown() -> dict[str, Any]:
            site: dict[str, Any] = reporter.document["sites"].get(SITE) or {}
            return site

        assert wait_until(lambda: bool((shown().get("leader") or {}).get("unknown")))
        suspended = loop.stats.results.get("suspended", 0)
        # No node event comes while Kilo is silent: only the silence's timer plans it again.
        assert wait_until(
            lambda: loop.stats.results.get("suspended", 0) > suspended, SILENT_RECHECK + 5
        )
        patched = {e.name for e in cluster.log.filter(verb="patch", resource="nodes")}
        assert not patched & members
        site = shown()
        assert site["suspended"] == HOLD.as_json()
        assert site["drift"]["count"] == len(members)
        assert site["leader"]["predicted"] is None
        text = status_text(reporter.document)
        assert f"{SITE}: leader unknown: Kilo is silent here" in text
        assert f"{SITE}: suspended, {len(members)} node(s) drift from git:" in text
    moved = [e for e in cluster.objects("Event", "default") if e["reason"] == "KiloLeaderChange"]
    assert not [e for e in moved if f"site {SITE}:" in e["message"]]
