"""The informer's node cache: the latest NodeState of every node, and what moved.

Each update says whether it matters to the planner: a node that joined or left, whose
planning fingerprint changed (``reconciler.core.planning.fingerprint``), or whose Kilo freshness
flipped. A heartbeat that only moves ``last-seen`` forward while the node stays fresh
matters to no one. Freshness also flips with no event at all, when a node stops
checking in: the cache keeps a timer per fresh node (:meth:`NodeCache.flips_due`).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.core.kilo.freshness import fresh_until, is_fresh
from reconciler.core.planning.fingerprint import Fingerprint, fingerprint
from reconciler.model.state import NodeState


@dataclass(frozen=True, slots=True)
class Delta:
    """One node's move: ``old`` None when it joined, ``new`` None when it left."""

    name: str
    old: NodeState | None
    new: NodeState | None
    relevant: bool  # whether a plan may differ


@dataclass(frozen=True, slots=True)
class _Entry:
    state: NodeState
    key: Fingerprint
    fresh_until: int | None
    fresh: bool


class NodeCache:
    """Thread-safe: the informer writes, the reconcile loop reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._timers: list[tuple[int, str]] = []  # (fresh_until, name), lazily dropped

    def _entry(self, node: NodeState, now: int) -> _Entry:
        until = fresh_until(node)
        fresh = is_fresh(node, now)
        entry = _Entry(node, fingerprint(node), until, fresh)
        if fresh and until is not None:
            heapq.heappush(self._timers, (until, node.name))
        return entry

    def _put(self, node: NodeState, now: int) -> Delta:
        old = self._entries.get(node.name)
        entry = self._entry(node, now)
        self._entries[node.name] = entry
        if old is None:
            return Delta(node.name, None, node, True)
        relevant = old.key != entry.key or old.fresh != entry.fresh
        return Delta(node.name, old.state, node, relevant)

    def upsert(self, node: NodeState, now: int) -> Delta:
        """An ADDED or MODIFIED node, at unix second ``now``."""
        with self._lock:
            return self._put(node, now)

    def remove(self, name: str) -> Delta | None:
        """A DELETED node."""
        with self._lock:
            old = self._entries.pop(name, None)
        return Delta(name, old.state, None, True) if old is not None else None

    def replace(self, nodes: Iterable[NodeState], now: int) -> list[Delta]:
        """A fresh list: every node that joined, moved or left since the cache's view."""
        with self._lock:
            listed = {n.name: n for n in nodes}
            out = [
                Delta(name, entry.state, None, True)
                for name, entry in self._entries.items()
                if name not in listed
            ]
            for gone in out:
                del self._entries[gone.name]
            out += [self._put(node, now) for node in listed.values()]
            self._timers = [t for t in self._timers if t[1] in self._entries]
            heapq.heapify(self._timers)
        return out

    def flips_due(self, now: int) -> list[Delta]:
        """Nodes whose check-in went stale by ``now`` with no event to say so."""
        out: list[Delta] = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                until, name = heapq.heappop(self._timers)
                entry = self._entries.get(name)
                if entry is None or not entry.fresh or entry.fresh_until != until:
                    continue  # gone, already stale, or checked in again since
                self._entries[name] = _Entry(entry.state, entry.key, until, False)
                out.append(Delta(name, entry.state, entry.state, True))
        return out

    def next_flip(self) -> int | None:
        """The unix second of the next timer (it may turn out to be stale)."""
        with self._lock:
            return self._timers[0][0] if self._timers else None

    def get(self, name: str) -> NodeState | None:
        """The latest state of one node."""
        with self._lock:
            entry = self._entries.get(name)
        return entry.state if entry is not None else None

    def nodes(self) -> list[NodeState]:
        """Every node's latest state."""
        with self._lock:
            return [e.state for e in self._entries.values()]
