"""The agent's decisions, pass by pass, on the in-memory route table: no root needed.

The Node lives in a real snapshot file (the snapshot backend, as `topoctl agent
--cluster` uses it); the kernel is `FakeRouteTable`, which keeps the netlink
adapter's rules (ownership by protocol, foreign slots, missing devices). The same
behaviours against a real kernel are in test_agent_netns.py (root only).
"""

from __future__ import annotations

import errno
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.snapshot import SnapshotBackend
from reconciler.core.agent.routes import KernelRoute
from reconciler.model import keys
from reconciler.model.state import NodeWrite
from reconciler.usecases.agent_pass import Agent, PassReport
from tests.agent.conftest import (
    EXTERNAL_TARGET,
    FIXED_NOW,
    GPU_TAINT,
    INTERNAL_TARGET,
    KUBELET_INTERNAL_IP,
    NODE,
    NODE_EXTERNAL_IP,
    NODE_INTERNAL_IP,
    OURS,
    PRIVATE_GATEWAY,
    UNINITIALIZED_TAINT,
    FixedClock,
    agent_annotation,
    agent_condition,
    node_object,
    read_node,
    route_entry,
    write_snapshot,
)
from tests.agent.fake_routes import FakeRouteTable

KILO = 4  # static: Kilo's protocol, never ours
KERNEL = 2
TUNNEL = route_entry("172.31.0.0/16", via="10.10.0.2", dev="cilium_tunl", onlink=True)
PRIVATE = route_entry("10.77.0.0/24", via=PRIVATE_GATEWAY, table=100, metric=5)
IPV6 = route_entry("fd00:77::/64", dev="eth1")
PUBLISHED = [TUNNEL, PRIVATE, IPV6]


def as_route(entry: Mapping[str, Any], protocol: int = OURS) -> KernelRoute:
    """A published entry as the kernel holds it once written."""
    """(Foreign routes are made as the adapter makes them from kernel data: directly.)"""
    return KernelRoute.build(
        entry["to"],
        gateway=entry.get("via"),
        dev=entry.get("dev"),
        table=entry["table"],
        metric=entry["metric"],
        onlink=entry.get("onlink", False),
        protocol=protocol,
    )


class Node:
    """One node: its Node object in a snapshot file and its kernel in memory."""

    def __init__(self, path: Path, annotation: str | None, **node: Any) -> None:
        self.path = write_snapshot(path, node_object(NODE, annotation, **node))
        self.kernel = FakeRouteTable(
            sources={EXTERNAL_TARGET: NODE_EXTERNAL_IP, INTERNAL_TARGET: NODE_INTERNAL_IP}
        )
        self.clock = FixedClock(FIXED_NOW)

    @property
    def now(self) -> str:
        """The agent's wall time (RFC 3339); a test moves it between passes."""
        return self.clock.now

    @now.setter
    def now(self, value: str) -> None:
        self.clock.now = value

    def run(self) -> PassReport:
        """One pass of a freshly started agent; the file is written if anything changed."""
        backend = SnapshotBackend(self.path, writable=True)
        return Agent(NODE, backend, backend, self.kernel, clock=self.clock).run_once()

    def republish(self, annotation: str) -> None:
        """A new plan applied: the agent annotation changes on the Node."""
        backend = SnapshotBackend(self.path, writable=True)
        state = backend.get_node(NODE)
        backend.write_node(
            NodeWrite(NODE, state.resource_version, {keys.TOPOCTL_AGENT: annotation})
        )
        backend.commit()

    @property
    def object(self) -> dict[str, Any]:
        return read_node(self.path)

    def addresses(self) -> list[tuple[str, str]]:
        return [(a["type"], a["address"]) for a in self.object["status"]["addresses"]]

    def taints(self) -> list[dict[str, Any]]:
        return list(self.object["spec"].get("taints") or [])

    def condition(self) -> dict[str, Any]:
        return agent_condition(self.object)


def node(tmp_path: Path, annotation: str | None = None, **options: Any) -> Node:
    return Node(tmp_path / "nodes.yaml", annotation, **options)


# --- addresses and the taint -------------------------------------------------------------


