"""The record of recent node deletions, kept in the status ConfigMap for the hourly budget.

The record is written before each DELETE, so a restart or a failover reads the budget back.
It renders to compact JSON: ``{"v":1,"deletions":[["2026-12-02T19:55:38Z","node"],...]}``.
Parsing is tolerant of nothing: text that cannot be read gives an *unreadable* record, and
an unreadable record leaves no budget at all (the safe side), never an empty one. A
missing record (no key yet, a fresh cluster) is empty.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

RECORD_VERSION = 1
BUDGET_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True, order=True)
class Deletion:
    """One node deletion: when (UTC) and which node."""

    at: datetime
    node: str


@dataclass(frozen=True, slots=True)
class DeletionRecord:
    """Recent deletions, oldest first; ``readable`` False when the stored text was bad."""

    deletions: tuple[Deletion, ...] = ()
    readable: bool = True
    problem: str = ""  # why it could not be read

    @classmethod
    def parse(cls, text: str | None) -> DeletionRecord:
        """Read a rendered record; None (no record yet) is empty, bad text is unreadable."""
        if text is None or not text.strip():
            return cls()
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("v") != RECORD_VERSION:
                raise ValueError(f"not a version {RECORD_VERSION} deletion record")
            entries = data["deletions"]
            if not isinstance(entries, list):
                raise ValueError("deletions is not a list")
            return cls(tuple(sorted(_entry(e) for e in entries)))
        except (ValueError, KeyError, TypeError) as err:
            return cls(readable=False, problem=str(err) or type(err).__name__)

    def render(self) -> str:
        """Compact JSON, oldest first."""
        entries = [[_iso(d.at), d.node] for d in self.deletions]
        return json.dumps({"v": RECORD_VERSION, "deletions": entries}, separators=(",", ":"))

    def recent(self, now: datetime) -> tuple[Deletion, ...]:
        """Deletions inside the sliding hour before ``now`` (and any dated after it: a
        replica whose clock ran ahead still spent the budget)."""
        start = now - BUDGET_WINDOW
        return tuple(d for d in self.deletions if d.at > start)

    def remaining(self, max_per_hour: int, now: datetime) -> int:
        """Deletions still allowed in the sliding hour; 0 when the record was unreadable."""
        if not self.readable:
            return 0
        return max(0, max_per_hour - len(self.recent(now)))

    def with_deletions(self, done: Iterable[Deletion], now: datetime) -> DeletionRecord:
        """The record with ``done`` added and entries older than the window dropped.

        An unreadable record stays unreadable: only a person can tell what it held.
        """
        if not self.readable:
            return self
        kept = DeletionRecord(tuple(sorted((*self.deletions, *done)))).recent(now)
        return DeletionRecord(kept)


def _entry(raw: object) -> Deletion:
    if not isinstance(raw, list) or len(raw) != 2:
        raise ValueError(f"bad entry {raw!r}")
    at, node = raw
    if not isinstance(at, str) or not isinstance(node, str) or not node:
        raise ValueError(f"bad entry {raw!r}")
    when = datetime.fromisoformat(at)
    if when.tzinfo is None:
        raise ValueError(f"time without zone in {raw!r}")
    return Deletion(when.astimezone(UTC), node)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
