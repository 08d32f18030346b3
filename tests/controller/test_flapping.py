"""The flap limiter on a fake clock: which key writes wait, and for how long."""

from __future__ import annotations

import msgspec

from reconciler.controller.flapping import FlapLimiter
from reconciler.core.planning.owned import held_record, render_owned
from reconciler.core.planning.plan import DECLARED, PUT, Change, NodePlan
from reconciler.core.planning.project import node_write
from reconciler.model import keys
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.core.test_plan import state

LIVE = state("n1")


def plan(**annotations: str) -> NodePlan:
    changes = tuple(
        Change("n1", "s", "annotation", key, PUT, DECLARED, None, value)
        for key, value in sorted(annotations.items())
    )
    return NodePlan("n1", "s", LIVE.uid, LIVE.resource_version, changes)


def keys_left(limiter: FlapLimiter, wanted: NodePlan) -> list[str]:
    return [c.key for c in limiter.hold(wanted, LIVE).writes]


def write(limiter: FlapLimiter, wanted: NodePlan) -> None:
    limiter.written("s", node_write(LIVE, limiter.hold(wanted, LIVE)))


def test_the_same_value_again_waits_doubling_to_the_cap_and_alone() -> None:
    base = TimeBase()
    limiter = FlapLimiter(FakeClock(base), interval=10.0, cap=40.0)
    write(limiter, plan(a="1", b="1"))
    assert keys_left(limiter, plan(a="1")) == []  # put back by someone: it waits
    assert limiter.due("s") == 10.0
    assert keys_left(limiter, plan(a="1", c="1")) == ["c"]  # another key goes at once
    waits = []
    for _ in range(5):
        started = base.now
        while not keys_left(limiter, plan(a="1")):
            base.advance(1.0)
        waits.append(base.now - started)
        write(limiter, plan(a="1"))
    assert waits == [10.0, 20.0, 40.0, 40.0, 40.0]
    assert limiter.flapping("s") == [
        "n1: annotation a (put back 5 time(s) in a row; written at most once per 40s)"
    ]


def test_a_new_value_goes_at_once_and_a_quiet_key_starts_over() -> None:
    base = TimeBase()
    limiter = FlapLimiter(FakeClock(base), interval=10.0, cap=40.0)
    for _ in range(3):
        write(limiter, plan(a="1"))
        base.advance(40.0)
    assert limiter.flapping("s") != []
    assert keys_left(limiter, plan(a="2")) == ["a"]  # git changed it: no wait
    base.advance(80.0)  # quiet for twice the cap: no longer flapping, no wait
    assert limiter.flapping("s") == [] and limiter.settles_in("s") is None
    write(limiter, plan(a="1"))
    assert keys_left(limiter, plan(a="1")) == []
    base.advance(10.0)
    assert keys_left(limiter, plan(a="1")) == ["a"]  # the first wait again, not the cap


RECORD = {"annotations": {"a", "b"}, "labels": set[str](), "taints": set[str]()}


def test_a_held_key_is_not_recorded_as_written_in_the_ownership_record() -> None:
    base = TimeBase()
    limiter = FlapLimiter(FakeClock(base), interval=10.0, cap=40.0)
    write(limiter, plan(a="1"))
    # the plan puts a back and records, in topoctl.io/owned, that it wrote a (and b)
    before = render_owned(RECORD, {("annotation", "b"): ("topoctl", "d-b")})
    after = render_owned(
        RECORD,
        {("annotation", "a"): ("topoctl", "d-a"), ("annotation", "b"): ("topoctl", "d-b2")},
    )
    record = Change("n1", "s", "annotation", keys.TOPOCTL_OWNED, PUT, DECLARED, before, after)
    wanted = msgspec.structs.replace(plan(a="1"), changes=(*plan(a="1").changes, record))
    (left,) = limiter.hold(wanted, LIVE).writes
    assert left.key == keys.TOPOCTL_OWNED
    assert held_record({keys.TOPOCTL_OWNED: left.after or ""}) == {
        ("annotation", "b"): ("topoctl", "d-b2")  # a waits, so its entry does too
    }
    # with nothing else in the record changing, the record waits with the key
    only_a = render_owned(RECORD, {("annotation", "a"): ("topoctl", "d-a")})
    record = msgspec.structs.replace(record, before=render_owned(RECORD))
    record = msgspec.structs.replace(record, after=only_a)
    wanted = msgspec.structs.replace(plan(a="1"), changes=(*plan(a="1").changes, record))
    assert limiter.hold(wanted, LIVE).writes == ()