def test_the_external_ip_is_set_and_then_the_taint_lifted(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(), taints=(GPU_TAINT, UNINITIALIZED_TAINT))

    report = n.run()

    assert report.converged, report.condition
    assert report.external_ip == NODE_EXTERNAL_IP
    assert n.addresses() == [
        ("InternalIP", KUBELET_INTERNAL_IP),
        ("Hostname", NODE),
        ("ExternalIP", NODE_EXTERNAL_IP),
    ]
    assert n.taints() == [GPU_TAINT]
    assert report.node_writes == ["status: addresses, conditions", "taint: uninitialized removed"]


def test_the_internal_ip_replaces_the_kubelet_one_of_its_family(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(internal_target=INTERNAL_TARGET))

    report = n.run()

    assert (report.external_ip, report.internal_ip) == (NODE_EXTERNAL_IP, NODE_INTERNAL_IP)
    assert n.addresses() == [
        ("InternalIP", NODE_INTERNAL_IP),
        ("Hostname", NODE),
        ("ExternalIP", NODE_EXTERNAL_IP),
    ]
    assert n.taints() == []


def test_no_route_to_a_target_keeps_the_taint_and_says_why(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(internal_target="10.250.0.1", routes=[TUNNEL]))

    report = n.run()

    assert (report.condition.status, report.condition.reason) == (
        "False",
        "AddressDetectionFailed",
    )
    assert "InternalIP: no route to 10.250.0.1" in report.condition.message
    assert ("ExternalIP", NODE_EXTERNAL_IP) in n.addresses()  # the other detection still counts
    assert n.taints() == [UNINITIALIZED_TAINT]
    assert n.kernel.routes(OURS) == {as_route(TUNNEL)}  # routes converge all the same


def test_a_target_that_is_not_an_address_is_reported(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(external_target="dns.google"))

    report = n.run()

    assert report.condition.reason == "AddressDetectionFailed"
    assert "ExternalIP: route lookup to dns.google failed" in report.condition.message
    assert n.taints() == [UNINITIALIZED_TAINT]


def test_the_taint_stays_when_the_topology_says_keep(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(taint="keep"))

    report = n.run()

    assert report.converged
    assert n.taints() == [UNINITIALIZED_TAINT]
    assert ("ExternalIP", NODE_EXTERNAL_IP) in n.addresses()


def test_no_detection_asked_lifts_the_taint_at_once(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(external_target=None))

    report = n.run()

    assert report.converged
    assert n.taints() == []
    assert n.addresses() == [("InternalIP", KUBELET_INTERNAL_IP), ("Hostname", NODE)]


# --- routes --------------------------------------------------------------------------------


def test_published_routes_are_written_with_our_protocol(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(routes=PUBLISHED))

    report = n.run()

    assert report.converged, report.condition
    assert report.condition.message == "3 route(s) in place"
    assert n.kernel.routes(OURS) == {as_route(e) for e in PUBLISHED}
    assert report.route_writes == 3


def test_a_custom_protocol_marks_the_routes(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(routes=PUBLISHED, protocol=200))
    earlier = KernelRoute("10.99.0.0/24", dev="eth0", protocol=OURS)  # 193 is someone else's now
    n.kernel.add(earlier)

    n.run()

    assert n.kernel.routes(200) == {as_route(e, 200) for e in PUBLISHED}
    assert n.kernel.routes(OURS) == {earlier}  # not ours under protocol 200: left alone


def test_foreign_routes_are_never_touched_even_on_a_shared_slot(tmp_path: Path) -> None:
    kilo = KernelRoute("172.31.0.0/16", "10.10.0.9", "eth0", protocol=KILO)
    connected = KernelRoute("198.51.100.0/24", dev="eth1", protocol=KERNEL)
    n = node(tmp_path, agent_annotation(routes=PUBLISHED))
    n.kernel.add(kilo, connected)

    report = n.run()

    assert (report.condition.status, report.condition.reason) == ("False", "RouteConflict")
    assert "its slot is held by protocol 4" in report.condition.message
    assert report.condition.message.startswith("route 172.31.0.0/16 via 10.10.0.2")
    assert n.kernel.routes(KILO) == {kilo}
    assert n.kernel.routes(KERNEL) == {connected}
    assert n.kernel.routes(OURS) == {as_route(PRIVATE), as_route(IPV6)}


