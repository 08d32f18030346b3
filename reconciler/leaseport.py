"""The port for one Lease object: read it, create it, replace it under a resourceVersion.

Values are the pure core's (``reconciler.core.lease``). Every call takes a timeout
in seconds, so the caller can keep each request inside the lease time it has left.
"""

from __future__ import annotations

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
