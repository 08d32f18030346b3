"""The status ConfigMap, Node Events and ``topoctl status``, against the API-server double."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from kubernetes import client

from reconciler.adapters.kubestatus import KubeEventSink, KubeStatusStore
from reconciler.cli import main
from reconciler.controller.events import EventRecorder
from reconciler.controller.status import DOC_LIMIT, SIZE_LIMIT, StatusReporter, listing, render
from reconciler.model.topology import Topology
from reconciler.usecases.statusmap import DOC_KEY, STATUS_NAME, StatusConfigMap
from tests.apiserver import ApiServer
from tests.controller.fakeclock import FakeClock, TimeBase
from tests.controller.loop_support import (
    EXAMPLE_SEEN,
    SHA,
    WallClock,
    as_shipped,
    example_topology,
    running_loop,
    seed_examples,
    wait_until,
)
from tests.shipped_rbac import NAMESPACE

NS = NAMESPACE  # the controller's, where its status ConfigMap lives
NODE_EVENTS = "default"  # where Events about Nodes are recorded


@pytest.fixture(scope="module")
def topology() -> Topology:
    return example_topology()


@pytest.fixture
def api(apiserver: ApiServer) -> Iterator[client.ApiClient]:
    """The controller's service account, under the shipped RBAC."""
    shipped = as_shipped(apiserver)
    api_client = shipped.api(shipped.controller_token())
    yield api_client
    api_client.close()


def reporter_for(
    api: client.ApiClient, clock: WallClock | FakeClock, **kwargs: object
) -> StatusReporter:
    events = EventRecorder(KubeEventSink(api, "topoctl-0"), clock)
    return StatusReporter(
        StatusConfigMap(KubeStatusStore(api, NS, STATUS_NAME)),
        events,
        clock,
        min_interval=0.0,
        **kwargs,  # type: ignore[arg-type]
    )


def stored(apiserver: ApiServer) -> dict[str, str] | None:
    found = apiserver.get("ConfigMap", STATUS_NAME, NS)
    return found.get("data") if found is not None else None


