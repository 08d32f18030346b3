"""A node whose annotations would pass 256 KiB once the plan is applied is held back alone.

Kubernetes refuses an object whose annotations hold more than 256 KiB of keys and values
together (TotalAnnotationSizeLimitB, 422 Invalid). Others' annotations count too: a node
that already carries 250 KB of someone else's data cannot take topoctl's. The plan names
the node and the size before any write; the rest of its site goes ahead.
"""

from __future__ import annotations

import pytest

from reconciler.core.loading.load import SourceFile, load
from reconciler.core.planning.planner import Planner
from reconciler.model import keys
from reconciler.model.names import MAX_ANNOTATIONS_BYTES
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology
from tests.apiserver import ApiServer
from tests.apiserver.errors import ApiError
from tests.controller.loop_support import WallClock, running_loop, wait_until

BLOB_KEY = "example.com/inventory"
SITES = b"""\
apiVersion: topoctl.io/v1alpha1
kind: Site
metadata:
  name: east
spec:
  labels: {topology.example.com/site: east}
  annotations: {example.com/owner: network-team}
  nodes:
    - {name: east-1, endpoint: 203.0.113.1:51820}
    - {name: east-2, endpoint: 203.0.113.2:51820}
  routes:
    - {to: 172.31.0.0/16, dev: eth1}
"""
NOW = 1795683600


def topology() -> Topology:
    result = load([SourceFile("sites/east.yaml", SITES)], [])
    assert result.topology is not None, result.diagnostics
    return result.topology


def crowded(limit_left: int) -> str:
    """Someone else's annotation that leaves ``limit_left`` bytes of the 256 KiB."""
    return "x" * (MAX_ANNOTATIONS_BYTES - limit_left - len(BLOB_KEY))


def node(name: str, **annotations: str) -> NodeState:
    return NodeState.from_object(
        {
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "7",
                         "annotations": annotations},
            "spec": {"podCIDR": "10.244.1.0/24"},
        }
    )  # fmt: skip


def annotations_of(apiserver: ApiServer, name: str) -> dict[str, str]:
    found = apiserver.node(name)
    assert found is not None
    return dict(found["metadata"].get("annotations") or {})


def test_the_plan_names_the_node_and_the_size_and_plans_the_rest() -> None:
    nodes = [node("east-1", **{BLOB_KEY: crowded(100)}), node("east-2")]

    plan = Planner(topology(), nodes, NOW).plan_all()

    (error,) = plan.errors
    assert error.startswith("east-1: its annotations would hold 26"), error
    assert f"Kubernetes refuses more than {MAX_ANNOTATIONS_BYTES} (256 KiB)" in error
    assert [n.node for n in plan.nodes] == ["east-2"]
    assert any(c.key == keys.TOPOCTL_AGENT for c in plan.nodes[0].changes)


def test_a_node_just_under_the_limit_is_planned() -> None:
    nodes = [node("east-1", **{BLOB_KEY: crowded(4096)}), node("east-2")]
    plan = Planner(topology(), nodes, NOW).plan_all()
    assert plan.errors == ()
    assert [n.node for n in plan.nodes] == ["east-1", "east-2"]


def test_the_site_goes_ahead_without_the_node(
    apiserver: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    apiserver.seed_node("east-1", annotations={BLOB_KEY: crowded(100)}, pod_cidr="10.244.1.0/24")
    apiserver.seed_node("east-2", pod_cidr="10.244.2.0/24")
    site = topology()

    with running_loop(apiserver, site, WallClock(NOW)):
        assert wait_until(lambda: keys.TOPOCTL_AGENT in annotations_of(apiserver, "east-2"))

    assert apiserver.log.count(verb="patch", resource="nodes", name="east-1") == 0
    assert apiserver.log.count(status=422) == 0
    assert keys.TOPOCTL_AGENT not in annotations_of(apiserver, "east-1")
    assert "site east: node(s) held back: east-1: its annotations would hold" in caplog.text


def test_the_limit_is_the_api_server_s_to_the_byte(apiserver: ApiServer) -> None:
    """At exactly 256 KiB once applied the node is planned, and the double (which counts as
    kube-apiserver does) takes the write; one byte more and the plan holds it back."""
    probe = Planner(topology(), [node("east-1", **{BLOB_KEY: crowded(100)})], NOW).plan_all()
    (error,) = probe.errors
    over = int(error.split(" would hold ")[1].split()[0]) - MAX_ANNOTATIONS_BYTES
    exact = crowded(100 + over)  # leaves exactly what this plan adds

    one_more = Planner(topology(), [node("east-1", **{BLOB_KEY: exact + "x"})], NOW).plan_all()
    (error,) = one_more.errors
    assert f"would hold {MAX_ANNOTATIONS_BYTES + 1} bytes" in error
    assert one_more.nodes == ()

    apiserver.seed_node("east-1", annotations={BLOB_KEY: exact}, pod_cidr="10.244.1.0/24")
    with running_loop(apiserver, topology(), WallClock(NOW)):
        assert wait_until(lambda: keys.TOPOCTL_AGENT in annotations_of(apiserver, "east-1"))
    written = annotations_of(apiserver, "east-1")
    assert sum(len(k.encode()) + len(v.encode()) for k, v in written.items()) == (
        MAX_ANNOTATIONS_BYTES
    )
    assert apiserver.log.count(status=422) == 0


def test_bytes_are_counted_not_characters(apiserver: ApiServer) -> None:
    """kube-apiserver sums Go string lengths (bytes); so do the double and the planner."""
    wide = "é" * 100_000 + "x" * 70_000  # 170,000 characters, 270,000 bytes
    with pytest.raises(ApiError, match="may not be more than 262144 bytes"):
        apiserver.seed_node("east-1", annotations={BLOB_KEY: wide})

    fits = "é" * 100_000 + "x" * 61_800  # 261,800 bytes: the API takes it, not 450 more
    apiserver.seed_node("east-1", annotations={BLOB_KEY: fits})
    plan = Planner(topology(), [node("east-1", **{BLOB_KEY: fits})], NOW).plan_all()
    (error,) = plan.errors
    assert error.startswith("east-1: its annotations would hold 26")
