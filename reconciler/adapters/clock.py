"""The real clocks, behind the Clock port: ``time.monotonic`` and UTC wall time."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class SystemClock:
    """The real clocks: ``time.monotonic`` and UTC wall time."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def wall(self) -> datetime:
        """Now in UTC."""
        return datetime.now(UTC)

    def wait(self, stop: threading.Event, seconds: float) -> None:
        """``stop.wait(seconds)``."""
        stop.wait(max(0.0, seconds))
