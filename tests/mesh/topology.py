"""Test meshes and the topology files (sites/*.yaml) that describe them to topoctl.

`layout(("fra", 1, 2), ...)` names a location's gateways `<loc>-gw-<k>` (listed by name
in its Site, with a public address on the WAN) and its workers `<loc>-w-<k>` (members
through the Site's pool: the `mesh.test/role: worker` label and the `<loc>-w-*` name
pattern). Every Site sets `persistentKeepalive`: Kilo replaces every WireGuard peer when
a location's leader moves, and wireguard-go starts a new session only at its next
handshake; with a keepalive the new peer sends one at once, without it the first
packet waits for a handshake timer (5-15 s of lost traffic on a leader move).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from tests.mesh.spec import LocationSpec, NodeSpec

ROLE_LABEL = "mesh.test/role"
WORKER = {ROLE_LABEL: "worker"}
KEEPALIVE = 10


def gateway(location: str, k: int) -> NodeSpec:
    """The k-th gateway of a location."""
    return NodeSpec(f"{location}-gw-{k}", location, gateway=True)


def worker(location: str, k: int) -> NodeSpec:
    """The k-th worker of a location (a pool member)."""
    return NodeSpec(f"{location}-w-{k}", location, labels=WORKER)


def layout(*shapes: tuple[str, int, int], onprem: Sequence[str] = ()) -> list[LocationSpec]:
    """Locations from (name, gateways, workers) triples."""
    return [
        LocationSpec(
            name,
            tuple(gateway(name, k) for k in range(1, gateways + 1))
            + tuple(worker(name, k) for k in range(1, workers + 1)),
            onprem=name in onprem,
        )
        for name, gateways, workers in shapes
    ]


def site(
    loc: LocationSpec,
    *,
    leader: Sequence[str] = (),
    routes: Sequence[Mapping[str, Any]] = (),
    allowed_location_ips: Sequence[str] = (),
    keepalive: int | None = KEEPALIVE,
) -> str:
    """The Site document of a location (`keepalive=None`: no persistentKeepalive)."""
    spec: dict[str, Any] = {}
    if leader:
        spec["leader"] = list(leader)
    if keepalive is not None:
        spec["persistentKeepalive"] = keepalive
    if allowed_location_ips:
        spec["allowedLocationIPs"] = list(allowed_location_ips)
    spec["nodes"] = [{"name": n.name} for n in loc.nodes if n.gateway]
    spec["pools"] = [
        {
            "name": "workers",
            "selector": {"matchLabels": dict(WORKER), "namePattern": f"{loc.name}-w-*"},
        }
    ]
    if routes:
        spec["routes"] = [dict(r) for r in routes]
    doc = {
        "apiVersion": "topoctl.io/v1alpha1",
        "kind": "Site",
        "metadata": {"name": loc.name},
        "spec": spec,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def cluster(granularity: str = "location") -> str:
    """The Cluster document: the mesh granularity kg runs with."""
    doc = {
        "apiVersion": "topoctl.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": "mesh"},
        "spec": {"mesh": {"granularity": granularity}, "unassignedNodes": "warn"},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def files(
    locations: Sequence[LocationSpec],
    *,
    granularity: str = "location",
    leaders: Mapping[str, Sequence[str]] | None = None,
    routes: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    allowed_location_ips: Mapping[str, Sequence[str]] | None = None,
    keepalive: int | None = KEEPALIVE,
) -> dict[str, str]:
    """{path: text} of the whole topology: sites/cluster.yaml and sites/<location>.yaml."""
    out = {"sites/cluster.yaml": cluster(granularity)}
    for loc in locations:
        out[f"sites/{loc.name}.yaml"] = site(
            loc,
            leader=(leaders or {}).get(loc.name, ()),
            routes=(routes or {}).get(loc.name, ()),
            allowed_location_ips=(allowed_location_ips or {}).get(loc.name, ()),
            keepalive=keepalive,
        )
    return out
