"""Which node Kilo elects to lead a location's segment (squat/kilo pkg/mesh/topology.go)."""

from __future__ import annotations

from collections.abc import Sequence

from reconciler.core.kilo.node import KiloNode

# Granularities under which every node is a segment of its own and leads it (Kilo's
# ``full``; Cozystack's ``cross``, where nodes of one location are not peers either).
PER_NODE = frozenset({"full", "cross"})


def find_leader(nodes: Sequence[KiloNode]) -> KiloNode | None:
    """Kilo's ``findLeader`` (pkg/mesh/topology.go) over one segment's Ready nodes.

    In name order: the first leader-annotated node with a public endpoint; else the first
    leader-annotated node; else the first with a public endpoint; else the first. Nodes
    without an internal IP form segments of their own under ``location`` granularity
    (pkg/mesh/topology.go NewTopology), so they never lead the location's segment; under
    ``full`` and ``cross`` every node is a segment of its own (see :data:`PER_NODE`).
    """
    segment = sorted(
        (n for n in nodes if n.ready and n.internal_ip is not None), key=lambda n: n.name.encode()
    )
    if not segment:
        return None
    leaders = [n for n in segment if n.leader]
    for node in leaders:
        if node.public_endpoint:
            return node
    if leaders:
        return leaders[0]
    public = [n for n in segment if n.public_endpoint]
    return public[0] if public else segment[0]
