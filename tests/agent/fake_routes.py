"""An in-memory RouteTable with the netlink adapter's semantics, for tests without root.

Like the kernel as the adapter drives it: every route sits in a slot (table,
destination, metric) and carries a protocol number; ``snapshot`` splits ours from
everyone else's; ``apply`` checks the protocols before writing anything, writes the
replaces before the deletes, fails a route whose device is missing (ENODEV) without
sending it, refuses an exclusive create on a slot someone filled since the read
(EEXIST) and counts a delete that finds nothing as done. ``source_address`` answers
from a table of targets, as ``ip route get`` would.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from dataclasses import dataclass, field

from reconciler.core.agent.routes import (
    KernelRoute,
    RouteApplyResult,
    RouteDiff,
    RouteFailure,
    RouteKey,
    RouteSnapshot,
    check_own_protocol,
)
from reconciler.ports import RouteTableError


@dataclass
class FakeRouteTable:
    """One node's routes and devices; tests arrange them and read them back."""

    devices: set[str] = field(default_factory=lambda: {"lo", "eth0", "eth1", "cilium_tunl"})
    sources: dict[str, str] = field(default_factory=dict)  # target -> preferred source
    refuse: dict[RouteKey, int] = field(default_factory=dict)  # slot -> errno on write
    broken: str | None = None  # every read and lookup fails with this reason
    slots: dict[RouteKey, list[KernelRoute]] = field(default_factory=dict)
    messages_sent: int = 0
    reads: int = 0

    # --- arranging and reading back ---

    def add(self, *routes: KernelRoute) -> FakeRouteTable:
        """Put routes in place, as another program (or ``ip route append``) would."""
        for route in routes:
            self.slots.setdefault(route.key, []).append(route)
        return self

    def routes(self, protocol: int | None = None) -> set[KernelRoute]:
        """Every route held, or those carrying ``protocol``."""
        return {r for held in self.slots.values() for r in held if protocol in (None, r.protocol)}

    # --- the port ---

    def snapshot(self, protocol: int) -> RouteSnapshot:
        """Our routes and every other route's slot, all tables."""
        check_own_protocol(protocol)
        self._check()
        self.reads += 1
        owned: list[KernelRoute] = []
        foreign: dict[RouteKey, int] = {}
        for key, held in self.slots.items():
            for route in held:
                if route.protocol == protocol:
                    owned.append(route)
                else:
                    foreign.setdefault(key, route.protocol)
        return RouteSnapshot(owned=tuple(owned), foreign_keys=foreign)

    def apply(self, diff: RouteDiff) -> RouteApplyResult:
        """Replaces, then deletes; failures per route, as the adapter reports them."""
        if not diff.writes:
            return RouteApplyResult()
        for protocol in {r.protocol for r in (*diff.replace, *diff.delete)}:
            check_own_protocol(protocol)
        replaced: list[KernelRoute] = []
        deleted: list[KernelRoute] = []
        failed: list[RouteFailure] = []
        sent = 0
        for route in diff.replace:
            if route.dev is not None and route.dev not in self.devices:
                failed.append(
                    RouteFailure(route, "replace", f"device {route.dev} not found", errno.ENODEV)
                )
                continue
            sent += 1
            code = self._replace(route, exclusive=route.key in diff.vacant_slots)
            if code is None:
                replaced.append(route)
            else:
                failed.append(RouteFailure(route, "replace", _reason(code), code))
        for route in diff.delete:
            sent += 1
            code = self.refuse.get(route.key)
            if code is None:
                self._delete(route)
                deleted.append(route)  # found or not: the route is gone (ESRCH counts as done)
            else:
                failed.append(RouteFailure(route, "delete", _reason(code), code))
        self.messages_sent += sent
        return RouteApplyResult(tuple(replaced), tuple(deleted), tuple(failed), sent)

    def source_address(self, target: str) -> str | None:
        """The source address of the route to ``target``; None when there is no route."""
        ipaddress.ip_address(target)  # ValueError for a name, as the adapter raises
        self._check()
        return self.sources.get(target)

    # --- the kernel's side ---

    def _check(self) -> None:
        if self.broken is not None:
            raise RouteTableError(self.broken)

    def _replace(self, route: KernelRoute, *, exclusive: bool) -> int | None:
        code = self.refuse.get(route.key)
        if code is not None:
            return code
        held = self.slots.setdefault(route.key, [])
        if held and exclusive:
            return errno.EEXIST  # someone filled the slot since the read
        if held:
            held[0] = route  # NLM_F_REPLACE takes the first route of the slot
        else:
            held.append(route)
        return None

    def _delete(self, route: KernelRoute) -> None:
        held = self.slots.get(route.key, [])
        for i, current in enumerate(held):
            if route.satisfied_by(current):
                del held[i]
                break
        if not held:
            self.slots.pop(route.key, None)


def _reason(code: int) -> str:
    return f"refused by the kernel: {os.strerror(code)}"
