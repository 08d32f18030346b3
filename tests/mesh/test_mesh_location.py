"""Three locations meshed by Kilo, converged by topoctl from git, on real packets.

One mesh for the module (tests/mesh/harness.py); the tests run in order and each
leaves it converged for the next: convergence, `via: leader` routes, a leader moved by a
git push, a node joining, a node leaving, and every kg restarted.

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
from rich.console import Console

from tests.mesh import topology
from tests.mesh.conftest import build
from tests.mesh.harness import Mesh
from tests.mesh.live import Picture
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


def bearer(headers: dict[str, str]) -> bool:
    """Whether a request carried a bearer token (header names are case-insensitive)."""
    return any(k.lower() == "authorization" and v.startswith("Bearer ") for k, v in headers.items())


def condition(mesh: Mesh, node: str, kind: str) -> str | None:
    obj = mesh.api.node(node) or {}
    for cond in obj.get("status", {}).get("conditions", []):
        if cond.get("type") == kind:
            return str(cond.get("status"))
    return None


def test_three_locations_converge_from_git(mesh: Mesh) -> None:
    mesh.wait_green(CONVERGE, same_location=True)
    leaders = {"fra": ["fra-gw-1"], "ams": ["ams-gw-1"], "par": ["par-gw-1"]}
    wait_until(
        lambda: mesh.kilo_leaders() == leaders,
        CONVERGE,
        "Kilo's leaders to be the pinned or public gateways",
        detail=mesh.kilo_leaders,
    )
    for name, node in mesh.nodes.items():
        assert mesh.annotations(name)["kilo.squat.ai/location"] == node.spec.location
    # topoctl run and every agent used their own service accounts (deploy/base's RBAC and
    # admission policy, each agent's token bound to its Node): nothing was refused
    refused = [(r.method, r.path, r.status) for r in mesh.api.log if r.status in (401, 403)]
    assert not refused
    topoctl = [r for r in mesh.api.log if r.headers.get("User-Agent", "").startswith("OpenAPI")]
    assert topoctl and all(bearer(r.headers) for r in topoctl)
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


def test_the_live_picture_shows_sites_tunnels_and_matrix(mesh: Mesh) -> None:
    """What `make mesh` draws (tests/mesh/live.py), from this mesh."""
    console = Console(record=True, width=140, color_system=None)
    console.print(Picture(mesh).refresh())
    text = console.export_text()
    sites = text[text.index("sites") : text.index("WireGuard tunnels")]
    assert "│ fra  │ fra-gw-1, fra-gw-2, fra-w-1 │ fra-gw-1" in sites
    tunnels = text[text.index("WireGuard tunnels") : text.index("ping matrix")]
    assert f"ams-gw-1 ({wan_endpoint(mesh, 'ams-gw-1')})" in tunnels
    assert "never" not in tunnels  # every leader has shaken hands with every other
    pairs = len(mesh.nodes) * (len(mesh.nodes) - 1)
    assert f"ping matrix (from row to column): {pairs}/{pairs} pairs answer" in text
    assert "✗" not in text


def test_via_leader_routes_reach_the_onprem_network(mesh: Mesh) -> None:
    leader_lan = mesh.nodes["fra-gw-1"].addr.lan
    wait_until(
        lambda: onprem_route(mesh, "fra-w-1") == leader_lan,
        CONVERGE,
        "fra-w-1's route to the on-prem network via fra-gw-1",
    )
    assert onprem_route(mesh, "ams-w-1") is None  # other sites' nodes: Kilo routes it
    wait_until(
        lambda: mesh.reaches(["fra-w-1", "ams-w-1", "par-gw-1"], ONPREM_HOST),
        CONVERGE,
        "the on-prem host from fra's worker and the other locations",
    )


def test_a_git_push_moves_the_pinned_leader(mesh: Mesh) -> None:
    mesh.push(files("fra-gw-2"), "fra: lead from fra-gw-2")
    wait_until(
        lambda: mesh.kilo_leaders()["fra"] == ["fra-gw-2"],
        CONVERGE,
        "Kilo to move fra's leadership to fra-gw-2",
        detail=mesh.kilo_leaders,
    )
    new = wan_endpoint(mesh, "fra-gw-2")
    wait_until(
        lambda: new in peer_endpoints(mesh, "ams-gw-1"),
        CONVERGE,
        "ams's leader to peer with fra-gw-2",
    )
    assert new in peer_endpoints(mesh, "par-gw-1")
    assert wan_endpoint(mesh, "fra-gw-1") not in peer_endpoints(mesh, "ams-gw-1")
    mesh.wait_green(CONVERGE, same_location=True)
    # topoctl's via-leader route followed Kilo's new leader
    new_lan = mesh.nodes["fra-gw-2"].addr.lan
    wait_until(
        lambda: onprem_route(mesh, "fra-w-1") == new_lan,
        CONVERGE,
        "fra-w-1's on-prem route to move to fra-gw-2",
    )
    wait_until(
        lambda: mesh.reaches(["fra-w-1", "ams-w-1"], ONPREM_HOST),
        CONVERGE,
        "the on-prem host through the new leader",
    )


def test_a_node_joins_and_becomes_reachable(mesh: Mesh) -> None:
    joined = mesh.add_node(topology.worker("fra", 2))
    registered = next(
        e.obj for e in mesh.api.store.history("nodes") if e.key == ("", joined.name)
    )  # as the kubelet created it: no Kilo annotation at all
    assert not [k for k in registered["metadata"]["annotations"] if k.startswith("kilo.squat.ai/")]
    wait_until(
        lambda: mesh.annotations(joined.name).get("kilo.squat.ai/location") == "fra",
        CONVERGE,
        "topoctl to put the joining node in fra (its pool)",
    )
    mesh.wait_green(CONVERGE, same_location=True)
    # a joining worker leads a segment of its own until topoctl places it; then it does not
    wait_until(
        lambda: mesh.kilo_leaders()["fra"] == ["fra-gw-2"],
        CONVERGE,
        "the joining worker to leave the leading to fra-gw-2",
        detail=mesh.kilo_leaders,
    )
    wait_until(
        lambda: onprem_route(mesh, joined.name) == mesh.nodes["fra-gw-2"].addr.lan,
        CONVERGE,
        "the joining node's via-leader route",
    )


def test_removing_a_node(mesh: Mesh) -> None:
    gone = mesh.nodes["fra-w-2"]
    pod_cidr = gone.addr.pod_cidr
    mesh.remove_node(gone.name)
    assert mesh.api.node(gone.name) is None

    def forgotten() -> bool:
        state = mesh.nodes["ams-gw-1"].wg()
        return state is not None and all(pod_cidr not in p.allowed_ips for p in state.peers)

    wait_until(forgotten, CONVERGE, "ams's leader to stop routing the removed node's pods")
    mesh.wait_green(CONVERGE, same_location=True)


def test_every_kg_stopped_and_started_again(mesh: Mesh) -> None:
    """The harness's Kilo outage: every kg stops (SIGTERM, as a DaemonSet rollout), then
    starts again, and the mesh converges once more."""
    before = len(mesh.api.log)
    mesh.stop_kilo()
    assert not any(n.kg is not None and n.kg.running for n in mesh.nodes.values())
    # on SIGTERM kg removed what it had written, with a JSON patch the double served
    for name in mesh.nodes:
        assert "kilo.squat.ai/key" not in mesh.annotations(name)
    removals = [
        r for r in mesh.api.log.entries[before:] if r.content_type == "application/json-patch+json"
    ]
    assert len(removals) == len(mesh.nodes) and all(r.status == 200 for r in removals)
    mesh.start_kilo()
    assert all(n.kg is not None and n.kg.running for n in mesh.nodes.values())
    mesh.wait_green(CONVERGE, same_location=True)
    assert mesh.kilo_leaders()["fra"] == ["fra-gw-2"]
