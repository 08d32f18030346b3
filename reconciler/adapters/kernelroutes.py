"""The RouteTable port over the netlink adapter: the kernel's refusals become the port's."""

from __future__ import annotations

from reconciler.adapters.netlink import NetlinkAdapter, NetlinkAdapterError
from reconciler.core.agent.routes import RouteApplyResult, RouteDiff, RouteSnapshot
from reconciler.ports import RouteTableError


class KernelRouteTable:
    """A node's kernel routes, through one netlink adapter (owned by the caller)."""

    def __init__(self, netlink: NetlinkAdapter) -> None:
        self.netlink = netlink

    def snapshot(self, protocol: int) -> RouteSnapshot:
        """Our routes and the slots others hold, in every table."""
        try:
            return self.netlink.snapshot(protocol)
        except NetlinkAdapterError as err:
            raise RouteTableError(str(err)) from None

    def apply(self, diff: RouteDiff) -> RouteApplyResult:
        """Write the diff; per-route failures are in the result."""
        try:
            return self.netlink.apply(diff)
        except NetlinkAdapterError as err:
            raise RouteTableError(str(err)) from None

    def source_address(self, target: str) -> str | None:
        """The preferred source address of the route to ``target``."""
        try:
            return self.netlink.source_address(target)
        except NetlinkAdapterError as err:
            raise RouteTableError(str(err)) from None
