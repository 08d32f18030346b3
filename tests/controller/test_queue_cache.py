"""The site queue and the node cache, on a fake clock (time moves only by hand)."""

from __future__ import annotations

import threading

from msgspec.structs import replace

from reconciler.controller.cache import NodeCache
from reconciler.controller.queue import SiteQueue
from reconciler.model import keys
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.core.test_plan import SEEN, state

STOP = threading.Event()


def queue(base: TimeBase) -> SiteQueue:
    return SiteQueue(FakeClock(base), base_delay=1.0, max_delay=8.0, rng=lambda: 0.0)


def test_a_key_is_queued_once_and_never_processed_twice_at_once() -> None:
    q = queue(TimeBase())
    for key in ("a", "b", "a", "a"):
        q.add(key)
    assert q.get(STOP, 0) == "a"
    q.add("a")  # while processing: held back, not handed out again
    assert q.get(STOP, 0) == "b"
    assert q.get(STOP, 0) is None
    q.done("a")  # now it comes back, once
    assert q.get(STOP, 0) == "a"
    q.done("a")
    q.done("b")
    assert q.idle


def test_retries_back_off_exponentially_up_to_the_cap_until_forgotten() -> None:
    base = TimeBase()
    q = queue(base)
    delays = [q.retry("a") for _ in range(5)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert q.get(STOP, 0) is None  # nothing due yet
    base.advance(1.0)
    assert q.get(STOP, 0) == "a"
    q.done("a")
    q.forget("a")
    assert q.retry("a") == 1.0  # from the base delay again
    assert q.retry("b", at_least=5.0) == 5.0  # the API's Retry-After, when longer
    assert q.retry("b", at_least=30.0) == 8.0  # capped as every retry is


def test_a_delayed_key_wakes_a_waiting_worker() -> None:
    base = TimeBase()
    q = queue(base)
    q.add_after("late", 5.0)
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(q.get(STOP, 60.0)))
    worker.start()
    base.wait_for_sleepers(1)
    base.advance(5.0)
    worker.join(5.0)
    assert got == ["late"]


def test_close_ends_every_wait() -> None:
    base = TimeBase()
    q = queue(base)
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(q.get(STOP, 60.0)))
    worker.start()
    base.wait_for_sleepers(1)
    q.close()
    worker.join(5.0)
    assert got == [None]


def test_a_heartbeat_is_irrelevant_and_a_silent_node_flips_on_its_timer() -> None:
    cache = NodeCache()
    node = state("n1", annotations={keys.KILO_LAST_SEEN: str(SEEN)})
    assert cache.upsert(node, SEEN).relevant  # joined
    beat = replace(node, annotations={keys.KILO_LAST_SEEN: str(SEEN + 30)}, resource_version="2")
    delta = cache.upsert(beat, SEEN + 30)
    assert not delta.relevant and cache.get("n1") is beat
    labelled = replace(beat, labels={"pool": "b"})
    assert cache.upsert(labelled, SEEN + 31).relevant
    assert cache.flips_due(SEEN + 60) == []  # the first check-in's timer: checked in since
    flips = cache.flips_due(SEEN + 90)
    assert [d.name for d in flips] == ["n1"] and flips[0].relevant
    assert cache.flips_due(SEEN + 200) == []
    # checking in again after going stale is a flip the event itself shows
    again = replace(labelled, annotations={keys.KILO_LAST_SEEN: str(SEEN + 300)})
    assert cache.upsert(again, SEEN + 300).relevant


def test_a_relist_hands_on_what_joined_moved_and_left() -> None:
    cache = NodeCache()
    for name in ("a", "b", "c"):
        cache.upsert(state(name), SEEN)
    deltas = cache.replace([state("a"), state("b", labels={"x": "y"}), state("d")], SEEN)
    moved = {d.name: (d.old is not None, d.new is not None, d.relevant) for d in deltas}
    assert moved == {
        "a": (True, True, False),
        "b": (True, True, True),
        "c": (True, False, True),
        "d": (False, True, True),
    }
    assert sorted(n.name for n in cache.nodes()) == ["a", "b", "d"]
