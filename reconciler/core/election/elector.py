"""Leader election on a ``coordination.k8s.io/v1`` Lease, as a pure state machine.

The rules are client-go's ``tools/leaderelection`` (lease duration 15 s, renew
deadline 10 s, retry period 2 s):

- A standby times expiry from when IT last saw the lease record change
  (holder, times, duration, transitions), on its own monotonic clock: the
  ``renewTime`` value was written by another machine's wall clock and is never
  compared with ours.
- A free lease (no holder, as a release leaves it) is taken at once; a held one
  only once it has stayed unchanged for the lease duration. Taking over adds
  one to ``leaseTransitions`` and sets ``acquireTime``.
- The holder renews every retry period. Once the renew deadline has passed
  since the last successful renew was *sent*, it has lost; seeing another
  holder in the lease loses too. ``may_write`` turns false at that moment, and
  ``write_deadline`` bounds any write's timeout by the time left before the
  lease could expire for the others.
- Release (on shutdown) clears ``holderIdentity`` and sets
  ``leaseDurationSeconds`` to 1, as client-go does.

Every call takes ``now`` (monotonic seconds) and, where a record is written,
``wall`` (the time written into the Lease); the machine never reads a clock.
Decisions are data: the caller performs the write a ``Decision`` names and
reports the outcome back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from reconciler.core.election.lease import LeaseObject, LeaseSpec, Timing


class LeaseAction(enum.Enum):
    """What the elector should do next."""

    CREATE = "create"  # no Lease yet: create it, holding it
    ACQUIRE = "acquire"  # free or expired: take it over
    RENEW = "renew"  # ours: write a fresh renewTime
    RELEASE = "release"  # ours, shutting down: clear the holder
    WAIT = "wait"  # held by another and not expired, or the last attempt failed
    LOST = "lost"  # was leading and no longer is: stop writing, exit


WRITES = frozenset(
    {LeaseAction.CREATE, LeaseAction.ACQUIRE, LeaseAction.RENEW, LeaseAction.RELEASE}
)


@dataclass(frozen=True)
class Decision:
    """One step's outcome: the action, the record to write (if any) and when to step again."""

    action: LeaseAction
    retry_in: float
    write: LeaseSpec | None = None
    resource_version: str | None = None  # the replace is guarded by it (None: create)
    reason: str = ""


