"""The port for one Lease object (read, create, replace under a resourceVersion) and a Clock.

Values are the pure core's (``reconciler.core.lease``). Every call takes a timeout
in seconds, so the caller can keep each request inside the lease time it has left.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol

from reconciler.core.lease import LeaseObject, LeaseSpec


class LeaseError(Exception):
    """The request failed or its answer was lost: the Lease may or may not have changed."""


class LeaseConflictError(LeaseError):
    """HTTP 409: someone else wrote the Lease first (stale resourceVersion, or it exists)."""


class LeasePort(Protocol):
    """One named Lease in one namespace."""

    def get(self, timeout: float) -> LeaseObject | None:
        """The Lease, or None when it does not exist."""
        ...

    def create(self, spec: LeaseSpec, timeout: float) -> LeaseObject:
        """Create the Lease; LeaseConflictError when it already exists."""
        ...

    def replace(self, spec: LeaseSpec, resource_version: str, timeout: float) -> LeaseObject:
        """Replace the spec; LeaseConflictError when it changed since ``resource_version``."""
        ...


class Clock(Protocol):
    """Time for the election loop: monotonic seconds for decisions, wall time for the record."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps."""
        ...

    def wall(self) -> datetime:
        """Now, timezone-aware (written into acquireTime/renewTime)."""
        ...

    def wait(self, stop: threading.Event, seconds: float) -> None:
        """Sleep up to ``seconds``, returning early once ``stop`` is set."""
        ...
