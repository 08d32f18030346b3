"""What the fault matrix's tests share: moving fake time under a running loop, a
reconcile loop on fake time, and reading the double's request log.

A loop under test waits on a FakeClock; :func:`drive` moves fake time on in steps, each
once the loop is asleep (so every request it makes between two steps was made at one
fake instant), and fails when it never sleeps: a loop that spins never yields to the
clock at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from reconciler.adapters.kube import KubeBackend, RetryPolicy
from reconciler.adapters.kubewatch import KubeWatcher
from reconciler.controller.loop import LoopSettings, ReconcileLoop
from reconciler.controller.plans import Revision
from reconciler.model.topology import Topology
from reconciler.ports import Observer, WriteGate
from tests.apiserver import ApiServer
from tests.controller.fakeclock import EPOCH, FakeClock, TimeBase
from tests.controller.loop_support import SHA, as_shipped


def settled(
    base: TimeBase,
    loop: threading.Thread,
    sleepers: int = 1,
    waiting: Callable[[], bool] | None = None,
    timeout: float = 10.0,
    quiet: Callable[[], bool] | None = None,
) -> None:
    """Block (real time) until ``sleepers`` loops sleep on the fake clock, or ``waiting()``
    says the loop waits on something else (a watch held open) - or, given ``quiet``, until
    it says so; AssertionError when that does not happen within ``timeout`` real seconds:
    the loop spins."""
    deadline = time.monotonic() + timeout

    def still() -> bool:
        if quiet is not None:
            return quiet()
        return base.sleepers >= sleepers or (waiting is not None and waiting())

    while not still():
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
    quiet: Callable[[], bool] | None = None,
) -> None:
    """Move fake time on by ``seconds``, ``step`` at a time, each once the loop has
    settled (see :func:`settled`)."""
    end = base.now + seconds
    while base.now < end - 1e-9:
        settled(base, loop, sleepers, waiting, quiet=quiet)
        base.advance(min(step, end - base.now))
    settled(base, loop, sleepers, waiting, quiet=quiet)


def count(apiserver: ApiServer, verb: str, resource: str = "nodes") -> int:
    """Requests of ``verb`` on ``resource`` in the double's log."""
    return apiserver.log.count(verb=verb, resource=resource)


def fake_clock(base: TimeBase, wall: float) -> FakeClock:
    """A fake clock on ``base`` whose wall time starts at ``wall`` (Unix seconds)."""
    return FakeClock(base, wall_skew=wall - EPOCH.timestamp())


class FakeTimeLoop:
    """A reconcile loop on the double whose worker waits on a fake clock, writing as
    ``topoctl run`` does: Node writes tried once (the loop retries), the example nodes
    and sites/ as the controller's service account. ``wall`` is where the fake wall
    clock starts (Kilo's freshness is judged against it)."""

    def __init__(
        self,
        apiserver: ApiServer,
        topology: Topology,
        wall: float,
        *,
        observer: Observer | None = None,
        settings: LoopSettings | None = None,
        base: TimeBase | None = None,
        may_write: Callable[[], bool] = lambda: True,
        gate: WriteGate | None = None,
    ) -> None:
        shipped = as_shipped(apiserver)
        self.apiserver = apiserver
        self.base = base or TimeBase()
        self.clock = fake_clock(self.base, wall)
        self.api = shipped.api(shipped.controller_token())
        reader = KubeBackend(self.api, RetryPolicy(attempts=3, initial=0.01, cap=0.05))
        writer = KubeBackend(self.api, RetryPolicy(attempts=1), gate=gate)
        self.loop = ReconcileLoop(
            KubeWatcher(reader),
            writer,
            clock=self.clock,
            may_write=may_write,
            settings=settings or LoopSettings(resync=3600.0),
            observer=observer,
        )
        self.loop.set_revision(Revision(SHA, topology))
        self.thread = threading.Thread(target=self.loop.run, name="loop", daemon=True)

    def __enter__(self) -> FakeTimeLoop:
        self.thread.start()
        assert self.loop.informer.synced.wait(10.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.request_stop()
        self.thread.join(timeout=10.0)
        self.api.close()
        assert not self.thread.is_alive(), "the loop did not stop"

    def drive(self, seconds: float, step: float = 0.1) -> None:
        """Move fake time on, each step once the worker waits for its next key."""
        drive(self.base, self.thread, seconds, step)
