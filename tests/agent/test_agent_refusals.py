"""What the agent refuses to install, on the in-memory route table: no root needed.

The annotation is whatever someone who may patch the Node wrote there. A set with one
route the agent must never install is refused whole: no write at all, what is
installed stands, the condition False with the refusal's reason and a message naming
the route and the range it would take. The same hostile sets against a real kernel are
in test_agent_refusals_netns.py (root only).
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.adapters.snapshot import SnapshotBackend
from reconciler.core.agent.refusals import DEFAULT_BOUNDARY, Boundary, refusals
from reconciler.core.agent.routes import KernelRoute
from reconciler.model import keys, routerules
from reconciler.model.routerules import ProtectedRange
from reconciler.model.settings import MAX_BYTES, MAX_ROUTES, AgentRoute, AgentSettings
from reconciler.model.state import NodeState
from reconciler.usecases.agent_pass import Agent, PassReport
from tests.agent.conftest import (
    EXTERNAL_TARGET,
    NODE,
    NODE_EXTERNAL_IP,
    NODE_POD_CIDR,
    OURS,
    PRIVATE_GATEWAY,
    FixedClock,
    agent_annotation,
    agent_condition,
    node_object,
    read_node,
    route_entry,
    write_snapshot,
)
from tests.agent.fake_routes import FakeRouteTable

GOOD = route_entry("10.77.0.0/24", via=PRIVATE_GATEWAY, table=100)
INSTALLED = KernelRoute("10.66.0.0/24", PRIVATE_GATEWAY, "eth1", 100, 0, False, OURS)
KILO_ROUTE = KernelRoute("10.4.0.2/32", "10.10.0.9", "cilium_tunl", 254, 0, True, 4)
CLUSTER = Boundary(
    pod_cidrs=(ipaddress.ip_network("10.244.0.0/16"), ipaddress.ip_network("fd00:10:244::/56")),
    service_cidrs=(ipaddress.ip_network("10.96.0.0/16"),),
)


def run(
    tmp_path: Path,
    annotation: str,
    boundary: Boundary = DEFAULT_BOUNDARY,
    kernel: FakeRouteTable | None = None,
    **node: Any,
) -> tuple[PassReport, FakeRouteTable, dict[str, Any]]:
    """One pass; the kernel already holds one route of ours and one of Kilo's."""
    path = write_snapshot(tmp_path / "nodes.yaml", node_object(NODE, annotation, **node))
    kernel = kernel or FakeRouteTable(sources={EXTERNAL_TARGET: NODE_EXTERNAL_IP})
    if not kernel.slots:
        kernel.add(INSTALLED, KILO_ROUTE)
    backend = SnapshotBackend(path, writable=True)
    agent = Agent(NODE, backend, backend, kernel, FixedClock(), boundary)
    report = agent.run_once()
    return report, kernel, read_node(path)


def refused_whole(report: PassReport, kernel: FakeRouteTable, reason: str) -> None:
    """Nothing of the set written, nothing installed before withdrawn, the reason told."""
    assert (report.condition.status, report.condition.reason) == ("False", reason)
    assert kernel.messages_sent == 0
    assert report.route_writes == 0
    assert kernel.routes() == {INSTALLED, KILO_ROUTE}


HOSTILE = [
    pytest.param(
        route_entry("0.0.0.0/0", via="192.0.2.1"),
        "route 0.0.0.0/0 via 192.0.2.1 refused: a default route",
        id="ipv4-default",
    ),
    pytest.param(
        route_entry("::/0", via="2001:db8::1", table=100),
        "route ::/0 via 2001:db8::1 table 100 refused: a default route",
        id="ipv6-default",
    ),
    pytest.param(
        route_entry("128.0.0.0/1", via="192.0.2.1"),
        "route 128.0.0.0/1 via 192.0.2.1 refused: a default route (any destination wider "
        "than /8 is one, or part of one)",
        id="half-of-a-default",
    ),
    pytest.param(
        route_entry("10.4.0.0/16", dev="eth0"),
        "route 10.4.0.0/16 dev eth0 refused: inside 10.4.0.0/16, Kilo's WireGuard subnet "
        "(--kilo-subnet)",
        id="kilo-subnet-itself",
    ),
    pytest.param(
        route_entry("10.4.3.7/32", via=PRIVATE_GATEWAY, metric=5),
        "route 10.4.3.7/32 via 198.51.100.1 metric 5 refused: inside 10.4.0.0/16",
        id="a-host-inside-kilo-subnet",
    ),
    pytest.param(
        route_entry("10.244.5.128/25", dev="eth1"),
        f"route 10.244.5.128/25 dev eth1 refused: inside {NODE_POD_CIDR}, this node's pod "
        "CIDR (spec.podCIDRs)",
        id="inside-the-node-pod-cidr",
    ),
    pytest.param(
        route_entry("10.77.1.0/24", via=PRIVATE_GATEWAY, table=1107),
        "route 10.77.1.0/24 via 198.51.100.1 table 1107 refused: table 1107 is Kilo's "
        "return-route table",
        id="kilo-table",
    ),
    pytest.param(
        route_entry("10.77.1.0/24", dev="eth0", table=255),
        "route 10.77.1.0/24 dev eth0 table 255 refused: table 255 is the kernel's local table",
        id="local-table",
    ),
]


