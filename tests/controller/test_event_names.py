"""Event names stay valid for any node name, against the API-server double.

An Event's name must be a DNS subdomain of at most 253 characters, as for any object;
the double refuses any other with 422, as kube-apiserver does. topoctl names an Event
``<node>.<hash>``: a node name of 237 characters or more must be cut, never the Event
lost - the NodeDeleted Event comes before a deletion, and without it there is none.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes import client

from reconciler.adapters.kubestatus import KubeEventSink
from reconciler.controller.events import EventRecorder
from reconciler.core.planning.plan import NodeDeletion
from reconciler.model.names import event_name
from reconciler.model.records import EventRecord
from reconciler.usecases.deletion import node_deleted
from tests.apiserver import ApiServer, validation
from tests.controller.fakeclock import FakeClock, TimeBase

NS = "default"
AT = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def long_name(length: int) -> str:
    """A valid node name of ``length`` characters, dotted like a cloud's FQDN names."""
    label = "worker-" + "a" * 50  # 57 characters
    name = label
    while len(name) < length:
        name += "." + label
    name = name[:length].rstrip(".-")
    return name + "z" * (length - len(name))


@pytest.fixture
def api(apiserver: ApiServer) -> Iterator[client.ApiClient]:
    config = client.Configuration(host=apiserver.url)
    config.retries = False
    api_client = client.ApiClient(config)
    yield api_client
    api_client.close()


def event_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": NS},
        "eventTime": "2026-12-02T20:00:00.000000Z",
        "reportingController": "topoctl.io/controller",
        "reportingInstance": "topoctl-0",
        "action": "Reconcile",
        "reason": "TopologyApplied",
        "regarding": {"apiVersion": "v1", "kind": "Node", "name": "n"},
        "type": "Normal",
    }


def post_event(apiserver: ApiServer, name: str) -> tuple[int, dict[str, Any]]:
    """POST an events.k8s.io/v1 Event named ``name`` as JSON: the status and the body."""
    request = urllib.request.Request(
        f"{apiserver.url}/apis/events.k8s.io/v1/namespaces/{NS}/events",
        data=json.dumps(event_body(name)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize(
    "name",
    ["a" * 254, "Upper.case", "ends-with-dash-", "double..dot"],
    ids=["254-characters", "uppercase", "trailing-dash", "empty-label"],
)
def test_the_double_refuses_an_event_name_the_real_server_refuses(
    apiserver: ApiServer, name: str
) -> None:
    status, body = post_event(apiserver, name)
    assert status == 422, body
    assert (body["reason"], body["details"]["causes"][0]["field"]) == ("Invalid", "metadata.name")
    assert post_event(apiserver, "a" * 253)[0] == 201


@pytest.mark.parametrize("length", [63, 236, 237, 240, 253])
def test_every_node_name_gets_its_event_under_a_valid_name(
    apiserver: ApiServer, api: client.ApiClient, length: int
) -> None:
    node = long_name(length)
    assert len(node) == length and SUBDOMAIN.fullmatch(node)
    sink = KubeEventSink(api, "topoctl-0")

    names = {sink.create(EventRecord(node, reason, "note", AT)) for reason in ("A", "B")}

    assert len(names) == 2, "two events of one node never share a name"
    for name in names:
        assert len(name) <= 253 and SUBDOMAIN.fullmatch(name), name
    stored = apiserver.objects("Event", NS)
    assert {e["metadata"]["name"] for e in stored} == names
    assert {e["involvedObject"]["name"] for e in stored} == {node}


def test_a_node_with_a_253_character_name_is_announced_before_its_deletion(
    apiserver: ApiServer, api: client.ApiClient
) -> None:
    node = long_name(253)
    deletion = NodeDeletion(node, "fsn1", "uid-1", "17", "would delete it", "silent for 10m")

    KubeEventSink(api, "topoctl-0").create(node_deleted(deletion, AT))

    (event,) = apiserver.objects("Event", NS)
    assert (event["reason"], event["involvedObject"]["name"]) == ("NodeDeleted", node)
    assert event["involvedObject"]["uid"] == "uid-1"


def test_the_recorder_records_and_aggregates_for_a_long_node_name(
    apiserver: ApiServer, api: client.ApiClient
) -> None:
    clock = FakeClock(TimeBase())
    recorder = EventRecorder(KubeEventSink(api, "topoctl-0"), clock, interval=0.0)
    node = long_name(250)

    recorder.record(node, "TopologyApplied", "revision 1")
    recorder.record(node, "TopologyApplied", "revision 2")

    assert (recorder.stats.created, recorder.stats.series_updates, recorder.stats.failed) == (
        1,
        1,
        0,
    )
    (event,) = apiserver.objects("Event", NS)
    assert event["series"]["count"] == 2


_label = st.builds(
    lambda a, m, b: a + m + b,
    st.sampled_from(LOWER),
    st.text(alphabet=LOWER + "-", max_size=61),
    st.sampled_from(LOWER),
)
_node_names = st.lists(_label, min_size=1, max_size=8).map(".".join).filter(lambda n: len(n) <= 253)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(node=_node_names, digest=st.text(alphabet="0123456789abcdef", min_size=16, max_size=16))
def test_an_event_name_is_valid_for_every_valid_node_name(node: str, digest: str) -> None:
    """Cross-checked with the double's own rule (apimachinery's IsDNS1123Subdomain)."""
    name = event_name(node, digest)
    assert validation.dns_subdomain("metadata.name", name) == [], name
    assert name.endswith("." + digest)
    if len(node) <= 236:
        assert name == f"{node}.{digest}", "short names are as client-go makes them"
    else:
        assert node.startswith(name.removesuffix("." + digest))
