"""Kilo's `full` and Cozystack's `cross` granularity, converged by topoctl, on real packets.

Under both, every node is a segment of its own and a WireGuard endpoint for the nodes
it peers with, so every node here is a gateway with a public address (a cloud VM):
under `full` each node peers with every other; under `cross` only with the nodes of
other locations, and inside a location traffic takes Cilium's path (here the stand-in
routes).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mesh import topology
from tests.mesh.conftest import build
from tests.mesh.harness import Mesh
from tests.mesh.probe import wait_until
from tests.mesh.spec import LocationSpec

CONVERGE = 90.0


def all_gateways(*shapes: tuple[str, int]) -> list[LocationSpec]:
    return topology.layout(*((name, count, 0) for name, count in shapes))


LOCATIONS = all_gateways(("fra", 2), ("ams", 2), ("par", 1))


@pytest.fixture(scope="module", params=["full", "cross"])
def mesh(request: pytest.FixtureRequest) -> Iterator[Mesh]:
    granularity = str(request.param)
    yield from build(
        LOCATIONS, topology.files(LOCATIONS, granularity=granularity), granularity=granularity
    )


def peers_of(mesh: Mesh, name: str) -> set[str]:
    """The nodes whose public endpoint `name` has as a WireGuard peer."""
    by_endpoint = {f"{n.addr.wan}:51820": n.name for n in mesh.nodes.values()}
    state = mesh.nodes[name].wg()
    return {by_endpoint.get(p.endpoint or "", "?") for p in state.peers} if state else set()


def expected_peers(mesh: Mesh, name: str) -> set[str]:
    me = mesh.nodes[name]
    return {
        n.name
        for n in mesh.nodes.values()
        if n.name != name and (mesh.granularity == "full" or n.spec.location != me.spec.location)
    }


def test_every_pair_pings(mesh: Mesh) -> None:
    mesh.wait_green(CONVERGE, same_location=True)
    assert all(
        mesh.annotations(n)["kilo.squat.ai/granularity"] == mesh.granularity for n in mesh.nodes
    )
    # every node leads its own segment
    wait_until(
        lambda: (
            sorted(n for names in mesh.kilo_leaders().values() for n in names) == sorted(mesh.nodes)
        ),
        CONVERGE,
        "every node to route through its own kilo0",
        detail=mesh.kilo_leaders,
    )
    wait_until(
        lambda: all(peers_of(mesh, n) == expected_peers(mesh, n) for n in mesh.nodes),
        CONVERGE,
        f"the WireGuard peers {mesh.granularity} granularity makes",
        detail=lambda: {n: sorted(peers_of(mesh, n)) for n in mesh.nodes},
    )