@pytest.mark.parametrize(("hostile", "message"), HOSTILE)
def test_a_set_with_one_forbidden_route_is_refused_whole(
    tmp_path: Path, hostile: dict[str, Any], message: str
) -> None:
    report, kernel, node = run(tmp_path, agent_annotation(routes=[GOOD, hostile]))

    refused_whole(report, kernel, "RouteRefused")
    assert report.condition.message.startswith(message), report.condition.message
    condition = agent_condition(node)
    assert (condition["status"], condition["reason"]) == ("False", "RouteRefused")
    assert condition["message"] == report.condition.message
    # the address work does not depend on the routes
    assert report.external_ip == NODE_EXTERNAL_IP


@pytest.mark.parametrize(
    ("to", "range_"),
    [
        ("10.244.200.0/24", "inside 10.244.0.0/16, the cluster's pod CIDR (--pod-cidr)"),
        ("fd00:10:244:7::/64", "inside fd00:10:244::/56, the cluster's pod CIDR"),
        ("10.96.0.10/32", "inside 10.96.0.0/16, the cluster's service CIDR (--service-cidr)"),
    ],
)
def test_the_cluster_ranges_from_the_agent_settings_are_refused(
    tmp_path: Path, to: str, range_: str
) -> None:
    report, kernel, _ = run(
        tmp_path, agent_annotation(routes=[GOOD, route_entry(to, dev="eth1")]), CLUSTER
    )

    refused_whole(report, kernel, "RouteRefused")
    assert f"route {to} dev eth1 refused: {range_}" in report.condition.message


def test_every_refusal_is_named_and_the_message_and_log_stay_readable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    routes = [route_entry(f"10.4.{i}.0/24", dev="eth0") for i in range(200)]
    report, kernel, _ = run(tmp_path, agent_annotation(routes=[*routes, GOOD]))

    refused_whole(report, kernel, "RouteRefused")
    assert report.condition.message.startswith("route 10.4.0.0/24 dev eth0 refused: inside")
    assert len(report.condition.message) <= 1024
    (record,) = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.getMessage().startswith("published routes refused, none written: route 10.4.0")
    assert record.getMessage().endswith("(and 199 more)")


def test_routes_that_only_cover_a_protected_range_are_installed(tmp_path: Path) -> None:
    wide = route_entry("10.0.0.0/8", via=PRIVATE_GATEWAY, table=100)  # around 10.4 and 10.244
    next_to = route_entry("10.5.0.0/16", dev="eth1")
    report, kernel, _ = run(tmp_path, agent_annotation(routes=[wide, next_to, GOOD]), CLUSTER)

    assert report.converged, report.condition
    assert report.condition.message == "3 route(s) in place"
    assert {r.dst for r in kernel.routes(OURS)} == {"10.0.0.0/8", "10.5.0.0/16", "10.77.0.0/24"}
    assert KILO_ROUTE in kernel.routes()


def test_once_the_set_is_acceptable_it_converges(tmp_path: Path) -> None:
    kernel = FakeRouteTable(sources={EXTERNAL_TARGET: NODE_EXTERNAL_IP})
    hostile = agent_annotation(routes=[GOOD, route_entry("0.0.0.0/0", via="192.0.2.1")])
    refused, _, _ = run(tmp_path, hostile, kernel=kernel)
    assert refused.condition.reason == "RouteRefused"

    fixed, _, node = run(tmp_path, agent_annotation(routes=[GOOD]), kernel=kernel)

    assert fixed.converged, fixed.condition
    assert kernel.routes(OURS) == {KernelRoute("10.77.0.0/24", PRIVATE_GATEWAY, None, 100)}
    assert agent_condition(node)["reason"] == "Converged"


