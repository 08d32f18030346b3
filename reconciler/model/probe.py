"""ICMP probe values: what a probe found. Pure: no sockets here (the port is
``reconciler.ports.Prober``).

A probe round sends one echo request to each address and waits one timeout. Each address
then ANSWERED, stayed SILENT, or is UNKNOWN: the probe itself failed (no privilege to
open the socket, no route, a send error), which proves nothing about the node and so
never counts as silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

_NO_ERRORS: Mapping[str, str] = MappingProxyType({})


class ProbeOutcome(StrEnum):
    """What one echo request to one address found."""

    ANSWERED = "answered"
    SILENT = "silent"
    UNKNOWN = "unknown"  # the probe could not be made: proves nothing


@dataclass(frozen=True, slots=True)
class ProbeRound:
    """One round of probes: when it started, and the outcome per address."""

    at: datetime
    outcomes: Mapping[str, ProbeOutcome]
    errors: Mapping[str, str] = field(default_factory=lambda: _NO_ERRORS)  # UNKNOWN's cause

    def outcome(self, address: str) -> ProbeOutcome | None:
        """The outcome for ``address``, or None where this round did not probe it."""
        return self.outcomes.get(address)
