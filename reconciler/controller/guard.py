"""The controller's ClusterWriter: every Node write passes here, and nowhere else.

Before each write: a stop requested (SIGTERM) refuses it, so the write in flight ends
and no other starts; a replica that does not hold the lease (``may_write`` false)
refuses it; ``--dry-run`` logs and counts it instead. A sent write is counted and logged
on one line naming the node, the keys and the revision; the executor's report says
which writes were taken (the status's TopologyApplied Events come from there).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.model.state import NodeState, NodeWrite, StatusWrite
from reconciler.ports import BackendError, ClusterWriter

log = logging.getLogger("topoctl.controller")


class NotLeaderError(BackendError):
    """The write was not sent: this replica does not hold the lease."""


class StoppingError(BackendError):
    """The write was not sent: the controller is shutting down."""


@dataclass
class WriteStats:
    """Counters a metrics module reads."""

    node_writes: int = 0  # requests sent (topoctl_node_writes_total)
    failed: int = 0
    dry_run: int = 0  # writes --dry-run did not send
    refused: int = 0  # writes refused without the lease


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
        *,
        dry_run: bool = False,
    ) -> None:
        self.writer = writer
        self.may_write = may_write
        self.stop = stop
        self.revision = revision
        self.dry_run = dry_run
        self.stats = WriteStats()
        self._lock = threading.Lock()

    def _check(self) -> None:
        if self.stop.is_set():
            raise StoppingError("not written: shutting down")
        if not self.may_write():
            with self._lock:
                self.stats.refused += 1
            raise NotLeaderError("not written: this replica does not hold the lease")

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
        except BackendError:
            with self._lock:
                self.stats.failed += 1
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
