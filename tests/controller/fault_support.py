"""What the fault matrix's tests share: moving fake time under a running loop, and
reading the double's request log.

A loop under test waits on a FakeClock; :func:`drive` moves fake time on in steps, each
once the loop is asleep (so every request it makes between two steps was made at one
fake instant), and fails when it never sleeps: a loop that spins never yields to the
clock at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.apiserver import ApiServer
from tests.controller.fakeclock import TimeBase


def settled(
    base: TimeBase,
    loop: threading.Thread,
    sleepers: int = 1,
    waiting: Callable[[], bool] | None = None,
    timeout: float = 10.0,
) -> None:
    """Block (real time) until ``sleepers`` loops sleep on the fake clock, or ``waiting()``
    says the loop waits on something else (a watch held open); AssertionError when
    neither happens within ``timeout`` real seconds: the loop spins."""
    deadline = time.monotonic() + timeout
    while base.sleepers < sleepers and not (waiting is not None and waiting()):
        if not loop.is_alive():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the loop never slept in {timeout} s: it spins")
        time.sleep(0.001)


def drive(
    base: TimeBase,
    loop: threading.Thread,
    seconds: float,
    step: float = 0.1,
    sleepers: int = 1,
    waiting: Callable[[], bool] | None = None,
) -> None:
    """Move fake time on by ``seconds``, ``step`` at a time, each once the loop has
    settled (see :func:`settled`)."""
    end = base.now + seconds
    while base.now < end - 1e-9:
        settled(base, loop, sleepers, waiting)
        base.advance(min(step, end - base.now))
    settled(base, loop, sleepers, waiting)


def count(apiserver: ApiServer, verb: str, resource: str = "nodes") -> int:
    """Requests of ``verb`` on ``resource`` in the double's log."""
    return apiserver.log.count(verb=verb, resource=resource)
