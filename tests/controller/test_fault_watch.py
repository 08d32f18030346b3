"""The fault matrix, the node watch: 410 storms, dropped watches and 5xx on list.

The informer runs on the double through the real client, as the controller's service
account, and waits on a fake clock: however the watch fails, the lists and watches it
sends over a stretch of fake time stay bounded (a capped, jittered exponential backoff),
the backoff starts over after a healthy watch, and once the fault is gone the cache
converges to the cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from reconciler.adapters.kube import KubeBackend, RetryPolicy
from reconciler.adapters.kubewatch import KubeWatcher
from reconciler.controller.cache import NodeCache
from reconciler.controller.informer import Informer, InformerSettings
from tests.apiserver import ApiServer
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.controller.fault_support import count, drive, settled
from tests.controller.loop_support import annotate, wait_until
from tests.shipped_rbac import Shipped

SETTINGS = InformerSettings(watch_timeout=1.0, backoff_base=0.2, backoff_cap=30.0)
LONGEST = 1.0  # rng: every backoff at its longest (the fewest requests)
SHORTEST = 0.0  # rng: every backoff at its shortest (the most requests)


class Running:
    """An informer in a thread on a fake clock; it has settled when it sleeps on the
    clock or holds a watch open on the double."""

    def __init__(self, informer: Informer, base: TimeBase, apiserver: ApiServer) -> None:
        self.informer, self.base, self.apiserver = informer, base, apiserver
        self.stop = threading.Event()
        self.thread = threading.Thread(target=informer.run, args=(self.stop,), daemon=True)

    def watching(self) -> bool:
        return self.apiserver.open_watches > 0

    def drive(self, seconds: float, step: float = 0.1, *, failing: bool = False) -> None:
        """Move fake time on; ``failing``: the watch keeps failing, so the informer must
        sleep on the clock between requests (an open watch does not count)."""
        waiting = None if failing else self.watching
        drive(self.base, self.thread, seconds, step, waiting=waiting)

    def fault(self, inject: Callable[[ApiServer], object]) -> None:
        """Inject a fault, and end the watch open now so that the next one meets it."""
        assert self.apiserver.wait_for_watches(1)
        inject(self.apiserver)
        self.apiserver.drop_watches()


@pytest.fixture
def cluster(shipped: Shipped) -> ApiServer:
    for i in range(3):
        shipped.apiserver.seed_node(f"n-{i}", internal_ip=f"10.0.0.{i}")
    return shipped.apiserver


@pytest.fixture
def informer(
    cluster: ApiServer, controller_api: client.ApiClient
) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(rng: float = SHORTEST) -> Running:
        backend = KubeBackend(controller_api, RetryPolicy(attempts=1))
        base = TimeBase()
        informer = Informer(
            KubeWatcher(backend), NodeCache(), lambda _: None, FakeClock(base), SETTINGS,
            rng=lambda: rng,
        )  # fmt: skip
        running = Running(informer, base, cluster)
        running.thread.start()
        started.append(running)
        assert informer.synced.wait(5.0)
        return running

    yield start
    for running in started:
        running.stop.set()
        running.informer.watcher.close()
        running.thread.join(5.0)


def annotated(running: Running, name: str, value: str) -> bool:
    node = running.informer.cache.get(name)
    return node is not None and node.annotations.get("example") == value


def backoff_requests(seconds: float, rng: float) -> int:
    """How many attempts a failing loop makes in ``seconds`` with SETTINGS' backoff."""
    spent, attempts, failures = 0.0, 1, 1
    while True:
        delay = min(SETTINGS.backoff_cap, SETTINGS.backoff_base * 2 ** (failures - 1))
        spent += delay * (0.5 + rng / 2)
        if spent > seconds:
            return attempts
        attempts += 1
        failures += 1


@pytest.mark.parametrize("rng", [SHORTEST, LONGEST])
def test_a_410_storm_relists_with_capped_backoff_then_converges(
    cluster: ApiServer, informer: Callable[..., Running], rng: float
) -> None:
    running = informer(rng)
    cluster.log.clear()
    running.fault(lambda api: api.faults.expire(times=None))  # every watch: ERROR 410
    running.drive(600.0, step=0.5, failing=True)  # ten minutes of a storm
    lists = count(cluster, "list")
    # one relist per backoff: 0.1-0.2 s doubling to the 30 s cap (15-30 s with jitter)
    assert lists <= backoff_requests(600.0, rng) + 1
    assert lists <= 600 / 15 + 10
    assert running.informer.stats.relists_expired - lists in (0, 1)  # one may be waiting
    # the storm ends; meanwhile a node changed: the next relist and watch take it in
    cluster.faults.clear()
    annotate(cluster, "n-1", example="after-the-storm")
    running.drive(35.0, step=0.5)
    assert wait_until(lambda: annotated(running, "n-1", "after-the-storm"))


def test_the_backoff_starts_over_after_a_healthy_watch(
    cluster: ApiServer, informer: Callable[..., Running]
) -> None:
    running = informer(LONGEST)
    stats = running.informer.stats
    running.fault(lambda api: api.faults.expire(times=6))
    while stats.relists_expired < 6:  # 0.2 + 0.4 + ... + 6.4 s of backoff
        running.drive(0.5, step=0.5, failing=True)
    assert stats.backoff >= 6.4
    running.drive(stats.backoff)  # the last backoff; then a list, and a watch that holds
    # the watch open now ends cleanly after its bookmarks (1 s): healthy, no failure
    restarts = stats.watch_restarts
    assert wait_until(lambda: stats.watch_restarts > restarts)
    cluster.faults.expire(times=1)  # the next watch, once this one has ended
    lists = count(cluster, "list")
    assert wait_until(lambda: stats.relists_expired == 7)
    settled(running.base, running.thread)  # backing off
    # the first step of the backoff again (0.2 s), not the 12.8 s the storm had reached
    assert stats.backoff == SETTINGS.backoff_base
    running.drive(SETTINGS.backoff_base, step=SETTINGS.backoff_base)
    assert wait_until(lambda: count(cluster, "list") == lists + 1)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda api: api.faults.reset(watch=True, times=None), id="dropped-watches"),
        pytest.param(
            lambda api: api.faults.fail(503, watch=False, path="/nodes$", times=None),
            id="5xx-on-list",
        ),
    ],
)
def test_dropped_watches_and_failing_lists_back_off_then_converge(
    cluster: ApiServer,
    informer: Callable[..., Running],
    fault: Callable[[ApiServer], object],
) -> None:
    running = informer(SHORTEST)
    cluster.log.clear()
    running.fault(lambda api: (api.faults.expire(times=1), fault(api)))  # a relist is due too
    running.drive(600.0, step=0.5, failing=True)
    sent = count(cluster, "list") + count(cluster, "watch")
    assert sent <= backoff_requests(600.0, SHORTEST) + 2
    cluster.faults.clear()
    annotate(cluster, "n-2", example="after-the-fault")
    running.drive(35.0, step=0.5)
    assert wait_until(lambda: annotated(running, "n-2", "after-the-fault"))