def test_the_node_pod_cidrs_of_both_families_are_protected(tmp_path: Path) -> None:
    v6 = route_entry("fd00:10:244:5::/64", dev="eth1")
    report, kernel, _ = run(
        tmp_path,
        agent_annotation(routes=[v6]),
        pod_cidrs=("10.244.5.0/24", "fd00:10:244:5::/64"),
    )

    refused_whole(report, kernel, "RouteRefused")
    assert "inside fd00:10:244:5::/64, this node's pod CIDR" in report.condition.message


# --- the cap -----------------------------------------------------------------------------


def flood(count: int) -> list[dict[str, Any]]:
    return [route_entry(f"172.20.{i // 256}.{i % 256}/32", via="192.0.2.1") for i in range(count)]


def test_12000_routes_in_a_1MB_annotation_are_not_read(tmp_path: Path) -> None:
    annotation = agent_annotation(routes=flood(12_000)) + " " * 400_000  # 1 MB all told
    assert len(annotation) > 1_000_000

    report, kernel, node = run(tmp_path, annotation)

    refused_whole(report, kernel, "RouteLimitExceeded")
    assert report.condition.message == (
        f"{keys.TOPOCTL_AGENT} holds {len(annotation)} bytes, more than the {MAX_BYTES} a "
        "node's settings may: nothing of it is used"
    )
    assert agent_condition(node)["reason"] == "RouteLimitExceeded"
    assert report.node_writes == ["status: conditions"], "no address is taken from it either"


def test_more_routes_than_the_cap_in_few_bytes_are_not_read(tmp_path: Path) -> None:
    short = [{"to": f"172.20.{i // 256}.{i % 256}/32", "dev": "e"} for i in range(MAX_ROUTES + 1)]
    annotation = json.dumps({"v": 1, "routes": short}, separators=(",", ":"))
    assert len(annotation) <= MAX_BYTES

    report, kernel, _ = run(tmp_path, annotation)

    refused_whole(report, kernel, "RouteLimitExceeded")
    assert f"lists {MAX_ROUTES + 1} routes, more than the {MAX_ROUTES}" in report.condition.message


def test_exactly_the_cap_is_read(tmp_path: Path) -> None:
    routes = [route_entry(f"172.20.{i // 256}.{i % 256}/32", dev="eth0") for i in range(MAX_ROUTES)]
    annotation = agent_annotation(routes=routes)
    assert len(annotation) <= MAX_BYTES

    report, kernel, _ = run(tmp_path, annotation)
    assert report.converged, report.condition
    assert len(kernel.routes(OURS)) == MAX_ROUTES


# --- the annotation cannot widen what the agent protects ------------------------------------


def test_the_annotation_has_no_say_in_what_is_protected(tmp_path: Path) -> None:
    annotation = json.loads(agent_annotation(routes=[route_entry("10.4.1.0/24", dev="eth0")]))
    annotation["protectedRanges"] = []
    report, kernel, _ = run(tmp_path, json.dumps(annotation))

    assert report.condition.reason == "NoSettings"
    assert "protectedRanges" in report.condition.message
    assert kernel.messages_sent == 0


def test_the_decision_is_pure_and_names_each_refusal() -> None:
    settings = AgentSettings(
        protocol=4,
        routes=(AgentRoute(to="0.0.0.0/0", via="192.0.2.1"), AgentRoute(to="10.9.0.0/16", dev="x")),
    )
    protected = (ProtectedRange(ipaddress.ip_network("10.9.0.0/16"), "a test range"),)

    found = refusals(settings, protected)

    assert found == (
        "protocol 4 is reserved for static (Kilo's routes): pick a number of topoctl's own, "
        "e.g. 193: no route of this set is installed",
        "route 0.0.0.0/0 via 192.0.2.1 refused: a default route (any destination wider than "
        "/8 is one, or part of one): topoctl never routes the node's default traffic",
        "route 10.9.0.0/16 dev x refused: inside 10.9.0.0/16, a test range",
    )
    assert refusals(settings.model_copy(update={"protocol": OURS, "routes": ()}), protected) == ()


def test_the_boundary_lists_the_node_pod_cidr_when_podcidrs_is_absent() -> None:
    node = NodeState("n", pod_cidr="10.244.9.0/24")
    ranges = Boundary(kilo_subnets=()).ranges(node)
    assert ranges == (
        ProtectedRange(
            ipaddress.ip_network("10.244.9.0/24"), "this node's pod CIDR (spec.podCIDRs)"
        ),
    )
    assert routerules.never_routed(ipaddress.ip_network("10.244.9.0/24"), ranges) is not None