def test_status_configmap_says_what_the_controller_did(
    apiserver: ApiServer, api: client.ApiClient, topology: Topology, kubeconfig_path: Path
) -> None:
    seed_examples(apiserver)
    clock = WallClock(EXAMPLE_SEEN + 5.0)
    reporter = reporter_for(api, clock)
    apiserver.seed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": STATUS_NAME, "namespace": NS},
            "data": {"fetchRequestedAt": "2026-11-26T08:00:00Z"},  # a standby's key
        }
    )
    with running_loop(apiserver, topology, clock, observer=reporter) as loop:
        reporter.refused("f" * 40, ["sites/azure.yaml:3:5: error: something is wrong"])
        assert wait_until(lambda: loop.queue.idle and reporter.publishes >= 1)
        assert wait_until(lambda: not reporter._dirty)
    data = stored(apiserver)
    assert data is not None
    assert data["fetchRequestedAt"] == "2026-11-26T08:00:00Z"  # kept
    assert data["revision"] == SHA and len(data["revision"]) == 40
    doc = json.loads(data[DOC_KEY])
    assert doc["revision"] == SHA and doc["appliedAt"]
    assert doc["refused"]["revision"] == "f" * 40
    assert doc["refused"]["errors"]["items"] == ["sites/azure.yaml:3:5: error: something is wrong"]
    fsn1 = doc["sites"]["hetzner-fsn1"]
    assert fsn1["members"]["count"] == 3
    assert fsn1["leader"]["predicted"] == "fsn1-gw-1"
    assert fsn1["lastError"] is None
    assert fsn1["agents"]["ready"] + fsn1["agents"]["unknown"] == 3
    assert doc["cluster"]["unassigned"]["items"] == ["build-runner-1"]

    # Events: TopologyApplied on every node written, naming the revision
    events = apiserver.objects("Event", NODE_EVENTS)
    applied = {e["involvedObject"]["name"] for e in events if e["reason"] == "TopologyApplied"}
    written = {e.name for e in apiserver.log.filter(verb="patch", resource="nodes", status=200)}
    assert applied == written
    assert all(SHA[:12] in e["message"] for e in events if e["reason"] == "TopologyApplied")

    # topoctl status reads it back
    person = ["status", "--kubeconfig", str(kubeconfig_path), "--lease-namespace", NS]
    text = CliRunner().invoke(main, person)
    assert text.exit_code == 0, text.output
    assert f"revision:  {SHA}" in text.output
    assert "hetzner-fsn1" in text.output and "fsn1-gw-1" in text.output
    assert "refused:   " + "f" * 40 in text.output
    as_json = CliRunner().invoke(main, [*person, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    parsed = json.loads(as_json.output)
    assert parsed["sites"]["hetzner-fsn1"]["members"]["count"] == 3
    assert parsed["other"] == {"fetchRequestedAt": "2026-11-26T08:00:00Z"}


def test_status_without_a_configmap_is_a_clear_failure(kubeconfig_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["status", "--kubeconfig", str(kubeconfig_path), "--lease-namespace", "topoctl"]
    )
    assert result.exit_code == 1
    assert "no topoctl-status ConfigMap in namespace topoctl" in result.output


def test_no_lease_and_dry_run_publish_nothing(
    apiserver: ApiServer, api: client.ApiClient, topology: Topology
) -> None:
    seed_examples(apiserver)
    clock = WallClock(EXAMPLE_SEEN + 5.0)
    for kwargs in ({"may_write": lambda: False}, {"dry_run": True}):
        reporter = reporter_for(api, clock, **kwargs)
        reporter.refused("e" * 40, ["bad"])
        assert reporter.publish() is False
        reporter.idle()
    dry = reporter_for(api, clock, dry_run=True)
    with running_loop(apiserver, topology, clock, observer=dry, dry_run=True) as loop:
        assert wait_until(lambda: loop.stats.full_plans == 1 and loop.queue.idle)
    assert apiserver.log.writes() == []


def test_the_status_stays_under_256_kib_with_counts(
    apiserver: ApiServer, api: client.ApiClient
) -> None:
    names = [f"site-{s:03d}-node-{n:05d}" for s in range(4) for n in range(8000)]
    doc = {
        "revision": SHA,
        "sites": {
            f"site-{s:03d}": {
                "members": listing(names[s * 8000 : (s + 1) * 8000], 100000),
                "conflicts": listing([f"{n}: label x (Talos)" for n in names[:3000]], 100000),
            }
            for s in range(4)
        },
    }
    assert len(json.dumps(doc)) > SIZE_LIMIT
    text = render(doc)
    assert len(text.encode()) <= DOC_LIMIT
    cut = json.loads(text)
    site = cut["sites"]["site-000"]
    assert site["members"]["count"] == 8000 and len(site["members"]["items"]) < 8000
    assert site["members"]["items"][0] == "site-000-node-00000"
    # and the API takes it
    KubeStatusStore(api, NS, STATUS_NAME).write({DOC_KEY: text, "revision": SHA}, None)
    found = stored(apiserver)
    assert found is not None and json.loads(found[DOC_KEY])["revision"] == SHA


def test_events_are_aggregated_by_node_and_reason_and_rate_limited(
    apiserver: ApiServer, api: client.ApiClient
) -> None:
    base = TimeBase()
    clock = FakeClock(base)
    recorder = EventRecorder(
        KubeEventSink(api, "topoctl-0"), clock, interval=30.0, burst=3, refill=10.0
    )
    for i in range(10):
        recorder.record("n1", "TopologyApplied", f"revision {i}")
    assert recorder.stats.created == 1 and recorder.stats.series_updates == 0
    base.advance(31)
    recorder.flush()
    events = apiserver.objects("Event", NODE_EVENTS)
    assert len(events) == 1
    assert events[0]["series"]["count"] == 10
    assert events[0]["message"] == "revision 9"
    # a new reason is a new event; the bucket (3, one back per 10 s) refuses a storm
    for node in ("n2", "n3", "n4", "n5"):
        recorder.record(node, "KiloLeaderChange", "moved")
    assert recorder.stats.created == 4  # n1, then 3 of the 4: the bucket holds 3 at most
    assert recorder.stats.dropped == 1
    assert apiserver.log.count(verb="create", resource="events") == 4
