"""The pure Lease state machine: table tests, and a simulation of electors with skewed clocks."""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.election.elector import Decision, Elector, LeaseAction
from reconciler.core.election.lease import LeaseObject, LeaseSpec, Timing, default_namespace

WALL = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return WALL + timedelta(seconds=seconds)


def held(holder: str, rv: str = "1", renew: float = 0.0, transitions: int = 0) -> LeaseObject:
    return LeaseObject(LeaseSpec(holder, 15, at(0), at(renew), transitions), rv)


def leading(identity: str = "a", sent_at: float = 0.0) -> Elector:
    """An elector that just created the lease, the create sent at `sent_at`."""
    state, decision = Elector(identity).decide(None, sent_at, at(sent_at))
    assert decision.write is not None
    return state.succeeded(decision, LeaseObject(decision.write, "1"), sent_at, sent_at + 0.1)


# ------------------------------------------------------------------ tables


def test_no_lease_is_created_holding_it() -> None:
    _, decision = Elector("a").decide(None, 100.0, at(5))
    assert decision.action is LeaseAction.CREATE
    assert decision.write == LeaseSpec("a", 15, at(5), at(5), 0)
    assert decision.resource_version is None


def test_a_standby_times_expiry_from_when_it_saw_the_record_change() -> None:
    # the holder's renewTime is a year behind our wall clock: only our own clock counts
    lease = held("b", renew=-365 * 86400.0)
    state, decision = Elector("a").decide(lease, 1000.0, at(0))
    assert decision.action is LeaseAction.WAIT
    state, decision = state.decide(lease, 1014.9, at(14.9))
    assert decision.action is LeaseAction.WAIT
    state, decision = state.decide(lease, 1015.0, at(15))
    assert decision.action is LeaseAction.ACQUIRE
    assert decision.write == LeaseSpec("a", 15, at(15), at(15), 1)  # leaseTransitions + 1
    assert decision.resource_version == "1"


def test_a_renewal_seen_by_the_standby_restarts_its_timer() -> None:
    state, _ = Elector("a").decide(held("b", "1", renew=0), 0.0, at(0))
    state, decision = state.decide(held("b", "2", renew=10), 10.0, at(10))
    assert decision.action is LeaseAction.WAIT
    _, decision = state.decide(held("b", "2", renew=10), 24.9, at(24.9))
    assert decision.action is LeaseAction.WAIT  # 15 s from 10.0, not from 0.0
    _, decision = state.decide(held("b", "2", renew=10), 25.0, at(25))
    assert decision.action is LeaseAction.ACQUIRE


def test_a_longer_duration_in_the_record_is_respected() -> None:
    lease = LeaseObject(LeaseSpec("b", 60, at(0), at(0), 3), "7")
    state, _ = Elector("a").decide(lease, 0.0, at(0))
    assert state.decide(lease, 59.0, at(59))[1].action is LeaseAction.WAIT
    assert state.decide(lease, 60.0, at(60))[1].action is LeaseAction.ACQUIRE


def test_a_released_lease_is_taken_at_once() -> None:
    released = LeaseObject(LeaseSpec("", 1, at(3), at(3), 4), "9")
    _, decision = Elector("a").decide(released, 0.0, at(0))
    assert decision.action is LeaseAction.ACQUIRE
    assert decision.write == LeaseSpec("a", 15, at(0), at(0), 5)


def test_the_holder_renews_keeping_acquire_time_and_transitions() -> None:
    state = leading()
    lease = LeaseObject(LeaseSpec("a", 15, at(0), at(0), 2), "5")
    state, decision = state.decide(lease, 2.0, at(2))
    assert decision.action is LeaseAction.RENEW
    assert decision.write == LeaseSpec("a", 15, at(0), at(2), 2)
    assert decision.resource_version == "5"
    assert decision.retry_in == 2.0


def test_the_holder_stops_writing_at_the_renew_deadline() -> None:
    state = leading(sent_at=0.0)
    assert state.may_write(0.05) and state.write_deadline(3.0) == 12.0
    state, decision = state.failed(9.0)  # a renew failed: still within the deadline
    assert decision.action is LeaseAction.WAIT and decision.retry_in == 1.0  # wake at the deadline
    assert state.may_write(9.99)
    assert not state.may_write(10.0) and state.write_deadline(10.0) == 0.0
    state, decision = state.failed(10.0)
    assert decision.action is LeaseAction.LOST and state.lost and not state.leader
    # lost is final, whatever is read afterwards
    assert state.decide(held("a"), 11.0, at(11))[1].action is LeaseAction.LOST


