"""The node agent: detects addresses, lifts the uninitialized taint, keeps owned routes.

One pass reads the agent's own Node, looks up the routes to the address targets in the
kernel, converges the routes published in ``topoctl.io/agent`` (touching only routes
that carry topoctl's protocol), and writes the Node's status, taint and condition only
when they change - each write guarded by the resourceVersion it was computed from.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from reconciler.adapters.netlink import NetlinkAdapter, NetlinkAdapterError
from reconciler.core import nodeagent as logic
from reconciler.core.routes import ApplyResult, DuplicateRouteKeyError, RouteDiff, diff_routes
from reconciler.ports import ConflictError, NodeObject

log = logging.getLogger("topoctl.agent")
MAX_CONFLICT_RETRIES = 5


class Backend(Protocol):
    """The agent reads and writes its own Node object through one backend."""

    def read_node_object(self, name: str) -> NodeObject:
        """The node object; raises NotFoundError."""
        ...

    def patch_node(self, name: str, patch: Mapping[str, Any]) -> NodeObject:
        """A resourceVersion-guarded merge patch; raises ConflictError."""
        ...

    def patch_node_status(self, name: str, patch: Mapping[str, Any]) -> NodeObject:
        """A resourceVersion-guarded merge patch of the status; raises ConflictError."""
        ...

    def commit(self) -> None:
        """Make the writes durable."""
        ...


@dataclass
class PassReport:
    """What one pass saw and did."""

    condition: logic.Condition
    external_ip: str | None = None
    internal_ip: str | None = None
    route_writes: int = 0
    node_writes: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        """True when the node is as published and nothing failed."""
        return self.condition.status == "True"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Agent:
    """Converges one node; call :meth:`run_once` per pass."""

    def __init__(
        self,
        node: str,
        backend: Backend,
        netlink: NetlinkAdapter,
        clock: Callable[[], str] = _now,
    ) -> None:
        self.node = node
        self.backend = backend
        self.netlink = netlink
        self.clock = clock
        self.last_version: str | None = None

    def run_once(self) -> PassReport:
        """One full pass; the backend's writes are made durable at its end."""
        report = self._pass()
        self.backend.commit()
        return report

    def _pass(self) -> PassReport:
        obj = self.backend.read_node_object(self.node)
        annotations: Mapping[str, str] = (obj.get("metadata") or {}).get("annotations") or {}
        try:
            settings = logic.parse_settings(annotations)
        except logic.SettingsError as err:
            report = PassReport(logic.judge(None, [str(err)], [], None, 0))
            obj = self._write_status(obj, None, report)
            self.last_version = (obj.get("metadata") or {}).get("resourceVersion")
            return report
        problems: list[str] = []
        external = self._detect(settings.external_ip_target, "ExternalIP", problems)
        internal = self._detect(settings.internal_ip_target, "InternalIP", problems)
        route_errors: list[str] = []
        unusable: list[str] = []
        diff, result, in_place = self._routes(settings, unusable, route_errors)
        if unusable:  # the published routes themselves: reported as invalid routes
            settings = replace(settings, invalid_routes=(*settings.invalid_routes, *unusable))
        report = PassReport(
            logic.judge(
                settings,
                problems,
                diff.conflicts if diff else (),
                result,
                in_place,
                route_errors=route_errors,
            ),
            external_ip=external,
            internal_ip=internal,
            route_writes=result.messages_sent if result else 0,
        )
        obj = self._write_status(obj, (external, internal), report)
        if settings.remove_uninitialized_taint and logic.addresses_ready(
            settings, external, internal
        ):
            obj = self._remove_taint(obj, report)
        self.last_version = (obj.get("metadata") or {}).get("resourceVersion")
        return report

    # --- detection and routes ---

    def _detect(self, target: str | None, kind: str, problems: list[str]) -> str | None:
        if target is None:
            return None
        try:
            found = self.netlink.source_address(target)
        except (NetlinkAdapterError, ValueError) as err:
            problems.append(f"{kind}: route lookup to {target} failed: {err}")
            return None
        if found is None:
            problems.append(f"{kind}: no route to {target}, so no source address to use")
        return found

    def _routes(
        self, settings: logic.AgentSettings, unusable: list[str], errors: list[str]
    ) -> tuple[RouteDiff | None, ApplyResult | None, int]:
        try:
            snapshot = self.netlink.snapshot(settings.protocol)
            diff = diff_routes(settings.routes, snapshot.owned, snapshot.foreign_keys)
        except (DuplicateRouteKeyError, ValueError) as err:  # two share a slot; a reserved protocol
            unusable.append(str(err))
            return None, None, 0
        except NetlinkAdapterError as err:
            errors.append(f"routes: {err}")
            return None, None, 0
        result = self.netlink.apply(diff)
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
        return diff, result, len(settings.routes) - not_in_place

    # --- Node writes, each resourceVersion-guarded, retried on 409 ---

    def _write_status(
        self, obj: NodeObject, detected: tuple[str | None, str | None] | None, report: PassReport
    ) -> NodeObject:
        for _ in range(MAX_CONFLICT_RETRIES):
            status = obj.get("status") or {}
            patch: dict[str, Any] = {}
            if detected is not None:
                addresses = logic.merge_addresses(status.get("addresses") or [], *detected)
                if addresses != [dict(a) for a in status.get("addresses") or []]:
                    patch["addresses"] = addresses
            conditions = logic.merge_condition(
                status.get("conditions") or [], report.condition, self.clock()
            )
            if conditions is not None:
                patch["conditions"] = conditions
            if not patch:
                return obj
            version = (obj.get("metadata") or {}).get("resourceVersion")
            try:
                obj = self.backend.patch_node_status(
                    self.node, {"metadata": {"resourceVersion": version}, "status": patch}
                )
                report.node_writes.append("status: " + ", ".join(sorted(patch)))
                log.info("status written: %s", ", ".join(sorted(patch)))
                return obj
            except ConflictError:
                obj = self.backend.read_node_object(self.node)
        raise ConflictError(f"node {self.node}: status still conflicting after retries")

    def _remove_taint(self, obj: NodeObject, report: PassReport) -> NodeObject:
        for _ in range(MAX_CONFLICT_RETRIES):
            taints = logic.without_uninitialized((obj.get("spec") or {}).get("taints") or [])
            if taints is None:
                return obj
            version = (obj.get("metadata") or {}).get("resourceVersion")
            try:
                obj = self.backend.patch_node(
                    self.node,
                    {"metadata": {"resourceVersion": version}, "spec": {"taints": taints}},
                )
                report.node_writes.append("taint: uninitialized removed")
                log.info("removed taint %s", "node.cloudprovider.kubernetes.io/uninitialized")
                return obj
            except ConflictError:
                obj = self.backend.read_node_object(self.node)
        raise ConflictError(f"node {self.node}: taint still conflicting after retries")


def run_forever(
    agent: Agent,
    interval: float,
    stop: threading.Event,
    wait_for_change: Callable[[float], None] | None = None,
) -> None:
    """Pass after pass until ``stop`` is set: woken by a watch event, or every interval."""
    while not stop.is_set():
        try:
            report = agent.run_once()
            log.info(
                "pass: %s (%s) %s",
                report.condition.status,
                report.condition.reason,
                report.condition.message,
            )
        except Exception:  # a pass must never kill the agent
            log.exception("pass failed; retrying after the interval")
        if wait_for_change is not None:
            wait_for_change(interval)
        else:
            stop.wait(interval)
