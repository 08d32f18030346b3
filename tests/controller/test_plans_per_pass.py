"""How often the controller plans: a full pass plans each site once (it planned every
site twice, and its lifecycle round the whole cluster a third time), and a lifecycle
round plans nothing - it reads the sites' latest plans and the nodes in the cache.

The planner's own methods are counted as the real loop calls them, against the API
double over HTTP."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.controller.lifecycle import LifecyclePass
from reconciler.controller.loop import FULL, ReconcileLoop
from reconciler.core.planning.planner import Planner
from reconciler.model.topology import Topology
from reconciler.usecases.statusmap import StatusConfigMap
from tests.apiserver import ApiServer
from tests.controller.loop_support import (
    EXAMPLE_SEEN,
    WallClock,
    example_topology,
    pending_writes,
    running_loop,
    seed_examples,
    wait_until,
)
from tests.core.test_lifecycle_plan import FakeClock, FakeProber
from tests.fakes import MemoryStatusStore

DEAD = "fsn1-worker-x9m4t"  # a pool member of hetzner-fsn1, which deletes dead nodes


class NoDeletes:
    """A NodeDeleter this test never reaches (a dry run)."""

    def delete_node(self, name: str, uid: str, resource_version: str) -> None:
        raise AssertionError(f"deleted {name} in a dry run")


class Plans:
    """Counts Planner constructions, whole plans and site plans (by site)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        init, plan_all, plan_site = Planner.__init__, Planner.plan_all, Planner.plan_site

        def counted_init(planner: Planner, *args: Any, **kwargs: Any) -> None:
            self._count("Planner()")
            init(planner, *args, **kwargs)

        def counted_all(planner: Planner) -> Any:
            self._count("plan_all")
            return plan_all(planner)

        def counted_site(planner: Planner, name: str, *args: Any) -> Any:
            self._count(f"plan_site {name}")
            return plan_site(planner, name, *args)

        monkeypatch.setattr(Planner, "__init__", counted_init)
        monkeypatch.setattr(Planner, "plan_all", counted_all)
        monkeypatch.setattr(Planner, "plan_site", counted_site)

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    def taken(self) -> dict[str, int]:
        """The counts so far, and from zero again."""
        with self._lock:
            out, self.counts = dict(self.counts), Counter()
        return out


@pytest.fixture
def topology() -> Topology:
    return example_topology()


@pytest.fixture
def loop(apiserver: ApiServer, topology: Topology) -> Iterator[ReconcileLoop]:
    seed_examples(apiserver)
    clock = WallClock(EXAMPLE_SEEN + 5.0)
    with running_loop(apiserver, topology, clock) as running:
        assert wait_until(lambda: not pending_writes(apiserver, topology, clock.now))
        assert wait_until(lambda: running.informer.version == str(apiserver.resource_version))
        assert wait_until(lambda: running.queue.idle)
        yield running


def full_pass(loop: ReconcileLoop) -> None:
    passes = loop.stats.full_plans
    loop.queue.add(FULL)
    assert wait_until(lambda: loop.stats.full_plans == passes + 1 and loop.queue.idle)


def test_a_full_pass_plans_each_site_once(
    loop: ReconcileLoop, topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = Plans(monkeypatch)
    full_pass(loop)
    sites = {f"plan_site {s.name}": 1 for s in topology.sites}
    assert plans.taken() == {"Planner()": 1, **sites}  # and no plan_all
    assert len(sites) == 3


def test_a_lifecycle_round_plans_nothing(
    loop: ReconcileLoop, apiserver: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = Plans(monkeypatch)

    def kubelet_stopped(node: dict[str, Any]) -> None:
        for condition in node["status"]["conditions"]:
            if condition["type"] == "Ready":
                condition.update(status="Unknown", lastTransitionTime="2026-11-26T00:00:00Z")

    apiserver.mutate_node(DEAD, kubelet_stopped)
    # the relevant change re-plans its site alone
    assert wait_until(lambda: plans.counts["plan_site hetzner-fsn1"] >= 1 and loop.queue.idle)
    assert set(plans.taken()) == {"plan_site hetzner-fsn1"}

    clock = FakeClock()
    lifecycle = LifecyclePass(
        loop.plans.view,
        FakeProber(clock, set()),
        NoDeletes(),
        StatusConfigMap(MemoryStatusStore()),
        clock,
        may_write=lambda: True,
        dry_run=True,
    )
    decided = lifecycle.step()
    assert decided is not None and lifecycle.stats.probe_rounds == 1
    assert DEAD in {w.node for w in decided.withheld}  # judged (answers ping: kept)
    assert plans.taken() == {}  # the round planned nothing