def test_a_topology_change_removes_only_obsolete_owned_routes(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(routes=PUBLISHED))
    n.run()
    moved = route_entry("10.77.0.0/24", via="198.51.100.7", table=100, metric=5)
    added = route_entry("10.88.0.0/24", dev="eth0")
    n.republish(agent_annotation(routes=[TUNNEL, moved, added]))

    report = n.run()

    assert report.converged
    assert n.kernel.routes(OURS) == {as_route(TUNNEL), as_route(moved), as_route(added)}
    assert report.route_writes == 3  # moved replaced in its slot, added, IPv6 deleted


def test_owned_routes_nobody_published_are_removed(tmp_path: Path) -> None:
    stray = KernelRoute.build("10.99.0.0/24", dev="eth0", protocol=OURS)
    n = node(tmp_path, agent_annotation(routes=[TUNNEL]))
    n.kernel.add(stray)

    n.run()

    assert n.kernel.routes(OURS) == {as_route(TUNNEL)}


def test_a_missing_device_fails_only_its_route_until_it_appears(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(routes=PUBLISHED))
    n.kernel.devices.discard("cilium_tunl")

    report = n.run()

    assert (report.condition.status, report.condition.reason) == ("False", "DeviceMissing")
    assert "device cilium_tunl not found" in report.condition.message
    assert n.kernel.routes(OURS) == {as_route(PRIVATE), as_route(IPV6)}
    assert n.taints() == []  # addresses are in place: the taint does not wait for routes

    n.kernel.devices.add("cilium_tunl")
    n.now = "2030-01-01T00:01:00Z"
    report = n.run()

    assert report.converged
    assert n.kernel.routes(OURS) == {as_route(e) for e in PUBLISHED}
    condition = n.condition()
    assert (condition["status"], condition["lastTransitionTime"]) == ("True", n.now)


def test_a_write_the_kernel_refuses_is_reported_per_route(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(routes=[TUNNEL, PRIVATE]))
    n.kernel.refuse[as_route(PRIVATE).key] = errno.ENETUNREACH

    report = n.run()

    assert report.condition.reason == "RouteWriteFailed"
    assert "replace 10.77.0.0/24 via 198.51.100.1 table 100 metric 5" in report.condition.message
    assert n.kernel.routes(OURS) == {as_route(TUNNEL)}


def test_routes_the_kernel_will_not_list_are_a_failed_pass_condition(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(external_target=None, routes=[TUNNEL]))
    n.kernel.broken = "dump of routes failed: Operation not permitted"

    report = n.run()

    assert (report.condition.status, report.condition.reason) == ("False", "RouteWriteFailed")
    assert "routes: dump of routes failed" in n.condition()["message"]


def test_a_slot_filled_between_read_and_write_is_not_overwritten(tmp_path: Path) -> None:
    """A vacant slot is written as an exclusive create: a route added since the read wins."""
    n = node(tmp_path, agent_annotation(routes=[TUNNEL]))
    intruder = KernelRoute("172.31.0.0/16", "10.10.0.9", "eth0", protocol=KILO)
    snapshot = n.kernel.snapshot

    def read_then_someone_adds() -> Any:
        seen = snapshot(OURS)
        n.kernel.add(intruder)
        return seen

    n.kernel.snapshot = lambda protocol: read_then_someone_adds()  # type: ignore[method-assign]

    report = n.run()

    assert report.condition.reason == "RouteWriteFailed"
    assert n.kernel.routes() == {intruder}


# --- a converged pass, the condition ------------------------------------------------------


def test_a_converged_pass_writes_nothing_anywhere(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(internal_target=INTERNAL_TARGET, routes=PUBLISHED))
    n.run()
    before = n.path.read_bytes()
    sent = n.kernel.messages_sent
    n.now = "2030-01-01T00:10:00Z"  # a later pass: still no heartbeat write

    report = n.run()

    assert report.converged
    assert report.node_writes == []
    assert report.route_writes == 0
    assert n.kernel.messages_sent == sent
    assert n.path.read_bytes() == before


