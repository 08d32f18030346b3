"""Against Kilo itself: apply topoctl's plan to generated clusters and feed the result to
``kilo-topo``, Kilo's own code reading a node list (translateNode, Node.Ready,
NewTopology). Every Kilo key topoctl writes must be read by Kilo as meant, and the
leader topoctl predicts for a location must be the one Kilo elects.

The program's path comes from ``KILO_TOPO``; without it these tests skip.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.planning.plan import Plan
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.topology import Topology
from tests.controller.loop_support import EXAMPLE_NODES, example_topology
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


# --- a node whose clock runs ahead -------------------------------------------------------

AHEAD = 300  # five minutes
PINNED = {"azure-weu": "weu-gw-1", "hetzner-fsn1": "fsn1-gw-1", "onprem-ams1": "ams1-gw-1"}


def example_cluster(now: int, ahead: str) -> tuple[Topology, list[dict[str, Any]]]:
    """The example nodes once topoctl's plan is applied, every node checked in at
    ``now`` but ``ahead``, whose clock runs five minutes ahead."""
    topo = example_topology()
    objects = yaml.safe_load(EXAMPLE_NODES.read_text())["items"]
    objects = apply_to_objects(Planner(topo, states_of(objects)).plan_all(), objects)
    for obj in objects:
        annotations = obj["metadata"].setdefault("annotations", {})
        seen = now + AHEAD if obj["metadata"]["name"] == ahead else now
        annotations[keys.KILO_LAST_SEEN] = str(seen)
    return topo, objects


def shifted(objects: list[dict[str, Any]], by: int) -> list[dict[str, Any]]:
    """The nodes as an agent whose clock reads ``by`` seconds more sees them (kilo-topo
    reads the machine's clock: the check-ins are moved back instead)."""
    out = copy.deepcopy(objects)
    for obj in out:
        annotations = obj["metadata"]["annotations"]
        annotations[keys.KILO_LAST_SEEN] = str(int(annotations[keys.KILO_LAST_SEEN]) - by)
    return out


def elected(seen: dict[str, Any]) -> dict[str, str | None]:
    """Kilo's leader of each location's own segment."""
    out: dict[str, str | None] = {}
    for location, segments in seen["topology"]["leaders_by_location"].items():
        own = [s for s in segments if s["segment"] == f"location:{location}"]
        out[location] = own[0]["leader"] if own else None
    return out


@pytest.mark.parametrize("ahead", ["ams1-gw-1", "fsn1-worker-x9m4t", "weu-gpu-000001"])
def test_a_node_minutes_ahead_moves_no_leader_kilo_elects(ahead: str) -> None:
    """Each Kilo agent judges last-seen with its own clock. The agents whose clocks are
    right elect the pinned leaders, the node ahead included (a future check-in is fresh
    to Kilo); topoctl predicts the same, on the controller's clock and offline alike.
    Only the agent ahead sees every other node stale: the view the newest last-seen
    used to impose on every plan."""
    now = int(time.time())
    topo, objects = example_cluster(now, ahead)
    kilo_sees = elected(kilo(objects, "location"))
    assert {site: kilo_sees.get(site) for site in PINNED} == PINNED
    for planner in (Planner(topo, states_of(objects), now), Planner(topo, states_of(objects))):
        assert {p.site: p.predicted for p in planner.plan_all().leaders} == PINNED

    ahead_sees = elected(kilo(shifted(objects, AHEAD), "location"))
    location = next(o for o in objects if o["metadata"]["name"] == ahead)["metadata"]
    mine = location["annotations"][keys.KILO_LOCATION]
    assert {site: ahead_sees.get(site) for site in PINNED} == {
        site: ahead if site == mine else None for site in PINNED
    }
    as_ahead = Planner(topo, states_of(objects), now + AHEAD).plan_all()  # the old "now"
    assert {p.site: p.predicted for p in as_ahead.leaders} == {
        site: ahead_sees.get(site) for site in PINNED
    }


def test_a_leader_that_alone_stopped_checking_in_is_replaced_as_kilo_replaces_it() -> None:
    """fsn1-gw-1 last checked in 70 s ago, every other node just now: Kilo's agents
    count it not Ready and elect another; topoctl predicts the same node."""
    now = int(time.time())
    topo, objects = example_cluster(now, ahead="")
    for obj in objects:
        if obj["metadata"]["name"] == "fsn1-gw-1":
            obj["metadata"]["annotations"][keys.KILO_LAST_SEEN] = str(now - 70)
    kilo_sees = elected(kilo(objects, "location"))
    assert kilo_sees["hetzner-fsn1"] not in (None, "fsn1-gw-1")
    plan = Planner(topo, states_of(objects), now).plan_all()
    assert {p.site: p.predicted for p in plan.leaders} == {
        site: kilo_sees.get(site) for site in PINNED
    }
