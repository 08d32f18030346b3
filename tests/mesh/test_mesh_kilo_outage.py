"""A Kilo outage never becomes a topoctl outage, on real packets.

Two locations meshed by Kilo's own agent and converged by `topoctl run` from git (the
harness, tests/mesh/harness.py). fra-gw-1 leads fra and has an on-prem network behind it
(192.168.1.0/24): fra's non-leaders reach it through topoctl's `via: leader` route.

Then every kg stops for 90 s: killed (a crash: its annotations stay and every node's
last-seen runs out on its own 30 s phase) or terminated (a DaemonSet rollout: kg removes
its key, endpoint and last-seen). Kilo going silent is no leader change: throughout, the
routes topoctl installed stay in every node's kernel, the agent settings it published
stay on every Node, the on-prem network stays reachable through them, and the status
says the leader is unknown and why. Started again, Kilo meshes every pod once more.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests import shipped_rbac
from tests.mesh import topology
from tests.mesh.conftest import build
from tests.mesh.harness import Mesh
from tests.mesh.probe import wait_until

LOCATIONS = topology.layout(("fra", 2, 1), ("ams", 1, 1), onprem=["fra"])
ONPREM = "192.168.1.0/24"
ONPREM_HOST = "192.168.1.100"
NON_LEADERS = ("fra-gw-2", "fra-w-1")
PROTOCOL = "193"  # topoctl's rtnetlink protocol (the Cluster default)
OUTAGE = 90.0  # seconds without any kg
EVERY = 5.0  # seconds between looks during the outage
CONVERGE = 90.0  # seconds: generous for a loaded CI machine; typical runs take a few
AGENT = "topoctl.io/agent"


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    files = topology.files(
        LOCATIONS,
        leaders={"fra": ["fra-gw-1"]},
        routes={"fra": [{"to": ONPREM, "via": "leader", "on": "non-leaders", "metric": 100}]},
        allowed_location_ips={"fra": [f"{ONPREM_HOST}/32"]},
    )
    yield from build(LOCATIONS, files)


def topoctl_routes(mesh: Mesh) -> dict[str, list[tuple[str, str | None, str | None]]]:
    """The routes topoctl's agents installed (its protocol), node by node."""
    out = {}
    for name, node in sorted(mesh.nodes.items()):
        routes = node.routes("proto", PROTOCOL)
        out[name] = sorted((str(r["dst"]), r.get("gateway"), r.get("dev")) for r in routes)
    return out


def published(mesh: Mesh) -> dict[str, str | None]:
    return {name: mesh.annotations(name).get(AGENT) for name in sorted(mesh.nodes)}


def status(mesh: Mesh) -> dict[str, Any]:
    """The controller's status ConfigMap (topoctl-status, in the lease namespace)."""
    for obj in mesh.api.objects("ConfigMap", shipped_rbac.NAMESPACE):
        if obj["metadata"]["name"] == "topoctl-status":
            doc: dict[str, Any] = json.loads(obj["data"]["status.json"])
            return doc
    return {}


def leader(mesh: Mesh, site: str) -> dict[str, Any]:
    found: dict[str, Any] = (status(mesh).get("sites", {}).get(site) or {}).get("leader") or {}
    return found


def converged(mesh: Mesh) -> dict[str, list[tuple[str, str | None, str | None]]]:
    """Wait for the mesh, the routes via fra's leader and the controller's status; the
    routes topoctl installed."""
    mesh.wait_green(CONVERGE, same_location=True)
    gateway = mesh.nodes["fra-gw-1"].addr.lan
    wait_until(
        lambda: all(
            (ONPREM, gateway) in [(d, g) for d, g, _ in topoctl_routes(mesh)[n]]
            for n in NON_LEADERS
        ),
        CONVERGE,
        "topoctl's route to the on-prem network via fra-gw-1 on fra's non-leaders",
        detail=lambda: topoctl_routes(mesh),
    )
    wait_until(
        lambda: leader(mesh, "fra").get("predicted") == "fra-gw-1",
        CONVERGE,
        "the status to predict fra-gw-1",
        detail=lambda: leader(mesh, "fra"),
    )
    return topoctl_routes(mesh)


@pytest.mark.parametrize(
    ("sig", "why"),
    [
        (signal.SIGKILL, "Kilo is silent here"),  # last-seen runs out, phase by phase
        (signal.SIGTERM, "Kilo's agent on fra-gw-1"),  # kg removed its key and last-seen
    ],
    ids=["killed", "terminated"],
)
def test_every_kg_stopped_for_90_s_withdraws_nothing(
    mesh: Mesh, sig: signal.Signals, why: str
) -> None:
    routes = converged(mesh)
    agents = published(mesh)
    assert mesh.reaches(NON_LEADERS, ONPREM_HOST)

    mesh.stop_kilo(sig=sig)
    assert not any(n.kg is not None and n.kg.running for n in mesh.nodes.values())
    looks = 0
    deadline = time.monotonic() + OUTAGE
    while time.monotonic() < deadline:
        assert topoctl_routes(mesh) == routes, "a route topoctl installed was withdrawn"
        assert published(mesh) == agents, "the published agent settings changed"
        assert mesh.reaches(NON_LEADERS, ONPREM_HOST), "the on-prem network stopped answering"
        looks += 1
        time.sleep(EVERY)
    assert looks >= OUTAGE / EVERY - 2
    unknown = leader(mesh, "fra")
    assert unknown.get("predicted") is None and why in (unknown.get("unknown") or ""), unknown
    assert unknown.get("held") == f"{mesh.nodes['fra-gw-1'].addr.lan} (fra-gw-1)", unknown
    assert any(line.startswith("fra-gw-1: ") for line in unknown["notReady"]["items"])

    mesh.start_kilo()
    assert converged(mesh) == routes
    assert published(mesh) == agents
    assert mesh.kilo_leaders()["fra"] == ["fra-gw-1"]
    assert "unknown" not in leader(mesh, "fra")
