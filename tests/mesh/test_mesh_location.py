"""Three locations meshed by Kilo, converged by topoctl from git, on real packets.

One mesh for the module (tests/mesh/harness.py), converged from git; Kilo's own agent
served by the API double.

fra has two gateways (fra-gw-1 pinned as leader) and an on-prem network behind them
(192.168.1.0/24, its host at .100): fra's non-leaders reach it through topoctl's
`via: leader` route, the other locations through Kilo (fra's allowedLocationIPs).

The allowedLocationIPs name the on-prem host (/32), not the gateways' connected /24: kg
installs routes to a location's allowedLocationIPs with a netlink replace at metric 0, and
while a gateway is briefly a segment of its own (kg starts before topoctl has annotated
every member of its location) that replace takes the place of the gateway's connected
route to the same prefix; once the location settles, kg deletes its route and the
connected one is gone for good (observed with kg 944dff57: the gateway then sends the
on-prem traffic to its default route).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mesh import topology
from tests.mesh.conftest import build
from tests.mesh.harness import Mesh
from tests.mesh.probe import wait_until

LOCATIONS = topology.layout(("fra", 2, 1), ("ams", 1, 1), ("par", 1, 1), onprem=["fra"])
ONPREM = "192.168.1.0/24"
ONPREM_HOST = "192.168.1.100"
ROUTES = {"fra": [{"to": ONPREM, "via": "leader", "on": "non-leaders", "metric": 100}]}
ALLOWED = {"fra": [f"{ONPREM_HOST}/32"]}
PROTOCOL = 193  # topoctl's rtnetlink protocol (the Cluster default)
CONVERGE = 90.0  # seconds: generous for a loaded CI machine; typical runs take a few


def files(fra_leader: str) -> dict[str, str]:
    return topology.files(
        LOCATIONS,
        leaders={"fra": [fra_leader]},
        routes=ROUTES,
        allowed_location_ips=ALLOWED,
    )


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    yield from build(LOCATIONS, files("fra-gw-1"))


def wan_endpoint(mesh: Mesh, node: str) -> str:
    wan = mesh.nodes[node].addr.wan
    assert wan is not None
    return f"{wan}:51820"


def peer_endpoints(mesh: Mesh, node: str) -> set[str]:
    state = mesh.nodes[node].wg()
    return {p.endpoint for p in state.peers if p.endpoint} if state else set()


def onprem_route(mesh: Mesh, node: str) -> str | None:
    """The gateway of topoctl's route to the on-prem network on `node`, if any."""
    for route in mesh.nodes[node].routes(ONPREM, "proto", str(PROTOCOL)):
        return str(route.get("gateway"))
    return None


def condition(mesh: Mesh, node: str, kind: str) -> str | None:
    obj = mesh.api.node(node) or {}
    for cond in obj.get("status", {}).get("conditions", []):
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def test_three_locations_converge_from_git(mesh: Mesh) -> None:
    mesh.wait_green(CONVERGE, same_location=True)
    assert mesh.kilo_leaders() == {"fra": ["fra-gw-1"], "ams": ["ams-gw-1"], "par": ["par-gw-1"]}
    for name, node in mesh.nodes.items():
        assert mesh.annotations(name)["kilo.squat.ai/location"] == node.spec.location
    # the leaders are WireGuard peers of each other, at their public endpoints
    assert peer_endpoints(mesh, "ams-gw-1") >= {
        wan_endpoint(mesh, "fra-gw-1"),
        wan_endpoint(mesh, "par-gw-1"),
    }
    # the agent ran in every namespace: the ExternalIP is the source address of the node's
    # own default route (a worker's is its InternalIP, which the agent does not repeat),
    # and the uninitialized taint is gone
    wait_until(
        lambda: all(condition(mesh, n, "TopologyReady") == "True" for n in mesh.nodes),
        CONVERGE,
        "every agent to report TopologyReady",
    )
    for name, node in mesh.nodes.items():
        obj = mesh.api.node(name) or {}
        external = [a["address"] for a in obj["status"]["addresses"] if a["type"] == "ExternalIP"]
        assert external == ([node.addr.wan] if node.addr.wan else [])
        assert not obj["spec"].get("taints")


def test_kg_is_served_what_it_asks(mesh: Mesh) -> None:
    """Kilo's agent against the API double: every request answered, the watch-lists it
    waits on, its CRD check and its strategic-merge patches."""
    asked = [r for r in mesh.api.log if r.headers.get("User-Agent", "").startswith("kg/")]
    failed = [(r.method, r.path, r.status) for r in asked if not 200 <= r.status < 300]
    assert asked and not failed
    kinds = {(r.verb, r.resource) for r in asked}
    assert kinds == {
        ("watch", "nodes"),
        ("watch", "peers"),
        ("get", "customresourcedefinitions"),
        ("patch", "nodes"),
    }
    for watch in (r for r in asked if r.verb == "watch"):
        assert watch.query.get("sendInitialEvents") == "true"
        assert watch.query.get("resourceVersionMatch") == "NotOlderThan"
        assert watch.query.get("allowWatchBookmarks") == "true"
    patches = {r.content_type for r in asked if r.verb == "patch"}
    assert patches == {"application/strategic-merge-patch+json"}
