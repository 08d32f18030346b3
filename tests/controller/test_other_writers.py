"""The controller beside another field manager that writes back a key topoctl wrote:
one write, then the key is left to it, and the conflict naming the manager is in the
status ConfigMap, a TopologyConflict Event on the node and ``topoctl_held_keys``
(against the API-server double, which records managedFields; the operator writes with
the official client under its own field manager)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client

from reconciler.adapters.kubestatus import KubeEventSink, KubeStatusStore
from reconciler.controller.events import EventRecorder
from reconciler.controller.guard import WriteStats
from reconciler.controller.informer import InformerStats
from reconciler.controller.metrics import Metrics
from reconciler.controller.observers import Fanout, MetricsObserver
from reconciler.controller.status import StatusReporter
from reconciler.model import keys
from reconciler.usecases.statusmap import DOC_KEY, STATUS_NAME, StatusConfigMap
from tests.apiserver import ApiServer
from tests.controller.loop_support import (
    EXAMPLE_SEEN,
    WallClock,
    as_shipped,
    example_topology,
    running_loop,
    seed_examples,
    wait_until,
)
from tests.shipped_rbac import NAMESPACE

NODE = "fsn1-gw-1"  # its site forces its endpoint
OPERATOR = "kilo-clustermesh-operator"
THEIRS = "198.51.100.20:51820"


@pytest.fixture
def api(apiserver: ApiServer) -> Iterator[client.ApiClient]:
    shipped = as_shipped(apiserver)
    api_client = shipped.api(shipped.controller_token())
    yield api_client
    api_client.close()


def topoctl_writes(apiserver: ApiServer) -> int:
    return sum(
        1
        for r in apiserver.log
        if r.method == "PATCH"
        and r.status == 200
        and r.path.endswith(f"/nodes/{NODE}")
        and r.query.get("fieldManager") == "topoctl"
        and keys.KILO_FORCE_ENDPOINT
        in ((r.body or {}).get("metadata") or {}).get("annotations", {})
    )


def test_the_controller_writes_once_then_names_the_other_writer(
    apiserver: ApiServer, api: client.ApiClient, kube_api: client.ApiClient
) -> None:
    ticks = itertools.count()
    start = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    apiserver.store.clock = lambda: start + timedelta(seconds=next(ticks))
    seed_examples(apiserver)
    clock = WallClock(EXAMPLE_SEEN + 5.0)
    metrics = Metrics()
    reporter = StatusReporter(
        StatusConfigMap(KubeStatusStore(api, NAMESPACE, STATUS_NAME)),
        EventRecorder(KubeEventSink(api, "topoctl-0"), clock),
        clock,
        min_interval=0.0,
    )
    observer = Fanout(reporter, MetricsObserver(metrics, InformerStats(), WriteStats()))
    core = client.CoreV1Api(kube_api)
    operator = {"metadata": {"annotations": {keys.KILO_FORCE_ENDPOINT: THEIRS}}}
    with running_loop(apiserver, example_topology(), clock, observer=observer) as loop:
        assert wait_until(lambda: loop.queue.idle and topoctl_writes(apiserver) == 1)
        for _ in range(4):  # the operator puts its value back, the loop sees each write
            core.patch_node(NODE, operator, field_manager=OPERATOR)
            assert wait_until(lambda: loop.queue.idle)
        labels = {"site": "hetzner-fsn1", "manager": OPERATOR}
        assert wait_until(
            lambda: metrics.registry.get_sample_value("topoctl_held_keys", labels) == 1
        )
        assert wait_until(lambda: not reporter._dirty)
    assert topoctl_writes(apiserver) == 1  # no fight
    node = apiserver.node(NODE)
    assert node is not None
    assert node["metadata"]["annotations"][keys.KILO_FORCE_ENDPOINT] == THEIRS
    found = apiserver.get("ConfigMap", STATUS_NAME, NAMESPACE)
    assert found is not None
    doc = json.loads(found["data"][DOC_KEY])
    listed = doc["sites"]["hetzner-fsn1"]["conflicts"]["items"]
    assert any(keys.KILO_FORCE_ENDPOINT in c and OPERATOR in c for c in listed), listed
    events = [
        e
        for e in apiserver.objects("Event", "default")
        if e["reason"] == "TopologyConflict" and e["involvedObject"]["name"] == NODE
    ]
    assert events and OPERATOR in events[-1]["message"]
