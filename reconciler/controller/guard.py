"""The guard of every write the controller sends, and its ClusterWriter for Nodes.

:class:`LeaseGate` is the one statement of when a write may go out, for every kind of
write: Node patches, the status ConfigMap (the status, the deletion record), Events and
deletions. The adapter that sends a write asks it immediately before each request (each
attempt of it): a replica that does not hold the lease - or whose renew deadline has
passed, however long the requests before took - sends nothing, and a request that is
sent gets a timeout that ends before the lease could expire for the others, so none
lands after another replica could have taken over. ``--dry-run`` sends no write at all.

:class:`GuardedWriter` is what the reconcile loop writes Nodes through, before the
adapter's own look at the gate: a stop requested (SIGTERM) refuses the write, so the
write in flight ends and no other starts; a replica that does not hold the lease
(``may_write`` false) refuses it; ``--dry-run`` logs and counts it instead. After the
API answered a write with ``Retry-After``, no Node write is sent until that time has
passed (capped): the writes meanwhile fail at once with the time left, and the loop
retries their sites then. A sent write is counted and logged on one line naming the
node, the keys and the revision; the executor's report says which writes were taken
(the status's TopologyApplied Events come from there).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.model.state import NodeState, NodeWrite, StatusWrite
from reconciler.ports import BackendError, Clock, ClusterWriter, NotSentError, ThrottledError

log = logging.getLogger("topoctl.controller")


MIN_BUDGET = 0.25  # seconds: a write with less time left before the lease could expire waits
RETRY_AFTER_CAP = 60.0  # seconds: the longest Retry-After honoured


class NotLeaderError(NotSentError):
    """The write was not sent: this replica does not hold the lease."""


class StoppingError(NotSentError):
    """The write was not sent: the controller is shutting down."""


class DryRunError(NotSentError):
    """The write was not sent: ``--dry-run``."""


class LeaseGate:
    """The WriteGate of one replica (see the module)."""

    def __init__(self, time_left: Callable[[], float], *, dry_run: bool = False) -> None:
        """``time_left``: the seconds before the lease could expire for the others, 0
        unless this replica may write now (the elector's ``write_deadline``)."""
        self.time_left = time_left
        self.dry_run = dry_run

    def admit(self, what: str) -> float:
        """The timeout of the request ``what``, or NotSentError."""
        if self.dry_run:
            raise DryRunError(f"{what}: not sent (--dry-run)")
        left = self.time_left()
        if left < MIN_BUDGET:
            log.warning("%s: not sent, this replica does not hold the lease (any more)", what)
            raise NotLeaderError(f"{what}: not sent, this replica does not hold the lease")
        return left


@dataclass
class WriteStats:
    """Counters a metrics module reads."""

    node_writes: int = 0  # requests sent (topoctl_node_writes_total)
    failed: int = 0
    dry_run: int = 0  # writes --dry-run did not send
    refused: int = 0  # writes refused without the lease
    throttled: int = 0  # writes held back while the API's Retry-After runs


def describe(write: NodeWrite) -> str:
    """The keys a write changes, for the log line."""
    parts = [
        f"{'-' if value is None else ''}{key}"
        for group in (write.annotations, write.labels)
        for key, value in sorted(group.items())
    ]
    if write.taints is not None:
        parts.append(f"taints ({len(write.taints)})")
    return ", ".join(parts)


class GuardedWriter:
    """A ClusterWriter that only the lease holder gets through."""

    def __init__(
        self,
        writer: ClusterWriter,
        may_write: Callable[[], bool],
        stop: threading.Event,
        revision: Callable[[], str],
        clock: Clock,
        *,
        dry_run: bool = False,
    ) -> None:
        self.writer = writer
        self.may_write = may_write
        self.stop = stop
        self.revision = revision
        self.clock = clock
        self.dry_run = dry_run
        self.stats = WriteStats()
        self._lock = threading.Lock()
        self._quiet_until = float("-inf")  # the API's Retry-After, on our clock

    def _check(self) -> None:
        if self.stop.is_set():
            raise StoppingError("not written: shutting down")
        if not self.may_write():
            with self._lock:
                self.stats.refused += 1
            raise NotLeaderError("not written: this replica does not hold the lease")
        with self._lock:
            left = self._quiet_until - self.clock.monotonic()
            if left > 0:
                self.stats.throttled += 1
        if left > 0:
            raise ThrottledError(f"not written: the API asked to wait {left:.1f}s more", left)

    def _throttled(self, err: ThrottledError) -> None:
        wait = min(err.retry_after, RETRY_AFTER_CAP)
        with self._lock:
            self._quiet_until = max(self._quiet_until, self.clock.monotonic() + wait)
        log.warning("the API asked to wait %.1fs: no Node write until then (%s)", wait, err)

    def write_node(self, write: NodeWrite) -> NodeState:
        """The guarded write (see the module)."""
        self._check()
        revision = self.revision()
        if self.dry_run:
            with self._lock:
                self.stats.dry_run += 1
            log.info(
                "dry run: would write node %s (revision %s): %s",
                write.name,
                revision[:12],
                describe(write),
            )
            return NodeState(name=write.name, resource_version=write.resource_version)
        with self._lock:
            self.stats.node_writes += 1
        try:
            result = self.writer.write_node(write)
        except BackendError as err:
            with self._lock:
                self.stats.failed += 1
            if isinstance(err, ThrottledError):
                self._throttled(err)
            raise
        log.info("wrote node %s (revision %s): %s", write.name, revision[:12], describe(write))
        return result

    def write_status(self, write: StatusWrite) -> NodeState:
        """Status writes are guarded the same way (the controller sends none today)."""
        self._check()
        if self.dry_run:
            with self._lock:
                self.stats.dry_run += 1
            return NodeState(name=write.name, resource_version=write.resource_version)
        with self._lock:
            self.stats.node_writes += 1
        return self.writer.write_status(write)

    def commit(self) -> None:
        """Nothing is buffered: the writer's own commit."""
        if not self.dry_run:
            self.writer.commit()
