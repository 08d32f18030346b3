"""The leader-election loop: drives ``reconciler.core.election`` over a LeasePort with a Clock.

Hand-written rather than the client's ``kubernetes.leaderelection``, because that one
refuses retry periods (and deadlines) under 1 s, calls ``sys.exit`` on bad config,
sleeps on the wall clock (``time.sleep``, ``datetime.now``), so tests cannot drive
it with a fake clock; it times expiry from the ``renewTime`` value written by another
machine's clock rather than from when it saw the record change; it does not stop the
worker when leadership is lost (it only stops calling back); and it neither writes
``leaseTransitions`` nor releases the lease on shutdown. The fields written are the
same (a test cross-checks them against its LeaseLock on the API-server double).

Use::

    elector = LeaderElector(KubeLease(api, "topoctl", ns), identity, clock, on_lost=exit_1)
    elector.start()                  # a daemon thread stepping every retry period
    if elector.may_write(): ...      # before every guarded write, with
    timeout = elector.write_deadline()  # as the upper bound of its timeout
    elector.release()                # on SIGTERM: stop, give the lease up

``on_lost`` is called once, from the loop's thread, when leadership ends for a
reason other than release; the caller exits non-zero so the pod restarts.

``--dry-run`` runs a :class:`LeaseObserver` instead: it reads the Lease and logs who
holds it, and never writes it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Callable

from reconciler.core.election.elector import WRITES, Decision, Elector, LeaseAction
from reconciler.core.election.lease import JITTER_FACTOR, Timing
from reconciler.ports import Clock, LeaseConflictError, LeaseError, LeasePort

log = logging.getLogger("topoctl.leader")
MIN_TIMEOUT = 0.05  # seconds: below this a request cannot succeed anyway


class LeaderElector:
    """One candidate for one Lease."""

    def __init__(
        self,
        port: LeasePort,
        identity: str,
        clock: Clock,
        *,
        timing: Timing | None = None,
        on_lost: Callable[[], None] | None = None,
        on_started: Callable[[], None] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not identity:
            raise ValueError("the identity must not be empty")
        self.port = port
        self.clock = clock
        self.on_lost = on_lost
        self.on_started = on_started
        self.rng = rng
        self._state = Elector(identity, timing or Timing())
        self._lock = threading.Lock()  # one step (or the release) at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost_reported = False
        self._notify_lost = False

    # ------------------------------------------------------------- queries

    @property
    def identity(self) -> str:
        """This candidate's holderIdentity."""
        return self._state.identity

    def may_write(self) -> bool:
        """Whether a guarded write may be sent now (false from the renew deadline on)."""
        return self._state.may_write(self.clock.monotonic())

    def write_deadline(self) -> float:
        """Seconds before the lease could expire for the others: no write may take longer."""
        return self._state.write_deadline(self.clock.monotonic())

    # ---------------------------------------------------------------- loop

    def _timeout(self, now: float) -> float:
        state = self._state
        deadline = state.renew_deadline_at()
        budget = state.timing.renew_deadline if deadline is None else deadline - now
        return max(MIN_TIMEOUT, budget)

    def _settle(self, state: Elector, decision: Decision) -> Decision:
        self._state = state
        if decision.action is LeaseAction.LOST and not self._lost_reported:
            self._lost_reported = True
            self._notify_lost = True
            log.warning("lost the lease: %s", decision.reason)
        return decision

    def step(self) -> Decision:
        """One round: read the Lease, decide, write if the decision says so."""
        with self._lock:
            decision = self._step()
        if self._notify_lost:
            self._notify_lost = False
            if self.on_lost is not None:
                self.on_lost()
        return decision

    def _step(self) -> Decision:
        clock = self.clock
        state, lost = self._state.check(clock.monotonic())
        if lost is not None:
            return self._settle(state, lost)
        if state.released:
            return Decision(LeaseAction.WAIT, state.timing.retry_period, reason="released")
        try:
            lease = self.port.get(self._timeout(clock.monotonic()))
        except LeaseError as err:
            log.info("reading the lease failed: %s", err)
            return self._settle(*state.failed(clock.monotonic()))
        state, decision = state.decide(lease, clock.monotonic(), clock.wall())
        if decision.action not in WRITES or decision.write is None:
            return self._settle(state, decision)
        was_leader = state.leader
        self._state = state
        sent = clock.monotonic()
        try:
            if decision.resource_version is None:
                result = self.port.create(decision.write, self._timeout(sent))
            else:
                result = self.port.replace(
                    decision.write, decision.resource_version, self._timeout(sent)
                )
        except LeaseConflictError as err:
            log.info("%s lost a race (%s); reading the lease again", decision.action.value, err)
            state, retry = state.failed(clock.monotonic())
            return self._settle(state, Decision(retry.action, 0.0, reason=retry.reason))
        except LeaseError as err:
            log.info("%s failed: %s", decision.action.value, err)
            return self._settle(*state.failed(clock.monotonic()))
        state = state.succeeded(decision, result, sent, clock.monotonic())
        self._settle(state, decision)
        if state.leader and not was_leader:
            log.info("acquired the lease as %s (%s)", state.identity, decision.reason)
            if self.on_started is not None:
                self.on_started()
        return decision

    def _pause(self, decision: Decision) -> float:
        if self._state.leader or decision.retry_in <= 0:
            return decision.retry_in
        return decision.retry_in * (1.0 + self.rng() * JITTER_FACTOR)  # as wait.JitterUntil

    def run(self) -> None:
        """Step until lost or stopped (``release``)."""
        while not self._stop.is_set():
            decision = self.step()
            if decision.action is LeaseAction.LOST:
                return
            self.clock.wait(self._stop, self._pause(decision))

    def start(self) -> threading.Thread:
        """Run the loop in a daemon thread."""
        thread = threading.Thread(target=self.run, name=f"lease:{self.identity}", daemon=True)
        self._thread = thread
        thread.start()
        return thread

    def stop(self, timeout: float | None = None) -> None:
        """Stop the loop without giving the lease up (it expires on its own)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def release(self, timeout: float | None = None) -> bool:
        """Stop the loop and give the lease up if held; True unless the release write failed."""
        self.stop(timeout)
        with self._lock:
            clock = self.clock
            for _attempt in range(2):
                budget = self._state.write_deadline(clock.monotonic())
                state, decision = self._state.release(clock.wall())
                self._state = state
                if decision.action is not LeaseAction.RELEASE or decision.write is None:
                    return True
                sent = clock.monotonic()
                try:
                    result = self.port.replace(
                        decision.write, decision.resource_version or "", max(MIN_TIMEOUT, budget)
                    )
                except LeaseConflictError:
                    if not self._reread():
                        return True
                    continue
                except LeaseError as err:
                    log.warning("releasing the lease failed: %s (it expires on its own)", err)
                    return False
                self._state = state.succeeded(decision, result, sent, clock.monotonic())
                log.info("released the lease")
                return True
            return False

    def _reread(self) -> bool:
        """After a conflicting release: whether the lease is still ours (state refreshed)."""
        try:
            lease = self.port.get(MIN_TIMEOUT + self._state.write_deadline(self.clock.monotonic()))
        except LeaseError:
            return False
        if lease is None or lease.spec.holder != self.identity:
            return False
        self._state = dataclasses.replace(
            self._state,
            observed=lease.spec,
            resource_version=lease.resource_version,
            released=False,
        )
        return True


class LeaseObserver:
    """``--dry-run``'s stand-in for the elector: it reads the Lease every retry period and
    logs who holds it whenever that changes, and never takes, renews or releases it - a
    dry run writes nothing at all. It never may write."""

    def __init__(
        self, port: LeasePort, identity: str, clock: Clock, *, timing: Timing | None = None
    ) -> None:
        self.port = port
        self.identity = identity
        self.clock = clock
        self.timing = timing or Timing()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._said: str | None = None

    def may_write(self) -> bool:
        """Never."""
        return False

    def write_deadline(self) -> float:
        """No time: nothing may be written."""
        return 0.0

    def step(self) -> None:
        """Read the Lease; say who holds it when that changed."""
        try:
            lease = self.port.get(self.timing.retry_period)
        except LeaseError as err:
            said = f"dry run: the lease cannot be read ({err}); not taken"
        else:
            holder = lease.spec.holder if lease is not None else ""
            said = (
                f"dry run: the lease is held by {holder}; not taken"
                if holder
                else "dry run: nobody holds the lease; not taken"
            )
        if said != self._said:
            self._said = said
            log.info("%s (this replica is %s)", said, self.identity)

    def run(self) -> None:
        """Look every retry period until stopped."""
        while not self._stop.is_set():
            self.step()
            self.clock.wait(self._stop, self.timing.retry_period)

    def start(self) -> threading.Thread:
        """Look in a daemon thread."""
        thread = threading.Thread(target=self.run, name=f"lease:{self.identity}", daemon=True)
        self._thread = thread
        thread.start()
        return thread

    def release(self, timeout: float | None = None) -> bool:
        """Stop looking; there is nothing to give up."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return True