def test_the_condition_moves_its_transition_time_only_when_the_status_flips(
    tmp_path: Path,
) -> None:
    n = node(tmp_path, agent_annotation(routes=PUBLISHED))
    n.kernel.devices.discard("cilium_tunl")
    n.run()
    first = n.condition()
    assert (first["status"], first["lastTransitionTime"]) == ("False", FIXED_NOW)

    n.kernel.refuse[as_route(TUNNEL).key] = errno.ENETUNREACH
    n.kernel.devices.add("cilium_tunl")
    n.now = "2030-01-01T00:01:00Z"
    n.run()
    second = n.condition()
    assert (second["reason"], second["lastTransitionTime"]) == ("RouteWriteFailed", FIXED_NOW)
    assert second["lastHeartbeatTime"] == n.now

    del n.kernel.refuse[as_route(TUNNEL).key]
    n.now = "2030-01-01T00:02:00Z"
    n.run()
    third = n.condition()
    assert (third["status"], third["reason"]) == ("True", "Converged")
    assert third["lastTransitionTime"] == n.now
    assert [c["type"] for c in n.object["status"]["conditions"]] == ["Ready", keys.CONDITION_AGENT]


# --- bad settings -------------------------------------------------------------------------


def raw_settings(**payload: Any) -> str:
    base: dict[str, Any] = json.loads(agent_annotation(routes=[TUNNEL]))
    base.update(payload)
    return json.dumps(base)


BAD_SETTINGS: dict[str, tuple[str | None, Sequence[str]]] = {
    "no annotation yet": (None, ["no topoctl.io/agent annotation yet", "topoctl apply"]),
    "a newer format version": (
        raw_settings(v=2),
        ["format version 2; this agent reads version 1"],
    ),
    "no format version": (raw_settings(v=None), ["format version None"]),
    "not JSON": ("{truncated", ["is not valid agent settings"]),
    "a field of the wrong type": (
        raw_settings(protocol="static"),
        ["protocol: Input should be a valid integer"],
    ),
    "an unknown field": (raw_settings(gateway="x"), ["gateway: Extra inputs are not permitted"]),
}


@pytest.mark.parametrize(
    ("annotation", "says"), BAD_SETTINGS.values(), ids=list(BAD_SETTINGS.keys())
)
def test_unusable_settings_are_a_condition_and_change_nothing_else(
    tmp_path: Path, annotation: str | None, says: Sequence[str]
) -> None:
    n = node(tmp_path, annotation)
    n.kernel.add(KernelRoute.build("10.99.0.0/24", dev="eth0", protocol=OURS))  # left as it is
    before = n.object

    report = n.run()

    assert (report.condition.status, report.condition.reason) == ("False", "NoSettings")
    for fragment in says:
        assert fragment in n.condition()["message"]
    assert n.taints() == [UNINITIALIZED_TAINT]
    assert n.object["status"]["addresses"] == before["status"]["addresses"]
    assert n.kernel.reads == 0 and n.kernel.messages_sent == 0
    assert n.kernel.routes(OURS) == {KernelRoute.build("10.99.0.0/24", dev="eth0", protocol=OURS)}


def test_invalid_routes_are_named_and_the_valid_ones_still_written(tmp_path: Path) -> None:
    bad_prefix = route_entry("10.2.0.0/33", dev="eth0")
    no_way = {"to": "10.3.0.0/16", "table": 254, "metric": 0}
    n = node(tmp_path, agent_annotation(routes=[TUNNEL, bad_prefix, no_way]))

    report = n.run()

    assert report.condition.reason == "InvalidRoute"
    assert "10.2.0.0/33" in report.condition.message
    assert "needs a gateway, a device or both" in report.condition.message
    assert n.kernel.routes(OURS) == {as_route(TUNNEL)}


def test_routes_sharing_a_slot_are_all_refused(tmp_path: Path) -> None:
    twin = route_entry("172.31.0.0/16", dev="eth0")
    n = node(tmp_path, agent_annotation(routes=[TUNNEL, twin]))

    report = n.run()

    assert report.condition.reason == "InvalidRoute"
    assert "desired routes share a slot" in report.condition.message
    assert n.kernel.messages_sent == 0


def test_a_reserved_protocol_writes_no_route(tmp_path: Path) -> None:
    n = node(tmp_path, agent_annotation(routes=[TUNNEL], protocol=KILO))
    kilo = KernelRoute("10.5.0.0/16", dev="eth0", protocol=KILO)
    n.kernel.add(kilo)

    report = n.run()

    assert report.condition.reason == "RouteRefused"
    assert report.condition.message.startswith("protocol 4 is reserved for static (Kilo's")
    assert n.kernel.routes() == {kilo}
    assert n.kernel.reads == 0, "a refused set does not even read the routes"
    assert n.taints() == []  # addresses are fine: only the routes are refused
