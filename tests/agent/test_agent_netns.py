"""The node agent against the real kernel, in throw-away namespaces (see conftest.py).

The end-to-end cases run the real `topoctl agent --once --netns NS --cluster FILE` in
a subprocess; the finer ones drive `Agent` directly, with a snapshot file as the
cluster, and count netlink write messages on the adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.adapters.kernelroutes import KernelRouteTable
from reconciler.adapters.netlink import NetlinkAdapter
from reconciler.adapters.snapshot import SnapshotBackend
from reconciler.core.agent.routes import KernelRoute
from reconciler.model import keys
from reconciler.usecases.agent_pass import Agent, PassReport
from tests.agent.conftest import (
    EXTERNAL_TARGET,
    GPU_TAINT,
    INTERNAL_TARGET,
    KUBELET_INTERNAL_IP,
    NODE,
    NODE_EXTERNAL_IP,
    NODE_INTERNAL_IP,
    OURS,
    PRIVATE_GATEWAY,
    UNINITIALIZED_TAINT,
    MakeNetwork,
    NodeNetwork,
    RouteMonitor,
    add_cilium_tunl,
    agent_annotation,
    agent_condition,
    fixed_clock,
    foreign_routes,
    node_object,
    owned_routes,
    read_node,
    route_entry,
    run_cli,
    write_snapshot,
)
from tests.conftest import needs_root

pytestmark = needs_root

MAIN = 254
KILO_STATIC = keys.KILO_ROUTE_PROTOCOL
KERNEL = 2

# Published routes, and how the kernel holds them once written (with the device it chose).
TUNNEL = route_entry("172.31.0.0/16", via="10.10.0.2", dev="cilium_tunl", onlink=True, metric=100)
PRIVATE = route_entry("10.77.0.0/24", via=PRIVATE_GATEWAY, table=100)
ON_LINK = route_entry("10.88.0.0/24", dev="eth1")
IPV6 = route_entry("2001:db8:77::/64", via="2001:db8::1")
PUBLISHED = [TUNNEL, PRIVATE, ON_LINK, IPV6]


def held(protocol: int = OURS) -> dict[str, KernelRoute]:
    """The published routes as the kernel lists them, by destination."""
    return {
        "172.31.0.0/16": KernelRoute(
            "172.31.0.0/16", "10.10.0.2", "cilium_tunl", MAIN, 100, True, protocol
        ),
        "10.77.0.0/24": KernelRoute(
            "10.77.0.0/24", PRIVATE_GATEWAY, "eth1", 100, 0, False, protocol
        ),
        "10.88.0.0/24": KernelRoute("10.88.0.0/24", None, "eth1", MAIN, 0, False, protocol),
        "2001:db8:77::/64": KernelRoute(
            "2001:db8:77::/64", "2001:db8::1", "eth0", MAIN, 1024, False, protocol
        ),
    }


@dataclass(frozen=True)
class Pass:
    """What one direct `Agent.run_once` did."""

    report: PassReport
    netlink_writes: int


def agent_pass(network: NodeNetwork, snapshot: Path) -> Pass:
    """One pass of a freshly started agent (new sockets, new backend): a restart each time."""
    backend = SnapshotBackend(snapshot, writable=True)
    with NetlinkAdapter(network.name) as netlink:
        report = Agent(
            NODE, backend, backend, KernelRouteTable(netlink), clock=fixed_clock
        ).run_once()
        writes = netlink.write_messages
    backend.commit()
    return Pass(report, writes)


def cluster_with(tmp_path: Path, annotation: str | None, **node: Any) -> Path:
    return write_snapshot(tmp_path / "nodes.yaml", node_object(NODE, annotation, **node))


def republish(snapshot: Path, annotation: str) -> None:
    """What `topoctl apply` does when the topology changes: a new agent annotation."""
    document = yaml.safe_load(snapshot.read_text(encoding="utf-8"))
    for item in document["items"]:
        if item["metadata"]["name"] == NODE:
            item["metadata"]["annotations"][keys.TOPOCTL_AGENT] = annotation
    snapshot.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def cli_agent(network: NodeNetwork, snapshot: Path) -> tuple[int, str]:
    done = run_cli(
        "agent", "--node", NODE, "--netns", network.name, "--once", "--cluster", str(snapshot)
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout + done.stderr


def addresses(node: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(a["type"], a["address"]) for a in node["status"]["addresses"]]


def taint_keys(node: Mapping[str, Any]) -> list[str]:
    return [t["key"] for t in node["spec"].get("taints") or []]


# --- end to end: the real CLI ---------------------------------------------------------------


def test_cli_sets_the_external_ip_and_lifts_the_taint(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    snapshot = cluster_with(tmp_path, agent_annotation(), taints=(GPU_TAINT, UNINITIALIZED_TAINT))

    code, output = cli_agent(node_network, snapshot)

    assert code == 0, output
    assert f"{NODE}: TopologyReady=True (Converged): 0 route(s) in place" in output
    node = read_node(snapshot)
    assert addresses(node) == [
        ("InternalIP", KUBELET_INTERNAL_IP),
        ("Hostname", NODE),
        ("ExternalIP", NODE_EXTERNAL_IP),
    ]
    assert taint_keys(node) == [GPU_TAINT["key"]]
    condition = agent_condition(node)
    assert (condition["status"], condition["reason"]) == ("True", "Converged")


def test_cli_sets_the_internal_ip_from_the_route_to_the_internal_target(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    snapshot = cluster_with(tmp_path, agent_annotation(internal_target=INTERNAL_TARGET))

    code, output = cli_agent(node_network, snapshot)

    assert code == 0, output
    node = read_node(snapshot)
    assert addresses(node) == [
        ("InternalIP", NODE_INTERNAL_IP),
        ("Hostname", NODE),
        ("ExternalIP", NODE_EXTERNAL_IP),
    ]
    assert taint_keys(node) == []


def test_cli_with_an_unreachable_target_reports_and_keeps_the_taint(
    make_node_network: MakeNetwork, tmp_path: Path
) -> None:
    network = make_node_network(default_route=False)
    snapshot = cluster_with(tmp_path, agent_annotation())
    before = read_node(snapshot)

    code, output = cli_agent(network, snapshot)

    assert code == 1, output
    message = f"ExternalIP: no route to {EXTERNAL_TARGET}, so no source address to use"
    assert f"TopologyReady=False (AddressDetectionFailed): {message}" in output
    node = read_node(snapshot)
    assert node["status"]["addresses"] == before["status"]["addresses"]
    assert node["spec"]["taints"] == [UNINITIALIZED_TAINT]
    condition = agent_condition(node)
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "AddressDetectionFailed",
        message,
    )


def test_cli_writes_the_routes_and_a_restarted_agent_writes_nothing(
    node_network: NodeNetwork,
    tmp_path: Path,
    route_monitor: Callable[[str], RouteMonitor],
) -> None:
    snapshot = cluster_with(tmp_path, agent_annotation(routes=PUBLISHED))

    code, output = cli_agent(node_network, snapshot)

    assert code == 0, output
    assert f"{len(PUBLISHED)} route write(s)" in output
    assert owned_routes(node_network.name) == set(held().values())

    file_before = snapshot.read_bytes()
    foreign_before = foreign_routes(node_network.name)
    monitor = route_monitor(node_network.name)
    code, output = cli_agent(node_network, snapshot)
    events = monitor.stop()

    assert code == 0, output
    assert output.strip() == f"{NODE}: TopologyReady=True (Converged): 4 route(s) in place"
    assert events == [], "a converged pass must not write a single route"
    assert snapshot.read_bytes() == file_before
    assert owned_routes(node_network.name) == set(held().values())
    assert foreign_routes(node_network.name) == foreign_before


def test_cli_exit_code_is_1_while_a_device_is_missing_and_0_once_it_is_there(
    make_node_network: MakeNetwork, tmp_path: Path
) -> None:
    network = make_node_network(cilium_tunl=False)
    snapshot = cluster_with(tmp_path, agent_annotation(routes=PUBLISHED))

    code, output = cli_agent(network, snapshot)

    assert code == 1, output
    assert "TopologyReady=False (DeviceMissing)" in output
    assert "device cilium_tunl not found" in output
    expected = held()
    del expected["172.31.0.0/16"]
    assert owned_routes(network.name) == set(expected.values())

    add_cilium_tunl(network.name)
    code, output = cli_agent(network, snapshot)

    assert code == 0, output
    assert "1 route write(s)" in output
    assert owned_routes(network.name) == set(held().values())


# --- addresses, through Agent -----------------------------------------------------------------


def test_an_unreachable_internal_target_keeps_the_taint_but_sets_the_external_ip(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    node_network.ip("route", "add", "unreachable", "10.250.0.0/16")
    snapshot = cluster_with(tmp_path, agent_annotation(internal_target="10.250.0.1"))

    outcome = agent_pass(node_network, snapshot)

    assert outcome.report.external_ip == NODE_EXTERNAL_IP
    assert outcome.report.internal_ip is None
    assert (outcome.report.condition.status, outcome.report.condition.reason) == (
        "False",
        "AddressDetectionFailed",
    )
    assert "InternalIP: no route to 10.250.0.1" in outcome.report.condition.message
    node = read_node(snapshot)
    assert ("ExternalIP", NODE_EXTERNAL_IP) in addresses(node)
    assert ("InternalIP", KUBELET_INTERNAL_IP) in addresses(node)
    assert taint_keys(node) == [keys.TAINT_UNINITIALIZED]


def test_a_target_that_is_not_an_address_is_reported_and_routes_still_converge(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    snapshot = cluster_with(
        tmp_path, agent_annotation(external_target="dns.google", routes=[ON_LINK])
    )

    outcome = agent_pass(node_network, snapshot)

    condition = outcome.report.condition
    assert (condition.status, condition.reason) == ("False", "AddressDetectionFailed")
    assert "ExternalIP: route lookup to dns.google failed" in condition.message
    assert owned_routes(node_network.name) == {held()["10.88.0.0/24"]}
    assert taint_keys(read_node(snapshot)) == [keys.TAINT_UNINITIALIZED]


# --- routes, through Agent ----------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [OURS, 200], ids=["protocol 193", "custom protocol 200"])
def test_declared_routes_carry_the_protocol_in_their_tables(
    node_network: NodeNetwork, tmp_path: Path, protocol: int
) -> None:
    snapshot = cluster_with(tmp_path, agent_annotation(routes=PUBLISHED, protocol=protocol))

    outcome = agent_pass(node_network, snapshot)

    assert outcome.report.converged, outcome.report.condition
    assert outcome.netlink_writes == len(PUBLISHED)
    assert owned_routes(node_network.name, protocol) == set(held(protocol).values())
    assert {r.table for r in owned_routes(node_network.name, protocol)} == {MAIN, 100}
    other = OURS if protocol != OURS else 200
    assert owned_routes(node_network.name, other) == set()


def test_foreign_routes_are_never_touched_even_on_a_shared_slot(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    # Kilo's route on the tunnel slot, and the kernel's connected route of eth1 (metric 0).
    node_network.ip(
        "route", "add", "172.31.0.0/16", "via", "10.10.0.9", "dev", "cilium_tunl",
        "onlink", "metric", "100", "proto", "static",
    )  # fmt: skip
    foreign_before = foreign_routes(node_network.name)
    on_kernel_slot = route_entry("198.51.100.0/24", dev="eth0")
    snapshot = cluster_with(tmp_path, agent_annotation(routes=[TUNNEL, on_kernel_slot, PRIVATE]))

    first = agent_pass(node_network, snapshot)

    condition = first.report.condition
    assert (condition.status, condition.reason) == ("False", "RouteConflict")
    assert (
        "route 172.31.0.0/16 via 10.10.0.2 dev cilium_tunl metric 100 onlink not written: "
        f"its slot is held by protocol {KILO_STATIC}"
    ) in condition.message
    assert (
        f"route 198.51.100.0/24 dev eth0 not written: its slot is held by protocol {KERNEL}"
    ) in condition.message
    assert foreign_routes(node_network.name) == foreign_before
    assert owned_routes(node_network.name) == {held()["10.77.0.0/24"]}
    assert first.netlink_writes == 1

    second = agent_pass(node_network, snapshot)

    assert second.netlink_writes == 0
    assert second.report.condition == first.report.condition
    assert second.report.node_writes == []
    assert foreign_routes(node_network.name) == foreign_before


def test_a_topology_change_removes_only_obsolete_owned_routes(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    node_network.ip("route", "add", "10.99.0.0/24", "via", PRIVATE_GATEWAY, "proto", "static")
    node_network.ip("route", "add", "10.98.0.0/24", "via", PRIVATE_GATEWAY, "proto", "200")
    node_network.ip("route", "add", "10.97.0.0/24", "via", PRIVATE_GATEWAY, "proto", str(OURS))
    snapshot = cluster_with(tmp_path, agent_annotation(routes=PUBLISHED))
    agent_pass(node_network, snapshot)
    foreign_before = foreign_routes(node_network.name)
    moved = route_entry("10.77.0.0/24", via="198.51.100.2", table=100)
    added = route_entry("10.66.0.0/24", via=PRIVATE_GATEWAY, table=100)
    republish(snapshot, agent_annotation(routes=[TUNNEL, moved, IPV6, added]))

    outcome = agent_pass(node_network, snapshot)

    assert outcome.report.converged, outcome.report.condition
    assert outcome.report.condition.message == "4 route(s) in place"
    # one replace (the moved gateway), one create, one delete (ON_LINK): nothing else
    assert outcome.netlink_writes == 3
    expected = held()
    assert owned_routes(node_network.name) == {
        expected["172.31.0.0/16"],
        expected["2001:db8:77::/64"],
        KernelRoute("10.77.0.0/24", "198.51.100.2", "eth1", 100, 0, False, OURS),
        KernelRoute("10.66.0.0/24", PRIVATE_GATEWAY, "eth1", 100, 0, False, OURS),
    }
    assert foreign_routes(node_network.name) == foreign_before


def test_routes_carrying_the_protocol_but_not_published_are_removed(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    node_network.ip("route", "add", "10.97.0.0/24", "via", PRIVATE_GATEWAY, "proto", str(OURS))
    snapshot = cluster_with(tmp_path, agent_annotation(routes=[ON_LINK]))

    outcome = agent_pass(node_network, snapshot)

    assert outcome.report.converged
    assert outcome.netlink_writes == 2
    assert owned_routes(node_network.name) == {held()["10.88.0.0/24"]}


def test_a_restarted_agent_sees_its_routes_as_its_own(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    snapshot = cluster_with(tmp_path, agent_annotation(routes=PUBLISHED))
    first = agent_pass(node_network, snapshot)
    assert first.netlink_writes == len(PUBLISHED)
    file_before = snapshot.read_bytes()

    again = agent_pass(node_network, snapshot)  # new sockets, new backend, nothing in memory

    assert again.netlink_writes == 0
    assert again.report.route_writes == 0
    assert again.report.node_writes == []
    assert again.report.condition == first.report.condition
    assert snapshot.read_bytes() == file_before


def test_a_missing_device_fails_only_its_route(
    make_node_network: MakeNetwork, tmp_path: Path
) -> None:
    network = make_node_network(cilium_tunl=False)
    snapshot = cluster_with(tmp_path, agent_annotation(routes=PUBLISHED))

    outcome = agent_pass(network, snapshot)

    condition = outcome.report.condition
    assert (condition.status, condition.reason) == ("False", "DeviceMissing")
    assert condition.message == (
        "replace 172.31.0.0/16 via 10.10.0.2 dev cilium_tunl metric 100 onlink: "
        "device cilium_tunl not found"
    )
    assert outcome.netlink_writes == len(PUBLISHED) - 1
    expected = held()
    del expected["172.31.0.0/16"]
    assert owned_routes(network.name) == set(expected.values())
    # the address work does not depend on the routes
    assert taint_keys(read_node(snapshot)) == []


def test_published_routes_sharing_a_slot_are_reported_as_invalid(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    # IPv6 metric 0 is stored as 1024: these two claim one kernel slot.
    twin = route_entry("2001:db8:77::/64", via="2001:db8::2", metric=1024)
    snapshot = cluster_with(tmp_path, agent_annotation(routes=[IPV6, twin, ON_LINK]))

    outcome = agent_pass(node_network, snapshot)

    condition = outcome.report.condition
    assert (condition.status, condition.reason) == ("False", "InvalidRoute")
    assert "share a slot" in condition.message
    assert outcome.netlink_writes == 0
    assert owned_routes(node_network.name) == set()
    # addresses were detected fine: the taint still goes
    assert outcome.report.external_ip == NODE_EXTERNAL_IP
    assert taint_keys(read_node(snapshot)) == []