def test_the_write_deadline_counts_from_when_the_renew_was_sent() -> None:
    state = leading(sent_at=0.0)
    lease = LeaseObject(LeaseSpec("a", 15, at(0), at(0), 0), "2")
    state, decision = state.decide(lease, 8.0, at(8))
    # the answer takes 1.5 s: the others may have seen the renewal as early as 8.0
    state = state.succeeded(decision, LeaseObject(decision.write or LeaseSpec(), "3"), 8.0, 9.5)
    assert state.write_deadline(9.5) == pytest.approx(13.5)
    assert state.may_write(17.9) and not state.may_write(18.0)


def test_another_holder_seen_by_the_holder_is_lost() -> None:
    state, decision = leading().decide(held("b", "4"), 2.0, at(2))
    assert decision.action is LeaseAction.LOST
    assert "held by b" in decision.reason
    assert not state.may_write(2.0)


def test_release_clears_the_holder_as_client_go_does() -> None:
    state = leading()
    state, decision = state.release(at(4))
    assert decision.action is LeaseAction.RELEASE
    assert decision.write == LeaseSpec("", 1, at(4), at(4), 0)
    assert decision.resource_version == "1"
    assert not state.may_write(4.0)  # nothing guarded goes out once releasing
    state = state.succeeded(decision, LeaseObject(decision.write, "2"), 4.0, 4.1)
    assert state.released and not state.leader
    assert state.decide(held("b"), 5.0, at(5))[1].action is LeaseAction.WAIT


def test_a_standby_has_nothing_to_release() -> None:
    state, _ = Elector("a").decide(held("b"), 0.0, at(0))
    assert state.release(at(1))[1].action is LeaseAction.WAIT


