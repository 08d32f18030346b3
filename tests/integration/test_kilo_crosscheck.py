"""Against Kilo itself: apply topoctl's plan to generated clusters and feed the result to
``kilo-topo``, Kilo's own code reading a node list (translateNode, Node.Ready,
NewTopology). Every Kilo key topoctl writes must be read by Kilo as meant, and the
leader topoctl predicts for a location must be the one Kilo elects.

The program's path comes from ``KILO_TOPO``; without it these tests skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.planning.plan import Plan
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.topology import Topology
from tests.core.test_plan import (
    PROPERTY_SETTINGS,
    SEEN,
    apply_to_objects,
    live_nodes,
    states_of,
    topologies,
    topology,
)

KILO_TOPO = os.environ.get("KILO_TOPO", "")
pytestmark = pytest.mark.skipif(
    not (KILO_TOPO and Path(KILO_TOPO).is_file() and os.access(KILO_TOPO, os.X_OK)),
    reason="KILO_TOPO does not name the kilo-topo program (Kilo's own code); .ci/run sets it",
)

# The Kilo keys topoctl writes, and how kilo-topo reports the value Kilo read.
READ_AS: dict[str, str] = {
    keys.KILO_LOCATION: "location",
    keys.KILO_FORCE_ENDPOINT: "endpoint",
    keys.KILO_FORCE_INTERNAL_IP: "internal_ip",
    keys.KILO_PERSISTENT_KEEPALIVE: "persistent_keepalive",
    keys.KILO_ALLOWED_LOCATION_IPS: "allowed_location_ips",
}


def kilo(objects: list[dict[str, Any]], granularity: str) -> dict[str, Any]:
    """Kilo's reading of the nodes, as of now."""
    doc = {"apiVersion": "v1", "kind": "List", "items": objects}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(doc, handle)
        handle.flush()
        done = subprocess.run(
            [KILO_TOPO, "--compact", "--granularity", granularity, handle.name],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def as_of_now(objects: list[dict[str, Any]], now: int) -> list[dict[str, Any]]:
    """The same nodes with every ``last-seen`` moved so that its age is kept, now."""
    for obj in objects:
        annotations = obj["metadata"]["annotations"]
        seen = annotations.get(keys.KILO_LAST_SEEN)
        if seen is not None and seen.isdigit():
            annotations[keys.KILO_LAST_SEEN] = str(now - (SEEN - int(seen)))
    return objects


def expected(key: str, value: str) -> Any:
    """How kilo-topo shows a value it read as meant."""
    if key == keys.KILO_PERSISTENT_KEEPALIVE:
        return int(value)
    if key == keys.KILO_ALLOWED_LOCATION_IPS:
        return value.split(",")
    return value


def resolves_names(seen: dict[str, Any]) -> set[str]:
    """Locations with a node whose endpoint is a DNS name: Kilo resolves the name before
    it prefers public endpoints (topoctl assumes public), which kilo-topo does not do."""
    return {
        n["location"]
        for n in seen["nodes"]
        if any("is a DNS name" in d["message"] for d in n["diagnostics"])
    }


def placement(diagnostic: dict[str, str]) -> bool:
    """Kilo's notes on where a node lands (a node without internal IP is a segment of its
    own; a node that is not Ready is left out): the prediction models both, and neither
    is a value Kilo misread."""
    message = diagnostic["message"]
    if "node is not Ready" in message:  # a consequence of Kilo's own keys, not a misread
        return True
    return diagnostic["source"] == keys.KILO_LOCATION and "no internal IP" in message


def warned(diagnostic: dict[str, str], plan: Plan) -> bool:
    """An overlap of allowed-location-ips between a location and a member that is a
    segment of its own: the plan warns about exactly this."""
    return "overlapping allowed location IPnets" in diagnostic["message"] and any(
        "form Kilo segments of their own" in w for w in plan.warnings
    )


@st.composite
def with_granularity(draw: st.DrawFn) -> Topology:
    topo = draw(topologies())
    return topology(*topo.sites, mesh={"granularity": draw(st.sampled_from(("location", "full")))})


@PROPERTY_SETTINGS
@given(topo=with_granularity(), objects=live_nodes())
def test_kilo_reads_what_topoctl_writes_and_elects_the_predicted_leader(
    topo: Topology, objects: list[dict[str, Any]]
) -> None:
    now = int(time.time())
    objects = as_of_now(objects, now)
    plan = Planner(topo, states_of(objects), now=now).plan_all()
    if plan.errors:
        return  # apply refuses it
    granularity = topo.cluster.spec.mesh.granularity
    seen = kilo(apply_to_objects(plan, objects), granularity)
    by_name = {n["name"]: n for n in seen["nodes"]}

    for node_plan in plan.writes:
        read = by_name[node_plan.node]
        for change in node_plan.writes:
            if change.key not in READ_AS or change.after is None:
                continue
            assert read[READ_AS[change.key]] == expected(change.key, change.after), (change, read)
            dropped = {
                d["source"]
                for d in read["diagnostics"]
                if d["severity"] != "info" and not placement(d) and not warned(d, plan)
            }
            assert change.key not in dropped, (change, read["diagnostics"])

    elected = seen["topology"]["leaders_by_location"]
    for prediction in plan.leaders:
        if prediction.site in resolves_names(seen):
            continue  # Kilo resolves DNS endpoints first; kilo-topo cannot (see its README)
        segments = elected.get(prediction.site, [])
        if granularity == "location":
            location = [s for s in segments if s["segment"] == f"location:{prediction.site}"]
            leader = location[0]["leader"] if location else None
            assert prediction.predicted == leader, (prediction, segments)
        else:
            assert prediction.predicted is None
            assert all(s["segment_nodes"] == [s["leader"]] for s in segments), segments