@dataclass(frozen=True)
class Elector:
    """One candidate's view of the election; every transition returns a new value."""

    identity: str
    timing: Timing = field(default_factory=Timing)
    observed: LeaseSpec | None = None  # the record as last seen
    observed_at: float | None = None  # our monotonic time when it last changed
    resource_version: str | None = None  # of the Lease as last read or written
    leader: bool = False
    renewed_at: float | None = None  # when the last successful write as holder was sent
    lost: bool = False
    released: bool = False

    # ------------------------------------------------------------- queries

    def renew_deadline_at(self) -> float | None:
        """Monotonic time at which the holder gives up if it has not renewed by then."""
        if not self.leader or self.renewed_at is None:
            return None
        return self.renewed_at + self.timing.renew_deadline

    def may_write(self, now: float) -> bool:
        """Whether writes guarded by this election may be sent at ``now``."""
        deadline = self.renew_deadline_at()
        return not (self.lost or self.released) and deadline is not None and now < deadline

    def write_deadline(self, now: float) -> float:
        """Seconds left before the lease could expire for the others (0 unless writing)."""
        if not self.may_write(now) or self.renewed_at is None:
            return 0.0
        return max(0.0, self.renewed_at + self.timing.lease_duration - now)

    def expires_at(self) -> float | None:
        """For a standby: our monotonic time at which the observed holder's lease expires."""
        if self.observed is None or self.observed_at is None:
            return None
        duration = max(self.timing.lease_duration, float(self.observed.duration_seconds or 0))
        return self.observed_at + duration

    # --------------------------------------------------------- transitions

    def _lose(self, reason: str) -> tuple[Elector, Decision]:
        state = replace(self, leader=False, lost=True)
        return state, Decision(LeaseAction.LOST, 0.0, reason=reason)

    def _retry_in(self, now: float) -> float:
        deadline = self.renew_deadline_at()
        if deadline is None:
            return self.timing.retry_period
        return max(0.0, min(self.timing.retry_period, deadline - now))

    def check(self, now: float) -> tuple[Elector, Decision | None]:
        """Lose the lease if the renew deadline has passed (also when nothing could be read)."""
        if self.lost:
            return self, Decision(LeaseAction.LOST, 0.0, reason="already lost")
        deadline = self.renew_deadline_at()
        if deadline is not None and now >= deadline:
            return self._lose(
                f"not renewed within the renew deadline ({self.timing.renew_deadline}s)"
            )
        return self, None

    def decide(
        self, lease: LeaseObject | None, now: float, wall: datetime
    ) -> tuple[Elector, Decision]:
        """Given the Lease as just read (None: not found), what to write, if anything."""
        state, lost = self.check(now)
        if lost is not None:
            return state, lost
        if state.released:
            return state, Decision(LeaseAction.WAIT, self.timing.retry_period, reason="released")
        if lease is None:
            spec = LeaseSpec(self.identity, self.timing.duration_seconds, wall, wall, 0)
            return state, Decision(
                LeaseAction.CREATE, self.timing.retry_period, spec, None, "no lease yet"
            )
        record = lease.spec
        state = replace(state, resource_version=lease.resource_version)
        if record != state.observed or state.observed_at is None:
            state = replace(state, observed=record, observed_at=now)
        if record.holder and record.holder != self.identity:
            if state.leader:
                return state._lose(f"the lease is held by {record.holder}")
            expiry = state.expires_at()
            assert expiry is not None
            if now < expiry:
                return state, Decision(
                    LeaseAction.WAIT,
                    self.timing.retry_period,
                    reason=f"held by {record.holder}, expires in {expiry - now:.1f}s",
                )
            reason = f"{record.holder} stopped renewing"
        elif record.holder == self.identity:
            spec = replace(record, duration_seconds=self.timing.duration_seconds, renew_time=wall)
            return state, Decision(
                LeaseAction.RENEW, state._retry_in(now), spec, lease.resource_version, "ours"
            )
        else:
            reason = "released"
        spec = LeaseSpec(
            self.identity, self.timing.duration_seconds, wall, wall, record.transitions + 1
        )
        return state, Decision(
            LeaseAction.ACQUIRE, self.timing.retry_period, spec, lease.resource_version, reason
        )

    def succeeded(
        self, decision: Decision, result: LeaseObject, sent_at: float, now: float
    ) -> Elector:
        """The write ``decision`` named was accepted; ``sent_at`` is when it was sent."""
        state = replace(
            self, observed=result.spec, observed_at=now, resource_version=result.resource_version
        )
        if decision.action is LeaseAction.RELEASE:
            return replace(state, leader=False, renewed_at=None, released=True)
        if self.lost:
            return state
        return replace(state, leader=True, renewed_at=sent_at)

    def failed(self, now: float) -> tuple[Elector, Decision]:
        """A read or write failed (conflict, error, timeout): check the deadline, retry."""
        state, lost = self.check(now)
        if lost is not None:
            return state, lost
        return state, Decision(LeaseAction.WAIT, state._retry_in(now), reason="retrying")

    def release(self, wall: datetime) -> tuple[Elector, Decision]:
        """On shutdown: the write that gives the lease up (WAIT when not holding it)."""
        if not self.leader or self.observed is None or self.observed.holder != self.identity:
            return replace(self, released=True), Decision(
                LeaseAction.WAIT, 0.0, reason="not holding the lease"
            )
        spec = LeaseSpec("", 1, wall, wall, self.observed.transitions)
        state = replace(self, released=True)
        return state, Decision(
            LeaseAction.RELEASE, 0.0, spec, self.resource_version, "shutting down"
        )