@pytest.mark.parametrize(
    ("duration", "deadline", "retry", "message"),
    [
        (10.0, 10.0, 2.0, "greater than the renew deadline"),
        (15.0, 2.4, 2.0, "1.2 x the retry period"),
        (1.0, 0.5, 0.0, "positive"),
    ],
)
def test_timing_is_validated(duration: float, deadline: float, retry: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Timing(duration, deadline, retry)


def test_sub_second_timing_is_allowed_and_written_as_whole_seconds() -> None:
    timing = Timing(0.3, 0.2, 0.05)
    _, decision = Elector("a", timing).decide(None, 0.0, at(0))
    assert decision.write is not None and decision.write.duration_seconds == 1


@pytest.mark.parametrize(
    ("in_pod", "context", "expected"),
    [
        ("topoctl-system\n", "dev", "topoctl-system"),
        (None, "dev", "dev"),
        ("  ", "dev", "dev"),
        (None, None, "default"),
        ("", "", "default"),
    ],
)
def test_default_namespace(in_pod: str | None, context: str | None, expected: str) -> None:
    assert default_namespace(in_pod, context) == expected


# -------------------------------------------------------------- simulation


@dataclasses.dataclass
class Candidate:
    """One elector process in the simulation, with its own clocks."""

    state: Elector
    offset: float  # monotonic clock = offset + rate * true time
    rate: float
    wall_skew: float  # seconds its wall clock is off
    crashed: bool = False

    def mono(self, true: float) -> float:
        return self.offset + self.rate * true

    def wall(self, true: float) -> datetime:
        return at(true + self.wall_skew)


@dataclasses.dataclass
class Server:
    """The Lease as the API server keeps it: one record, a resourceVersion counter."""

    lease: LeaseObject | None = None
    rv: int = 0

    def write(self, decision: Decision) -> LeaseObject | None:
        if decision.write is None:
            return None
        if decision.resource_version is None:
            if self.lease is not None:
                return None  # AlreadyExists
        elif self.lease is None or self.lease.resource_version != decision.resource_version:
            return None  # 409
        self.rv += 1
        self.lease = LeaseObject(decision.write, str(self.rv))
        return self.lease


def simulate(
    rng: random.Random,
    candidates: list[Candidate],
    timing: Timing,
    fault_rate: float,
    horizon: float = 300.0,
    calm_after: float = 220.0,
) -> tuple[list[str], Server]:
    """Run every candidate's loop against one server; returns the invariant violations."""
    server = Server()
    events: list[tuple[float, int, Callable[[float], None]]] = []
    seq = itertools.count()
    violations: list[str] = []

    def schedule(when: float, fn: Callable[[float], None]) -> None:
        heapq.heappush(events, (when, next(seq), fn))

    def delay(true: float) -> float:
        return rng.uniform(0.0, 1.5 if true < calm_after else 0.2)

    def faulty(true: float) -> bool:
        return true < calm_after and rng.random() < fault_rate

    def loop(c: Candidate) -> Callable[[float], None]:
        def next_step(true: float, decision: Decision) -> None:
            if decision.action is LeaseAction.LOST:
                # the pod exits and restarts with a new identity
                c.crashed = True
                fresh = dataclasses.replace(
                    c, state=Elector(f"{c.state.identity}'", timing), crashed=False
                )
                live.append(fresh)
                schedule(true + 5.0, loop(fresh))
                return
            pause = decision.retry_in * (1 + rng.random() * 1.2 * (not c.state.leader))
            if true < calm_after and rng.random() < fault_rate / 2:
                pause += rng.uniform(0, 20)  # a stop-the-world pause
            schedule(true + pause, step)

        def step(true: float) -> None:
            if c.crashed:
                return
            c.state, lost = c.state.check(c.mono(true))
            if lost is not None:
                next_step(true, lost)
                return
            read_at = true + delay(true)
            if faulty(true):
                schedule(read_at + delay(true), lambda t: next_step(t, fail(t)))
                return

            def got(t: float, seen: LeaseObject | None) -> None:
                c.state, decision = c.state.decide(seen, c.mono(t), c.wall(t))
                if decision.write is None:
                    next_step(t, decision)
                    return
                sent = c.mono(t)
                lands = t + delay(t)
                lost_request = faulty(t)

                def land(t2: float) -> None:
                    result = None if lost_request else server.write(decision)
                    check(t2)
                    answer_lost = result is not None and faulty(t2)

                    def answered(t3: float) -> None:
                        if result is None or answer_lost:
                            next_step(t3, fail(t3))
                        else:
                            c.state = c.state.succeeded(decision, result, sent, c.mono(t3))
                            check(t3)
                            next_step(t3, decision)

                    schedule(t2 + delay(t2), answered)

                schedule(lands, land)

            def served(t: float) -> None:
                seen = server.lease  # the server reads the lease when the request arrives
                schedule(t + delay(t), lambda t2: got(t2, seen))

            schedule(read_at, served)

        def fail(t: float) -> Decision:
            c.state, decision = c.state.failed(c.mono(t))
            return decision

        return step

    def check(true: float) -> None:
        writers = [c for c in live if not c.crashed and c.state.may_write(c.mono(true))]
        if len(writers) > 1:
            violations.append(f"{true:.2f}: {len(writers)} electors may write")
        holder = server.lease.spec.holder if server.lease else ""
        for c in writers:
            if c.state.identity != holder:
                violations.append(
                    f"{true:.2f}: {c.state.identity} may write, lease holds {holder!r}"
                )

    live = list(candidates)
    for c in candidates:
        schedule(rng.uniform(0, 3), loop(c))
    while events:
        when, _, fn = heapq.heappop(events)
        if when > horizon:
            break
        fn(when)
        check(when)
    return violations, server


@settings(max_examples=40, derandomize=True, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    offsets=st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=3),
    rates=st.lists(st.floats(0.995, 1.005), min_size=3, max_size=3),
    wall_skews=st.lists(st.floats(-7200, 7200), min_size=3, max_size=3),
    fault_rate=st.sampled_from([0.0, 0.1, 0.3]),
)
def test_skewed_electors_never_write_at_once(
    seed: int,
    offsets: list[float],
    rates: list[float],
    wall_skews: list[float],
    fault_rate: float,
) -> None:
    rng = random.Random(seed)
    timing = Timing()
    candidates = [
        Candidate(Elector(f"e{i}", timing), offset, rates[i], wall_skews[i])
        for i, offset in enumerate(offsets)
    ]
    violations, server = simulate(rng, candidates, timing, fault_rate)
    assert violations == []
    # liveness: once the faults stop, somebody holds the lease and renews it
    assert server.lease is not None and server.lease.spec.holder
