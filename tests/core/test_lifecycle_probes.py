"""Probe rounds to node verdicts, on an injected clock; and the deletion record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.lifecycle.probes import (
    ProbeHistory,
    ProbeSchedule,
    ProbeVerdict,
    addresses_to_probe,
    probe_addresses,
)
from reconciler.core.lifecycle.record import Deletion, DeletionRecord
from reconciler.model import keys
from reconciler.model.probe import ProbeOutcome, ProbeRound
from tests.lifecycle_support import NOW, node

A, S, U = ProbeOutcome.ANSWERED, ProbeOutcome.SILENT, ProbeOutcome.UNKNOWN
ADDRS = ("10.0.0.1", "203.0.113.1")


def history(*rounds: tuple[int, dict[str, ProbeOutcome]]) -> ProbeHistory:
    """Rounds at NOW + seconds; each maps address -> outcome."""
    built = ProbeHistory()
    for seconds, outcomes in rounds:
        at = NOW + timedelta(seconds=seconds)
        errors = {a: "boom" for a, o in outcomes.items() if o is U}
        built = built.add(ProbeRound(at, outcomes, errors), at)
    return built


def both(outcome: ProbeOutcome, other: ProbeOutcome | None = None) -> dict[str, ProbeOutcome]:
    return {ADDRS[0]: outcome, ADDRS[1]: other or outcome}


CASES = [
    ("never probed", (), ProbeVerdict.PENDING, 0),
    (
        "three silent rounds over 60 s",
        ((0, both(S)), (30, both(S)), (60, both(S))),
        ProbeVerdict.SILENT,
        3,
    ),
    (
        "three silent rounds over 40 s",
        ((0, both(S)), (20, both(S)), (40, both(S))),
        ProbeVerdict.PENDING,
        3,
    ),
    ("two silent rounds over 90 s", ((0, both(S)), (90, both(S))), ProbeVerdict.PENDING, 2),
    ("an answer resets", ((0, both(S)), (30, both(S)), (60, both(A, S))), ProbeVerdict.ANSWERED, 0),
    (
        "silence after an answer counts from the answer",
        ((0, both(A)), (20, both(S)), (40, both(S)), (60, both(S))),
        ProbeVerdict.PENDING,
        3,
    ),
    (
        "enough silence after an answer",
        ((0, both(A)), (20, both(S)), (50, both(S)), (80, both(S))),
        ProbeVerdict.SILENT,
        3,
    ),
    (
        "a failed probe is unknown",
        ((0, both(S)), (30, both(S)), (60, both(S, U))),
        ProbeVerdict.UNKNOWN,
        0,
    ),
    (
        "an old failure breaks the streak",
        ((0, both(S)), (20, both(U)), (40, both(S)), (60, both(S)), (80, both(S))),
        ProbeVerdict.PENDING,
        3,
    ),
    (
        "a round missing one address does not count",
        ((0, both(S)), (30, {ADDRS[0]: S}), (60, both(S))),
        ProbeVerdict.PENDING,
        2,
    ),
    ("an answer on one address is enough", ((0, {ADDRS[1]: A}),), ProbeVerdict.ANSWERED, 0),
]


@pytest.mark.parametrize(
    ("rounds", "verdict", "streak"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_verdicts(rounds, verdict: ProbeVerdict, streak: int) -> None:
    probe = history(*rounds).node(ADDRS)
    assert probe.verdict is verdict
    assert probe.silent_probes == streak
    if verdict is ProbeVerdict.UNKNOWN:
        assert probe.error == "boom"


def test_the_streak_span_and_start_are_reported() -> None:
    probe = history((0, both(A)), (20, both(S)), (50, both(S)), (80, both(S))).node(ADDRS)
    assert probe.silent_since == NOW + timedelta(seconds=20)
    assert probe.span == timedelta(seconds=60) and probe.latest is S


def test_a_node_without_addresses_is_unknown() -> None:
    assert history((0, both(S))).node(()).verdict is ProbeVerdict.UNKNOWN


def test_rounds_beyond_the_horizon_are_forgotten() -> None:
    old = history((0, both(S)), (30, both(S)), (60, both(S)))
    late = NOW + timedelta(minutes=11)
    kept = old.add(ProbeRound(late, both(S)), late)
    assert [r.at for r in kept.rounds] == [NOW + timedelta(seconds=60), late]
    assert kept.node(ADDRS).verdict is ProbeVerdict.PENDING  # two rounds left


def test_schedule() -> None:
    schedule = ProbeSchedule()
    assert schedule.due(None, NOW)
    assert not schedule.due(NOW, NOW + timedelta(seconds=19))
    assert schedule.due(NOW, NOW + timedelta(seconds=20))


def test_probe_addresses_take_internal_external_and_forced() -> None:
    n = node(
        "n",
        internal="10.0.0.1",
        external="203.0.113.1",
        annotations={keys.KILO_FORCE_INTERNAL_IP: "192.168.7.1/24"},
    )
    assert probe_addresses(n) == ("10.0.0.1", "203.0.113.1", "192.168.7.1")
    assert probe_addresses(
        node("m", internal="10.0.0.1", annotations={keys.KILO_FORCE_INTERNAL_IP: "-"})
    ) == ("10.0.0.1",)
    assert addresses_to_probe([n, node("o", internal="10.0.0.1")]) == probe_addresses(n)


outcomes = st.sampled_from([A, S, U])
rounds = st.lists(
    st.tuples(st.integers(0, 30), st.lists(outcomes, min_size=2, max_size=2)), max_size=12
)


@settings(derandomize=True, max_examples=300)
@given(rounds)
def test_verdict_properties(steps: list[tuple[int, list[ProbeOutcome]]]) -> None:
    at = NOW
    built = ProbeHistory()
    timeline = []
    for gap, (first, second) in steps:
        at += timedelta(seconds=gap + 1)
        built = built.add(ProbeRound(at, {ADDRS[0]: first, ADDRS[1]: second}), at)
        timeline.append((at, first, second))
    probe = built.node(ADDRS)
    if not timeline:
        assert probe.verdict is ProbeVerdict.PENDING
        return
    _, first, second = timeline[-1]
    if A in (first, second):
        assert probe.verdict is ProbeVerdict.ANSWERED  # an answer is never overruled
    if probe.verdict is ProbeVerdict.SILENT:
        streak = timeline[-probe.silent_probes :]
        assert all(f is S and s is S for _, f, s in streak)
        assert len(streak) >= 3 and streak[-1][0] - streak[0][0] >= timedelta(seconds=60)
    if U in (first, second) and A not in (first, second):
        assert probe.verdict is ProbeVerdict.UNKNOWN  # a failed probe is never silence


# --- the deletion record --------------------------------------------------------------


def test_record_round_trips_compactly() -> None:
    record = DeletionRecord(
        (Deletion(NOW - timedelta(minutes=5), "a"), Deletion(NOW - timedelta(seconds=1), "b"))
    )
    text = record.render()
    assert text == (
        '{"v":1,"deletions":[["2026-12-02T19:55:00Z","a"],["2026-12-02T19:59:59Z","b"]]}'
    )
    assert DeletionRecord.parse(text) == record


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '{"v":2,"deletions":[]}',
        '{"v":1}',
        '{"v":1,"deletions":{}}',
        '{"v":1,"deletions":[["2026-12-02T19:55:00Z"]]}',
        '{"v":1,"deletions":[["yesterday","a"]]}',
        '{"v":1,"deletions":[["2026-12-02T19:55:00","a"]]}',
        '{"v":1,"deletions":[["2026-12-02T19:55:00Z",""]]}',
    ],
)
def test_an_unreadable_record_spends_the_budget(text: str) -> None:
    record = DeletionRecord.parse(text)
    assert not record.readable and record.problem
    assert record.remaining(10, NOW) == 0
    assert record.with_deletions([Deletion(NOW, "x")], NOW) is record


@pytest.mark.parametrize("text", [None, "", "  "])
def test_no_record_yet_is_empty(text: str | None) -> None:
    record = DeletionRecord.parse(text)
    assert record.readable and record.remaining(10, NOW) == 10


def test_future_entries_count_and_old_ones_drop() -> None:
    record = DeletionRecord(
        (Deletion(NOW - timedelta(hours=2), "old"), Deletion(NOW + timedelta(minutes=3), "ahead"))
    )
    assert record.remaining(2, NOW) == 1
    assert [d.node for d in record.with_deletions([], NOW).deletions] == ["ahead"]


times = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
)


@settings(derandomize=True, max_examples=200)
@given(
    st.lists(st.tuples(times, st.text(min_size=1, max_size=8)), max_size=20),
    times,
    st.integers(0, 30),
)
def test_record_properties(entries, now: datetime, per_hour: int) -> None:
    record = DeletionRecord(tuple(sorted(Deletion(at, name) for at, name in entries)))
    assert DeletionRecord.parse(record.render()) == record
    left = record.remaining(per_hour, now)
    assert 0 <= left <= per_hour
    assert left == max(0, per_hour - sum(1 for at, _ in entries if at > now - timedelta(hours=1)))
