"""Leader election over real HTTP: the real client, the Lease adapter and the API double.

Time is fake (tests/controller/fakeclock.py): the electors run client-go's default
timings (15 s / 10 s / 2 s) and a test moves time on by hand, so failover takes
milliseconds and nothing depends on how fast the machine is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from kubernetes import client

from reconciler.adapters.kubelease import KubeLease, discover_namespace
from reconciler.controller.leader import LeaderElector
from reconciler.core.election.elector import LeaseAction
from reconciler.core.election.lease import LeaseSpec, Timing
from reconciler.ports import LeaseConflictError, LeaseError
from tests.apiserver import ApiServer, RequestInfo
from tests.apiserver.fixtures import write_kubeconfig
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.shipped_rbac import NAMESPACE, Shipped

NS = NAMESPACE  # as deployed: the controller's namespace, its token, the shipped RBAC
NAME = "topoctl"
MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def base() -> TimeBase:
    return TimeBase()


@pytest.fixture
def port(controller_api: client.ApiClient) -> KubeLease:
    return KubeLease(controller_api, NAME, NS)


def elector(
    port: KubeLease, identity: str, base: TimeBase, offset: float = 0.0, **kwargs: object
) -> LeaderElector:
    # every elector's monotonic clock starts somewhere else, and its wall clock is off
    clock = FakeClock(base, offset=offset, wall_skew=offset / 1000)
    return LeaderElector(port, identity, clock=clock, rng=lambda: 0.0, **kwargs)  # type: ignore[arg-type]


def lease_json(apiserver: ApiServer) -> dict[str, object]:
    found = apiserver.get("Lease", NAME, NS)
    assert found is not None
    spec = found["spec"]
    assert isinstance(spec, dict)
    return spec


def holder_writes(identity: str) -> Callable[[RequestInfo], bool]:
    def when(req: RequestInfo) -> bool:
        body = req.body if isinstance(req.body, dict) else {}
        return bool((body.get("spec") or {}).get("holderIdentity") == identity)

    return when


def run_until(
    base: TimeBase, electors: list[LeaderElector], seconds: float, step: float = 1.0
) -> Iterator[float]:
    """Move fake time on by `step` up to `seconds`, stepping each elector when its loop
    would (after the `retry_in` of its last decision); yields the fake time each tick."""
    due = dict.fromkeys(range(len(electors)), base.now)
    end = base.now + seconds
    while base.now < end:
        for i, e in enumerate(electors):
            if base.now >= due[i]:
                due[i] = base.now + e.step().retry_in
        yield base.now
        base.advance(step)


# ------------------------------------------------------------------ the adapter


def test_the_adapter_speaks_the_lease_api(apiserver: ApiServer, port: KubeLease) -> None:
    assert port.get(5.0) is None
    spec = LeaseSpec("a", 15, None, None, 0)
    created = port.create(spec, 5.0)
    assert created.spec == spec and created.resource_version
    with pytest.raises(LeaseConflictError):
        port.create(spec, 5.0)  # AlreadyExists
    renewed = port.replace(LeaseSpec("a", 15, None, None, 1), created.resource_version, 5.0)
    assert renewed.spec.transitions == 1
    with pytest.raises(LeaseConflictError):
        port.replace(spec, created.resource_version, 5.0)  # stale resourceVersion
    apiserver.faults.fail(503, times=1, method="GET")
    with pytest.raises(LeaseError, match="HTTP 503"):
        port.get(5.0)
    assert port.get(5.0) == renewed


# ------------------------------------------------------------------ elections


def test_two_electors_only_one_holds(apiserver: ApiServer, port: KubeLease, base: TimeBase) -> None:
    a = elector(port, "a", base, offset=1e5)
    b = elector(port, "b", base, offset=-3e4)
    assert a.step().action is LeaseAction.CREATE
    for now in run_until(base, [b, a], 60):
        assert a.may_write() and not b.may_write(), now
    spec = lease_json(apiserver)
    assert spec["holderIdentity"] == "a" and spec["leaseTransitions"] == 0
    assert spec["leaseDurationSeconds"] == 15
    assert MICROTIME.match(str(spec["renewTime"])) and MICROTIME.match(str(spec["acquireTime"]))
    # a renewed every retry period (2 s) over 60 fake seconds, stepped each second
    renewals = apiserver.log.filter(verb="update", resource="leases", status=200)
    assert len(renewals) == 30


def test_a_killed_holder_is_replaced_within_the_lease_duration(
    apiserver: ApiServer, port: KubeLease, base: TimeBase
) -> None:
    a = elector(port, "a", base)
    b = elector(port, "b", base, offset=777.0)
    a.step()
    b.step()
    base.advance(2.0)
    a.step()  # a's last renewal, at t=2; then a is killed (stops renewing)
    killed_at = base.now
    took_over = None
    for now in run_until(base, [b], 30, step=0.5):
        if b.may_write():
            took_over = now
            break
    assert took_over is not None
    # b saw a's last renewal on its next step (t <= 2.5) and waited a lease duration from then
    assert killed_at + 15.0 <= took_over <= killed_at + 15.0 + 0.5 + 0.5
    spec = lease_json(apiserver)
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    # a, back from the dead, sees b and loses without writing
    lost: list[str] = []
    a.on_lost = lambda: lost.append("a")
    writes = len(apiserver.log.writes())
    assert a.step().action is LeaseAction.LOST and lost == ["a"] and not a.may_write()
    assert len(apiserver.log.writes()) == writes


def test_a_released_lease_is_acquired_at_once(
    apiserver: ApiServer, port: KubeLease, base: TimeBase
) -> None:
    a = elector(port, "a", base)
    b = elector(port, "b", base, offset=5.0)
    a.step()
    assert b.step().action is LeaseAction.WAIT
    assert a.release() is True
    assert not a.may_write()
    spec = lease_json(apiserver)
    assert "holderIdentity" not in spec and spec["leaseDurationSeconds"] == 1
    decision = b.step()  # no time has passed
    assert decision.action is LeaseAction.ACQUIRE and b.may_write()
    assert lease_json(apiserver)["leaseTransitions"] == 1
    assert a.step().action is LeaseAction.WAIT  # a released: it stays out


def test_a_holder_whose_renewals_fail_stops_writing_before_the_lease_can_expire(
    apiserver: ApiServer, port: KubeLease, base: TimeBase
) -> None:
    lost: list[str] = []
    a = elector(port, "a", base, on_lost=lambda: lost.append("a"))
    b = elector(port, "b", base, offset=-50.0)
    a.step()
    b.step()
    last_renewal = base.now
    apiserver.faults.fail(503, times=None, method="PUT", when=holder_writes("a"))
    a_stopped = None
    for now in run_until(base, [a, b], 40, step=0.5):
        assert not (a.may_write() and b.may_write()), now
        if a.may_write():
            # no write of a's may outlast the lease it has left
            assert now + a.write_deadline() <= last_renewal + 15.0
        elif a_stopped is None:
            a_stopped = now
    assert lost == ["a"]
    assert a_stopped is not None and a_stopped <= last_renewal + 10.0  # the renew deadline
    assert b.may_write() and lease_json(apiserver)["holderIdentity"] == "b"


def test_a_slow_renewal_does_not_stretch_the_write_window(
    apiserver: ApiServer, port: KubeLease, base: TimeBase
) -> None:
    a = elector(port, "a", base)
    a.step()
    base.advance(2.0)
    # the answer to a's next renewal takes 11 s (as a's clock sees it)
    apiserver.faults.before(lambda _: base.advance(11.0), times=1, method="PUT")
    assert a.step().action is LeaseAction.RENEW  # the server took it...
    assert lease_json(apiserver)["holderIdentity"] == "a"
    # ...but it was sent at t=2, so a's deadline is t=12 and it is now t=13
    assert not a.may_write() and a.write_deadline() == 0.0
    assert a.step().action is LeaseAction.LOST


def test_a_conflicting_update_is_read_again_and_never_leaves_two_holders(
    apiserver: ApiServer, port: KubeLease, base: TimeBase
) -> None:
    a = elector(port, "a", base)
    b = elector(port, "b", base, offset=9.0)
    a.step()
    a.release()
    a2 = elector(port, "a2", base)

    # b and a2 both read the released lease; b's acquire lands first
    def b_acquires(_: RequestInfo) -> None:
        b.step()

    apiserver.faults.before(b_acquires, times=1, method="PUT", when=holder_writes("a2"))
    decision = a2.step()
    assert decision.action is LeaseAction.WAIT and decision.retry_in == 0.0  # read again at once
    assert b.may_write() and not a2.may_write()
    assert apiserver.log.count(verb="update", resource="leases", status=409) == 1
    assert a2.step().action is LeaseAction.WAIT and b.may_write() and not a2.may_write()

    # a renewal racing with a foreign metadata change: 409, re-read, still ours
    def label_it(_: RequestInfo) -> None:
        apiserver.mutate(
            "Lease", NAME, lambda o: o["metadata"].setdefault("labels", {}).update(x="y"), NS
        )

    apiserver.faults.before(
        label_it,
        times=1,
        method="PUT",
        when=holder_writes("b"),
    )
    base.advance(2.0)
    assert b.step().action is LeaseAction.WAIT and b.may_write()
    assert b.step().action is LeaseAction.RENEW and b.may_write() and not a2.may_write()
    assert lease_json(apiserver)["holderIdentity"] == "b"


# --------------------------------------------------------------- the loop itself


@pytest.fixture
def threads() -> Iterator[list[LeaderElector]]:
    running: list[LeaderElector] = []
    yield running
    for e in running:
        e.stop(timeout=5.0)


def test_the_loops_fail_over_on_kill_and_on_release(
    apiserver: ApiServer, port: KubeLease, base: TimeBase, threads: list[LeaderElector]
) -> None:
    lost: list[str] = []
    a = elector(port, "a", base, on_lost=lambda: lost.append("a"))
    a.start()
    base.wait_for_sleepers(1)
    b = elector(port, "b", base, offset=3.0, on_lost=lambda: lost.append("b"))
    threads += [a, b]
    b.start()
    base.wait_for_sleepers(2)
    assert a.may_write() and not b.may_write()
    a.stop(timeout=5.0)  # killed: no release
    for _ in range(20):
        base.advance(1.0)
        base.wait_for_sleepers(1)
        if b.may_write():
            break
    assert b.may_write() and base.now <= 15.0 + 2.0 + 1.0
    c = elector(port, "c", base, offset=-1.0)
    threads.append(c)
    c.start()
    base.wait_for_sleepers(2)
    assert not c.may_write()
    assert b.release(timeout=5.0)  # SIGTERM: b gives the lease up
    base.advance(2.0)  # c's next retry
    base.wait_for_sleepers(1)
    assert c.may_write() and lease_json(apiserver)["holderIdentity"] == "c"
    assert lost == []


def test_the_loop_ends_and_calls_on_lost_once(
    apiserver: ApiServer, port: KubeLease, base: TimeBase
) -> None:
    lost: list[str] = []
    a = elector(port, "a", base, on_lost=lambda: lost.append("a"))
    thread = a.start()
    base.wait_for_sleepers(1)
    apiserver.faults.fail(503, times=None, method="PUT")
    for _ in range(6):
        base.advance(2.0)
        base.wait_for_sleepers(1, unless=thread)
    thread.join(5.0)
    assert not thread.is_alive() and lost == ["a"] and not a.may_write()


def test_sub_second_timings_work_with_a_fake_clock(
    apiserver: ApiServer, port: KubeLease, base: TimeBase
) -> None:
    timing = Timing(lease_duration=0.3, renew_deadline=0.2, retry_period=0.05)
    a = elector(port, "a", base, timing=timing)
    b = elector(port, "b", base, offset=1.0, timing=timing)
    a.step()
    b.step()
    # the record says 1 s (a whole number); b waits the longer of the two
    for now in run_until(base, [b], 1.2, step=0.05):
        if b.may_write():
            assert now >= 1.0
            break
    assert b.may_write()


# --------------------------------------------------------------- the namespace


def test_the_lease_namespace_is_found_as_documented(tmp_path: Path, apiserver: ApiServer) -> None:
    sa = tmp_path / "namespace"
    sa.write_text("topoctl-system")
    kubeconfig = write_kubeconfig(tmp_path / "kc", apiserver.url, namespace="from-context")
    assert discover_namespace(kubeconfig, None, sa) == "topoctl-system"
    missing = tmp_path / "absent"
    assert discover_namespace(kubeconfig, None, missing) == "from-context"
    assert discover_namespace(kubeconfig, "double", missing) == "from-context"
    bare = tmp_path / "bare"
    bare.write_text(kubeconfig.read_text().replace("    namespace: from-context\n", ""))
    assert discover_namespace(bare, None, missing) == "default"
    assert discover_namespace(tmp_path / "no-such-kubeconfig", None, missing) == "default"


# ------------------------------------------------- against the stock LeaseLock


def test_the_fields_written_match_the_stock_lease_lock(
    apiserver: ApiServer, shipped: Shipped, kube_api: client.ApiClient, base: TimeBase
) -> None:
    # the admin writes two Leases the shipped RBAC grants no one (`stock`, `ours`)
    from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

    stock = LeaseLock("stock", NS, "stock-0")
    stock.api_instance = client.CoordinationV1Api(kube_api)
    now = str(datetime.now())  # the stock elector's record format: local, naive
    assert stock.create("stock", NS, LeaderElectionRecord("stock-0", "15", now, now))
    assert stock.get("stock", NS)[0]
    assert stock.update(
        "stock", NS, LeaderElectionRecord("stock-0", "15", now, str(datetime.now()))
    )

    ours = LeaderElector(KubeLease(kube_api, "ours", NS), "ours-0", clock=FakeClock(base))
    ours.step()
    base.advance(2.0)
    ours.step()

    def stored(name: str) -> dict[str, object]:
        found = apiserver.get("Lease", name, NS)
        assert found is not None
        return found["spec"]  # type: ignore[no-any-return]

    stock_spec, our_spec = stored("stock"), stored("ours")
    # the same fields, of the same types, in the same format; ours adds leaseTransitions
    assert set(stock_spec) == {"holderIdentity", "leaseDurationSeconds", "acquireTime", "renewTime"}
    assert set(our_spec) == set(stock_spec) | {"leaseTransitions"}
    for key, value in stock_spec.items():
        assert type(our_spec[key]) is type(value), key
    for spec in (stock_spec, our_spec):
        assert MICROTIME.match(str(spec["acquireTime"])) and MICROTIME.match(str(spec["renewTime"]))
        assert spec["leaseDurationSeconds"] == 15
    # what went on the wire: ours already in the server's own MicroTime form
    sent = [
        e.body["spec"]
        for e in apiserver.log.filter(resource="leases")
        if e.method in ("POST", "PUT") and isinstance(e.body, dict)
    ]
    assert {s["holderIdentity"] for s in sent} == {"stock-0", "ours-0"}
    assert all(MICROTIME.match(s["renewTime"]) for s in sent if s["holderIdentity"] == "ours-0")
    # each reads the other's record
    reader = LeaseLock("ours", NS, "stock-1")
    reader.api_instance = client.CoordinationV1Api(kube_api)
    found, record = reader.get("ours", NS)
    assert found and record.holder_identity == "ours-0" and record.lease_duration == "15"
    theirs = LeaderElector(KubeLease(kube_api, "stock", NS), "ours-1", clock=FakeClock(base))
    decision = theirs.step()
    assert decision.action is LeaseAction.WAIT and "held by stock-0" in decision.reason
