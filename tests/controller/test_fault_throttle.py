"""The fault matrix, 429 with Retry-After on writes: the wait the API asks for is kept.

Node writes: the reconcile loop on fake time, its writes tried once as ``topoctl run``
tries them; while the double answers every Node PATCH 429 with ``Retry-After: 5``, no
Node write is sent sooner than 5 s after the last answer (the other sites' writes wait
too, unsent), and once the API takes writes again the cluster converges. The status
ConfigMap and Events keep the same wait.
"""

from __future__ import annotations

import itertools

import pytest

from reconciler.adapters.kubestatus import KubeEventSink, KubeStatusStore
from reconciler.controller.events import EventRecorder
from reconciler.controller.status import StatusReporter
from reconciler.model.topology import Topology
from reconciler.usecases.statusmap import STATUS_NAME, StatusConfigMap
from tests.apiserver import ApiServer
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.controller.fault_support import FakeTimeLoop
from tests.controller.loop_support import (
    EXAMPLE_SEEN,
    example_topology,
    pending_writes,
    seed_examples,
    wait_until,
)
from tests.shipped_rbac import NAMESPACE, Shipped

RETRY_AFTER = 5


@pytest.fixture(scope="module")
def topology() -> Topology:
    return example_topology()


def patch_times(apiserver: ApiServer, base: TimeBase, seen: list[float]) -> None:
    """Record the fake time of every Node PATCH the double serves."""
    apiserver.faults.before(lambda _r: seen.append(base.now), times=None, method="PATCH")


def test_node_writes_wait_the_retry_after_then_converge(
    shipped: Shipped, topology: Topology
) -> None:
    apiserver = shipped.apiserver
    seed_examples(apiserver)
    owed = pending_writes(apiserver, topology, EXAMPLE_SEEN + 5)
    assert len(owed) > 4
    apiserver.faults.throttle(retry_after=RETRY_AFTER, times=None, method="PATCH")
    with FakeTimeLoop(apiserver, topology, EXAMPLE_SEEN + 5) as running:
        sent: list[float] = []
        patch_times(apiserver, running.base, sent)
        running.drive(60.0, step=0.25)
        # a burst at most as wide as the executor's pool, then one per Retry-After
        bursts = sorted(set(sent))
        assert all(b - a >= RETRY_AFTER for a, b in itertools.pairwise(bursts))
        assert len(sent) <= 4 * (60 // RETRY_AFTER + 1)
        assert running.loop.writer.stats.throttled > 0  # held back, unsent
        apiserver.faults.clear()
        running.drive(RETRY_AFTER + 65.0, step=0.25)  # the longest backoff, then converged
        now = int(running.clock.wall().timestamp())  # Kilo's freshness, as the loop judges it
        assert wait_until(lambda: not pending_writes(apiserver, topology, now))


def test_the_status_and_events_wait_the_retry_after(shipped: Shipped) -> None:
    apiserver = shipped.apiserver
    api = shipped.api(shipped.controller_token())
    base = TimeBase()
    clock = FakeClock(base)
    events = EventRecorder(KubeEventSink(api, "topoctl-0"), clock, interval=0.0)
    status = StatusReporter(
        StatusConfigMap(KubeStatusStore(api, NAMESPACE, STATUS_NAME)), events, clock
    )
    apiserver.faults.throttle(retry_after=30, times=None, method="POST")
    for i in range(120):  # a change, and an event, every half second for a minute
        status.refused(f"{i:040}", [f"error {i}"])
        events.record("w-1", f"Reason{i}", "a note")
        status.idle()
        base.advance(0.5)
    posts = apiserver.log.filter(method="POST")
    # one status write (a create) and one event per 30 s, not one each 2 s and each turn
    assert apiserver.log.count(method="POST", resource="configmaps") <= 2
    assert apiserver.log.count(method="POST", resource="events") <= 2
    assert all(e.status == 429 for e in posts)
    apiserver.faults.clear()
    base.advance(30.0)
    status.idle()
    assert apiserver.get("ConfigMap", STATUS_NAME, NAMESPACE) is not None
    api.close()
