"""The Lease's record and the election's timing, as client-go's ``tools/leaderelection``
has them (lease duration 15 s, renew deadline 10 s, retry period 2 s), and where the
controller's Lease lives by default. Values only; the state machine is :mod:`.elector`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

JITTER_FACTOR = 1.2  # client-go's leaderelection.JitterFactor


@dataclass(frozen=True)
class Timing:
    """Seconds; validated as client-go validates its config (except the 1 s floors)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline:
            raise ValueError("the lease duration must be greater than the renew deadline")
        if not self.renew_deadline > JITTER_FACTOR * self.retry_period:
            raise ValueError(
                f"the renew deadline must be greater than {JITTER_FACTOR} x the retry period"
            )
        if not self.retry_period > 0:
            raise ValueError("the retry period must be positive")

    @property
    def duration_seconds(self) -> int:
        """``leaseDurationSeconds`` as written (an integer, at least 1)."""
        return max(1, math.ceil(self.lease_duration))


@dataclass(frozen=True)
class LeaseSpec:
    """The election record: a Lease's spec. ``holder`` is "" when nobody holds it."""

    holder: str = ""
    duration_seconds: int | None = None
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0


@dataclass(frozen=True)
class LeaseObject:
    """A Lease as read from (or returned by) the API: its record and resourceVersion."""

    spec: LeaseSpec
    resource_version: str


def default_namespace(service_account_namespace: str | None, context_namespace: str | None) -> str:
    """``--lease-namespace`` by default: the pod's namespace (the service-account file's
    content), else the kubeconfig context's namespace, else ``default``."""
    for candidate in (service_account_namespace, context_namespace):
        if candidate is not None and candidate.strip():
            return candidate.strip()
    return "default"
