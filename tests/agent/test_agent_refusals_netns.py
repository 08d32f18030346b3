"""Hostile `topoctl.io/agent` annotations against the real kernel (see conftest.py).

Whoever can patch a Node can write its agent annotation. Each case here publishes what
the agent must never install - a default route, a route inside Kilo's WireGuard subnet,
one inside the node's pod CIDR, 12,000 routes in a 1 MB annotation - runs the real
`topoctl agent --once --netns NS` and reads the kernel back with iproute2: every
routing table exactly as before, the condition False with the refusal's reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.agent.conftest import (
    NODE,
    NODE_POD_CIDR,
    PRIVATE_GATEWAY,
    UPLINK_GATEWAY,
    NodeNetwork,
    agent_annotation,
    agent_condition,
    node_object,
    read_node,
    route_entry,
    run_cli,
    write_snapshot,
)
from tests.conftest import needs_root
from tests.kernel import route_entries

pytestmark = needs_root

GOOD = route_entry("10.77.0.0/24", via=PRIVATE_GATEWAY, table=100)


def kernel_tables(netns: str) -> list[str]:
    """Every route of every table, both families, as iproute2 prints it: for equality."""
    return sorted(json.dumps(entry, sort_keys=True) for entry in route_entries(netns))


def flood(count: int) -> list[dict[str, Any]]:
    """``count`` distinct host routes, each spelt out in full (about 90 bytes apiece)."""
    return [
        route_entry(f"172.20.{i // 256}.{i % 256}/32", via=UPLINK_GATEWAY, dev="eth0", onlink=True)
        for i in range(count)
    ]


def run_agent(
    network: NodeNetwork, snapshot: Path, *flags: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    done = run_cli(
        "agent", "--node", NODE, "--netns", network.name, "--once", "--cluster", str(snapshot),
        *flags, env=env,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout + done.stderr


HOSTILE = [
    pytest.param(
        [route_entry("0.0.0.0/0", via=UPLINK_GATEWAY, table=100), GOOD],
        "RouteRefused",
        "route 0.0.0.0/0 via 192.0.2.1 table 100",
        id="ipv4-default-route",
    ),
    pytest.param(
        [route_entry("::/0", via="2001:db8::1"), GOOD],
        "RouteRefused",
        "route ::/0 via 2001:db8::1",
        id="ipv6-default-route",
    ),
    pytest.param(
        [
            route_entry("0.0.0.0/1", via=UPLINK_GATEWAY),
            route_entry("128.0.0.0/1", via=UPLINK_GATEWAY),
        ],
        "RouteRefused",
        "route 0.0.0.0/1 via 192.0.2.1",
        id="default-route-in-two-halves",
    ),
    pytest.param(
        [route_entry("10.4.7.0/24", via=PRIVATE_GATEWAY), GOOD],
        "RouteRefused",
        "inside 10.4.0.0/16",
        id="inside-kilo-subnet",
    ),
    pytest.param(
        [route_entry(NODE_POD_CIDR, dev="eth1"), GOOD],
        "RouteRefused",
        f"inside {NODE_POD_CIDR}",
        id="the-node-pod-cidr",
    ),
    pytest.param(
        [route_entry("10.77.1.0/24", via=PRIVATE_GATEWAY, table=1107), GOOD],
        "RouteRefused",
        "table 1107",
        id="kilo-table",
    ),
    pytest.param(flood(12_000), "RouteLimitExceeded", "65536", id="12000-routes-in-1MB"),
]


@pytest.mark.parametrize(("routes", "reason", "named"), HOSTILE)
def test_a_hostile_annotation_changes_no_routing_table(
    node_network: NodeNetwork,
    tmp_path: Path,
    routes: list[dict[str, Any]],
    reason: str,
    named: str,
) -> None:
    annotation = agent_annotation(routes=routes)
    snapshot = write_snapshot(tmp_path / "nodes.yaml", node_object(NODE, annotation))
    before = kernel_tables(node_network.name)

    code, output = run_agent(node_network, snapshot)

    assert kernel_tables(node_network.name) == before
    assert code == 1, output
    condition = agent_condition(read_node(snapshot))
    assert (condition["status"], condition["reason"]) == ("False", reason), condition
    assert named in condition["message"], condition["message"]
    assert f"TopologyReady=False ({reason})" in output


def test_the_cluster_ranges_come_from_the_agent_flags_and_variables(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    services = route_entry("10.96.0.0/16", dev="eth1")
    pods = route_entry("10.244.9.0/24", via=PRIVATE_GATEWAY)  # another node's pod CIDR
    snapshot = write_snapshot(
        tmp_path / "nodes.yaml", node_object(NODE, agent_annotation(routes=[services, GOOD]))
    )
    before = kernel_tables(node_network.name)

    code, output = run_agent(node_network, snapshot, "--service-cidr", "10.96.0.0/16")
    assert code == 1, output
    assert "inside 10.96.0.0/16, the cluster's service CIDR (--service-cidr)" in output

    republish = node_object(NODE, agent_annotation(routes=[pods, GOOD]))
    write_snapshot(snapshot, republish)
    code, output = run_agent(
        node_network, snapshot, env={"TOPOCTL_POD_CIDR": "10.244.0.0/16,fd00:10:244::/56"}
    )
    assert code == 1, output
    assert "inside 10.244.0.0/16, the cluster's pod CIDR (--pod-cidr)" in output
    assert kernel_tables(node_network.name) == before

    code, output = run_agent(node_network, snapshot)  # without the flag: nothing protects it
    assert code == 0, output
    assert kernel_tables(node_network.name) != before


def test_routes_installed_before_stand_while_a_hostile_set_is_refused(
    node_network: NodeNetwork, tmp_path: Path
) -> None:
    snapshot = write_snapshot(
        tmp_path / "nodes.yaml", node_object(NODE, agent_annotation(routes=[GOOD]))
    )
    code, output = run_agent(node_network, snapshot)
    assert code == 0, output
    working = kernel_tables(node_network.name)
    hostile = agent_annotation(routes=[route_entry("0.0.0.0/0", via=UPLINK_GATEWAY, table=100)])
    write_snapshot(snapshot, node_object(NODE, hostile))

    code, output = run_agent(node_network, snapshot)

    assert code == 1, output
    assert "TopologyReady=False (RouteRefused): route 0.0.0.0/0 via 192.0.2.1 table 100" in output
    assert kernel_tables(node_network.name) == working, "the working route is not withdrawn"


def test_a_bad_range_flag_is_a_usage_error(node_network: NodeNetwork, tmp_path: Path) -> None:
    snapshot = write_snapshot(tmp_path / "nodes.yaml", node_object(NODE, agent_annotation()))
    code, output = run_agent(node_network, snapshot, "--pod-cidr", "10.244.0.1/16")
    assert code == 2, output
    assert "'10.244.0.1/16': 10.244.0.1/16 has host bits set (e.g. 10.244.0.0/16)" in output
