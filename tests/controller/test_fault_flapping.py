"""The fault matrix, hostile annotations: another writer that keeps changing back a key
topoctl owns.

The reconcile loop runs on fake time against the double; another controller puts its
own value back the moment topoctl writes a key (an ``after`` hook on topoctl's PATCH),
or someone's ``kubectl annotate`` rewrites it every few seconds. topoctl writes that key
at most once per interval (10 s), doubling to the cap (5 min), never at full speed; the
node's other keys are written as usual; the status and ``topoctl_flapping_keys`` say
which key flaps; once the other writer stops, the key converges and the report clears.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from reconciler.controller.metrics import Metrics
from reconciler.controller.observers import Fanout, MetricsObserver
from reconciler.controller.status import StatusReporter
from reconciler.core.rendering.status import status_text
from reconciler.model import keys
from reconciler.model.topology import Topology
from tests.apiserver import ApiServer, RequestInfo
from tests.controller.fakeclock import TimeBase
from tests.controller.fault_support import FakeTimeLoop, fake_clock
from tests.controller.loop_support import (
    EXAMPLE_SEEN,
    annotate,
    example_topology,
    pending_writes,
    seed_examples,
    wait_until,
)
from tests.shipped_rbac import Shipped

NODE, SITE = "fsn1-gw-1", "hetzner-fsn1"
KEY = keys.KILO_PERSISTENT_KEEPALIVE  # topoctl sets "10" on it
OTHER = "99"  # what the other writer wants


@pytest.fixture(scope="module")
def topology() -> Topology:
    return example_topology()


class Watched:
    """The loop, and what an SRE sees of it: the status document and the metrics."""

    def __init__(self, apiserver: ApiServer, topology: Topology) -> None:
        base = TimeBase()
        self.status = StatusReporter(None, None, fake_clock(base, EXAMPLE_SEEN + 5))
        self.metrics = Metrics()
        self.observers = Fanout(self.status)
        self.running = FakeTimeLoop(
            apiserver, topology, EXAMPLE_SEEN + 5, observer=self.observers, base=base
        )
        loop = self.running.loop
        self.observers.add(MetricsObserver(self.metrics, loop.informer.stats, loop.writer.stats))

    def flapping(self) -> list[str]:
        return list(self.status.document["sites"][SITE]["flapping"]["items"])

    def gauge(self) -> float:
        value = self.metrics.registry.get_sample_value("topoctl_flapping_keys", {"site": SITE})
        return value or 0.0


@pytest.fixture
def watched(shipped: Shipped, topology: Topology) -> Iterator[Watched]:
    seed_examples(shipped.apiserver)
    watched = Watched(shipped.apiserver, topology)
    with watched.running:
        watched.running.drive(1.0)
        assert wait_until(lambda: not pending_writes(shipped.apiserver, topology, EXAMPLE_SEEN + 5))
        yield watched


def key_writes(apiserver: ApiServer) -> list[float]:
    """Every PATCH of NODE that sets KEY (the fake times are recorded by the hook)."""
    return [
        e.timestamp
        for e in apiserver.log.filter(verb="patch", name=NODE)
        if KEY in ((e.body or {}).get("metadata") or {}).get("annotations", {})
    ]


def test_a_writer_that_puts_a_key_back_at_once_meets_one_write_per_interval(
    shipped: Shipped, topology: Topology, watched: Watched
) -> None:
    apiserver, running = shipped.apiserver, watched.running
    sets: list[float] = []

    def put_back(req: RequestInfo) -> None:  # another controller, reacting to topoctl's write
        annotations = ((req.body or {}).get("metadata") or {}).get("annotations") or {}
        if KEY in annotations:
            sets.append(running.base.now)
            annotate(apiserver, NODE, **{KEY: OTHER})

    apiserver.faults.after(put_back, times=None, method="PATCH", path=f"/nodes/{NODE}$")
    annotate(apiserver, NODE, **{KEY: OTHER})  # it starts
    running.drive(600.0, step=1.0)
    # written last as it converged (t=0): then 10, 30, 70, 150, 310 s, then every 300 s
    assert 5 <= len(sets) <= 6, sets
    assert sets[0] >= 10.0
    gaps = [b - a for a, b in itertools.pairwise(sets)]
    assert all(later >= min(2 * gap, 300.0) - 1.0 for gap, later in itertools.pairwise(gaps))
    assert any(NODE in line and KEY in line for line in watched.flapping())
    assert watched.gauge() == 1.0
    shown = status_text(watched.status.document)  # topoctl status
    assert f"{SITE}: another writer keeps changing {NODE}: annotation {KEY}" in shown
    # it stops: the key converges at the next write allowed, the report clears later
    apiserver.faults.clear()
    running.drive(310.0, step=1.0)
    node = apiserver.node(NODE)
    assert node is not None and node["metadata"]["annotations"][KEY] == "10"
    running.drive(600.0, step=5.0)
    assert watched.flapping() == [] and watched.gauge() == 0.0


def test_kubectl_rewriting_a_key_every_few_seconds_is_rate_limited_alone(
    shipped: Shipped, topology: Topology, watched: Watched
) -> None:
    apiserver, running = shipped.apiserver, watched.running
    apiserver.log.clear()
    for second in range(0, 120, 3):  # every 3 s for two minutes
        annotate(apiserver, NODE, **{KEY: OTHER})
        if second == 60:  # meanwhile git's value of another key is changed by hand too
            annotate(apiserver, NODE, **{keys.KILO_LOCATION: "elsewhere"})
        running.drive(3.0, step=0.5)
    writes = key_writes(apiserver)
    # 40 changes in two minutes: written back at 0, 10, 30, 70 s (and one more at most)
    assert len(writes) <= 5
    location = [
        e for e in apiserver.log.filter(verb="patch", name=NODE)
        if keys.KILO_LOCATION in ((e.body or {}).get("metadata") or {}).get("annotations", {})
    ]  # fmt: skip
    assert len(location) == 1  # not held back: only the flapping key waits
