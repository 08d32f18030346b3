"""The flap limiter on a fake clock: which key writes wait, and for how long."""

from __future__ import annotations

from reconciler.controller.flapping import FlapLimiter
from reconciler.core.planning.plan import DECLARED, PUT, Change, NodePlan
from reconciler.core.planning.project import node_write
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
