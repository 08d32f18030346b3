"""The agent's pass, the node agent's use case: detect addresses, lift the uninitialized
taint, keep the owned routes.

One pass reads the agent's own Node, looks up the routes to the address targets in the
kernel, converges the routes published in ``topoctl.io/agent`` (touching only routes
that carry topoctl's protocol), and writes the Node's status, taint and condition only
when they change - each write guarded by the resourceVersion it was computed from.

The annotation is not trusted further than the agent's own :class:`Boundary`: a set
with a route it must never install (a default route, one inside a protected range or
a reserved table), or more than the cap, is refused whole - no route write at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC

from reconciler.core.agent.addresses import addresses_ready, merge_addresses, without_uninitialized
from reconciler.core.agent.condition import Condition, judge, merge_condition, over_limit
from reconciler.core.agent.published import Published, parse_settings
from reconciler.core.agent.refusals import DEFAULT_BOUNDARY, Boundary, refusals
from reconciler.core.agent.routes import (
    DuplicateRouteKeyError,
    RouteApplyResult,
    RouteDiff,
    diff_routes,
)
from reconciler.model import keys
from reconciler.model.settings import SettingsFormatError, SettingsTooLargeError
from reconciler.model.state import NodeState, NodeWrite, StatusWrite
from reconciler.ports import (
    Clock,
    ClusterReader,
    ClusterWriter,
    ConflictError,
    RouteTable,
    RouteTableError,
)

log = logging.getLogger("topoctl.agent")
MAX_CONFLICT_RETRIES = 5


@dataclass
class PassReport:
    """What one pass saw and did."""

    condition: Condition
    external_ip: str | None = None
    internal_ip: str | None = None
    route_writes: int = 0
    node_writes: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        """True when the node is as published and nothing failed."""
        return self.condition.status == "True"


class Agent:
    """Converges one node; call :meth:`run_once` per pass."""

    def __init__(
        self,
        node: str,
        reader: ClusterReader,
        writer: ClusterWriter,
        routes: RouteTable,
        clock: Clock,
        boundary: Boundary = DEFAULT_BOUNDARY,
    ) -> None:
        self.node = node
        self.reader = reader
        self.writer = writer
        self.routes = routes
        self.clock = clock
        self.boundary = boundary
        self.last_version = ""  # the Node's resourceVersion after the last pass

    def run_once(self) -> PassReport:
        """One full pass; the writer's writes are made durable at its end."""
        report = self._pass()
        self.writer.commit()
        return report

    def _pass(self) -> PassReport:
        node = self.reader.get_node(self.node)
        try:
            published = parse_settings(node.annotations)
        except SettingsFormatError as err:
            too_large = isinstance(err, SettingsTooLargeError)
            if too_large:
                log.warning("settings refused: %s", err)
            condition = over_limit(str(err)) if too_large else judge(None, [str(err)], [], None, 0)
            report = PassReport(condition)
            self.last_version = self._write_status(node, None, report).resource_version
            return report
        settings = published.settings
        problems: list[str] = []
        external = self._detect(settings.external_ip_target, "ExternalIP", problems)
        internal = self._detect(settings.internal_ip_target, "InternalIP", problems)
        route_errors: list[str] = []
        unusable: list[str] = []
        refused = refusals(settings, self.boundary.ranges(node))
        if refused:  # refused whole: not one route write, what is installed stands
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            log.warning("published routes refused, none written: %s%s", refused[0], more)
            diff, result, in_place = None, None, 0
        else:
            diff, result, in_place = self._routes(published, unusable, route_errors)
        if unusable:  # the published routes themselves: reported as invalid routes
            published = Published(
                settings, published.routes, (*published.invalid_routes, *unusable)
            )
        report = PassReport(
            judge(
                published,
                problems,
                diff.conflicts if diff else (),
                result,
                in_place,
                route_errors=route_errors,
                refused=refused,
            ),
            external_ip=external,
            internal_ip=internal,
            route_writes=result.messages_sent if result else 0,
        )
        node = self._write_status(node, (external, internal), report)
        if settings.removes_uninitialized_taint and addresses_ready(settings, external, internal):
            node = self._remove_taint(node, report)
        self.last_version = node.resource_version
        return report

    # --- detection and routes ---

    def _detect(self, target: str | None, kind: str, problems: list[str]) -> str | None:
        if target is None:
            return None
        try:
            found = self.routes.source_address(target)
        except (RouteTableError, ValueError) as err:
            problems.append(f"{kind}: route lookup to {target} failed: {err}")
            return None
        if found is None:
            problems.append(f"{kind}: no route to {target}, so no source address to use")
        return found

    def _routes(
        self, published: Published, unusable: list[str], errors: list[str]
    ) -> tuple[RouteDiff | None, RouteApplyResult | None, int]:
        try:
            snapshot = self.routes.snapshot(published.protocol)
            diff = diff_routes(published.routes, snapshot.owned, snapshot.foreign_keys)
        except (DuplicateRouteKeyError, ValueError) as err:  # two share a slot; a reserved protocol
            unusable.append(str(err))
            return None, None, 0
        except RouteTableError as err:
            errors.append(f"routes: {err}")
            return None, None, 0
        result = self.routes.apply(diff)
        for conflict in diff.conflicts:
            log.warning(
                "route %s left alone: protocol %d holds its slot",
                conflict.route,
                conflict.holder_protocol,
            )
        for failure in result.failed:
            log.warning("route %s %s failed: %s", failure.action, failure.route, failure.reason)
        if result.messages_sent:
            log.info("routes: %d replaced, %d deleted", len(result.replaced), len(result.deleted))
        not_in_place = len(diff.conflicts) + sum(1 for f in result.failed if f.action == "replace")
        return diff, result, len(published.routes) - not_in_place

    # --- Node writes, each resourceVersion-guarded, retried on 409 ---

    def _write_status(
        self, node: NodeState, detected: tuple[str | None, str | None] | None, report: PassReport
    ) -> NodeState:
        for _ in range(MAX_CONFLICT_RETRIES):
            addresses = None
            if detected is not None:
                merged = merge_addresses(node.addresses, *detected)
                addresses = merged if merged != node.addresses else None
            now = self.clock.wall().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            conditions = merge_condition(node.conditions, report.condition, now)
            if addresses is None and conditions is None:
                return node
            write = StatusWrite(self.node, node.resource_version, addresses, conditions)
            try:
                node = self.writer.write_status(write)
            except ConflictError:
                node = self.reader.get_node(self.node)
                continue
            written = [
                name
                for name, value in (("addresses", addresses), ("conditions", conditions))
                if value is not None
            ]
            report.node_writes.append("status: " + ", ".join(written))
            log.info("status written: %s", ", ".join(written))
            return node
        raise ConflictError(f"node {self.node}: status still conflicting after retries")

    def _remove_taint(self, node: NodeState, report: PassReport) -> NodeState:
        for _ in range(MAX_CONFLICT_RETRIES):
            taints = without_uninitialized(node.taints)
            if taints is None:
                return node
            try:
                node = self.writer.write_node(
                    NodeWrite(self.node, node.resource_version, taints=taints)
                )
            except ConflictError:
                node = self.reader.get_node(self.node)
                continue
            report.node_writes.append("taint: uninitialized removed")
            log.info("removed taint %s", keys.TAINT_UNINITIALIZED)
            return node
        raise ConflictError(f"node {self.node}: taint still conflicting after retries")
