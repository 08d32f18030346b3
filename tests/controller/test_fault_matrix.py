"""The fault matrix: the controller's loop, its lease and every writer it is wired with,
under each fault the API double can inject, held to the same three properties.

For each fault - a 410 storm, dropped watches, 5xx on lists, a slow API, 429 with
Retry-After on writes, another writer putting a key back at once (a hostile
annotation) - the reconcile loop runs on fake time against the double with the example
nodes to converge, as the controller's service account, its writes (Node patches, the
status ConfigMap, Events) through the lease gate of a real elector on the same clock:

1. bounded requests: over two minutes of the fault, the lists, watches and writes sent
   stay within what the backoffs allow (counted in the double's request log), never a
   spin;
2. no write after the lease is lost: the elector stops renewing while the fault goes on,
   and from its renew deadline the log shows no write of any kind;
3. convergence: the fault cleared and a new replica holding the lease, the cluster
   converges to what the plan says.

The per-fault detail (how long each backoff is, what each writer does) is in the
modules beside this one: test_fault_watch, test_fault_lease, test_fault_throttle,
test_fault_flapping, test_fault_http, test_fault_fetch_requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from reconciler.adapters.kubelease import KubeLease
from reconciler.adapters.kubestatus import KubeEventSink, KubeStatusStore
from reconciler.controller.events import EventRecorder
from reconciler.controller.guard import LeaseGate
from reconciler.controller.leader import LeaderElector
from reconciler.controller.status import StatusReporter
from reconciler.model import keys
from reconciler.model.topology import Topology
from reconciler.usecases.statusmap import STATUS_NAME, StatusConfigMap
from tests.apiserver import ApiServer, RequestInfo
from tests.controller.fakeclock import TimeBase
from tests.controller.fault_support import FakeTimeLoop, drive, fake_clock
from tests.controller.loop_support import (
    EXAMPLE_SEEN,
    annotate,
    example_topology,
    pending_writes,
    seed_examples,
    wait_until,
)
from tests.shipped_rbac import NAMESPACE, Shipped

WALL = EXAMPLE_SEEN + 5
MINUTES = 2  # of each fault
FLAPPING_NODE = "fsn1-gw-1"


@dataclass(frozen=True)
class Fault:
    """How to inject a fault, and the most requests two minutes of it may cost."""

    inject: Callable[[ApiServer, TimeBase], object]
    lists: int
    watches: int
    node_writes: int


def slow_patches(api: ApiServer, base: TimeBase) -> object:
    """Every Node PATCH takes 1 s of the replica's clock (four at once: 4 s, and the
    lease is renewed meanwhile; a slower API that costs the lease: test_fault_lease)."""
    return api.faults.before(lambda _r: base.advance(1.0), times=None, method="PATCH")


def not_first(api: ApiServer) -> Callable[[RequestInfo], bool]:
    """Every list of Nodes after the first (the informer syncs, then lists fail)."""
    return lambda _r: api.log.count(verb="list", resource="nodes") >= 1


def put_back(api: ApiServer, base: TimeBase) -> object:
    """Another controller puts its value back the moment topoctl writes the key."""

    def revert(req: RequestInfo) -> None:
        annotations = ((req.body or {}).get("metadata") or {}).get("annotations") or {}
        if keys.KILO_PERSISTENT_KEEPALIVE in annotations:
            annotate(api, FLAPPING_NODE, **{keys.KILO_PERSISTENT_KEEPALIVE: "99"})

    return api.faults.after(revert, times=None, method="PATCH", path=f"/{FLAPPING_NODE}$")


# what converging the examples costs without a fault: a list, a watch, one write a node
CONVERGE = 30
FAULTS = {
    "410-storm": Fault(lambda api, _b: api.faults.expire(times=None), 16, 16, CONVERGE),
    "dropped-watches": Fault(
        lambda api, _b: api.faults.reset(watch=True, times=None), 2, 16, CONVERGE
    ),
    "5xx-on-list": Fault(
        lambda api, _b: (
            api.faults.expire(times=1),  # a relist is due, and every list but the first fails
            api.faults.fail(503, watch=False, path="/nodes$", times=None, when=not_first(api)),
        ),
        3 * 16,  # each attempt of a list is tried 3 times by the reader
        2,
        CONVERGE,
    ),
    "slow-api": Fault(slow_patches, 2, 4, CONVERGE),
    "429-on-writes": Fault(
        lambda api, _b: api.faults.throttle(retry_after=5, times=None, method="PATCH"),
        2,
        4,
        4 * (MINUTES * 60 // 5 + 1),  # the executor's pool, once per Retry-After
    ),
    "hostile-annotation": Fault(put_back, 2, 4, CONVERGE + 6),
}


class Replica:
    """The loop, its elector and its status, wired as ``topoctl run`` wires them."""

    def __init__(self, shipped: Shipped, topology: Topology, base: TimeBase) -> None:
        self.base = base
        clock = fake_clock(base, WALL)
        api = shipped.api(shipped.controller_token())
        self.electors = [self._elector(api, clock, "topoctl-0")]
        gate = LeaseGate(self.time_left)
        status = StatusReporter(
            StatusConfigMap(KubeStatusStore(api, NAMESPACE, STATUS_NAME, gate)),
            EventRecorder(KubeEventSink(api, "topoctl-0", gate=gate), clock),
            clock,
            may_write=self.may_write,
        )
        self.running = FakeTimeLoop(
            shipped.apiserver,
            topology,
            WALL,
            observer=status,
            base=base,
            may_write=self.may_write,
            gate=gate,
        )
        self.api = api

    @staticmethod
    def _elector(api: object, clock: object, identity: str) -> LeaderElector:
        port = KubeLease(api, "topoctl", NAMESPACE)  # type: ignore[arg-type]
        return LeaderElector(port, identity, clock, rng=lambda: 0.0)  # type: ignore[arg-type]

    @property
    def elector(self) -> LeaderElector:
        """The replica leading now (a new one after a failover)."""
        return self.electors[-1]

    def may_write(self) -> bool:
        return self.elector.may_write()

    def time_left(self) -> float:
        return self.elector.write_deadline()

    def quiet(self) -> bool:
        """Every thread on the fake clock waits: the worker for its next key, the elector
        (while it runs) for its next round, the informer for its backoff or on its watch."""
        base, loop = self.base, self.running.loop
        elector, informer = self.elector._thread, loop._thread
        return (
            base.asleep(self.running.thread)
            and (elector is None or not elector.is_alive() or base.asleep(elector))
            and (
                informer is None or base.asleep(informer) or self.running.apiserver.open_watches > 0
            )
        )

    def drive(self, seconds: float, step: float = 0.5) -> None:
        """Move time on, a step at a time, each once every thread is quiet."""
        drive(self.base, self.running.thread, seconds, step, quiet=self.quiet)


def writes(apiserver: ApiServer, since: int = 0) -> list[tuple[str, str]]:
    return [(e.method, e.path) for e in apiserver.log.entries[since:] if e.is_write]


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_each_fault_bounded_no_write_after_the_lease_then_converged(
    shipped: Shipped, name: str
) -> None:
    fault = FAULTS[name]
    apiserver = shipped.apiserver
    topology = example_topology()
    seed_examples(apiserver)
    base = TimeBase()
    replica = Replica(shipped, topology, base)
    elector = replica.elector
    elector.step()  # leading from the start, renewing in its thread
    elector.start()
    fault.inject(apiserver, base)
    with replica.running:
        apiserver.drop_watches()  # a watch opened before the fault meets it too
        replica.drive(MINUTES * 60.0)
        # 1. bounded requests
        assert apiserver.log.count(verb="list", resource="nodes") <= fault.lists
        assert apiserver.log.count(verb="watch", resource="nodes") <= fault.watches
        assert apiserver.log.count(verb="patch", resource="nodes") <= fault.node_writes
        # and every write of any kind: a renewal each 2 s, the status each 2 s at most,
        # Events from their bucket (25, then one each 5 s), the Node writes
        assert len(apiserver.log.writes()) <= 60 * MINUTES + 30 * MINUTES + 37 + fault.node_writes
        # 2. the lease is lost while the fault goes on: from its deadline, no write
        elector.stop()
        deadline = elector._state.renew_deadline_at()
        assert deadline is not None
        replica.drive(deadline - base.now - 0.1, step=0.1)
        since = len(apiserver.log)
        replica.drive(30.0)
        assert not elector.may_write()
        assert writes(apiserver, since) == []
        # 3. the fault cleared, a new replica leads: the cluster converges
        apiserver.faults.clear()
        replica.electors.append(replica._elector(replica.api, replica.running.clock, "topoctl-1"))
        replica.elector.start()
        replica.drive(90.0)
        assert replica.elector.may_write()
        now = int(replica.running.clock.wall().timestamp())
        assert wait_until(lambda: not pending_writes(apiserver, topology, now))
        replica.elector.stop()
    replica.api.close()
