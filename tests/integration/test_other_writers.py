"""Another field manager writing a key topoctl wrote: one write by topoctl, then a conflict
naming the manager, through the CLI, the official ``kubernetes`` client and kubectl
against the API-server double, which records ``metadata.managedFields`` as
kube-apiserver does for patches that name a field manager.

The second writers are the ones a Cozystack cluster has: the clustermesh operator
writing ``kilo.squat.ai/force-endpoint`` (the official client with its own
``field_manager``) and a person's ``kubectl annotate --overwrite`` / ``kubectl label``.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kubernetes import client

from reconciler.cli import main
from reconciler.model import keys
from tests.apiserver import ApiServer

NODE = "fsn1-gw-1"
OPERATOR = "kilo-clustermesh-operator"
CLUSTER = """\
apiVersion: topoctl.io/v1alpha1
kind: Cluster
metadata: {name: test}
spec: {unassignedNodes: ignore}
"""
SITE = """\
apiVersion: topoctl.io/v1alpha1
kind: Site
metadata: {name: fsn1}
spec:
  labels: {example.com/tier: %(tier)s}
  nodes:
    - name: fsn1-gw-1
      endpoint: %(endpoint)s
"""


def sites(directory: Path, endpoint: str = "203.0.113.10:51820", tier: str = "edge") -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "cluster.yaml").write_text(CLUSTER)
    (directory / "fsn1.yaml").write_text(SITE % {"endpoint": endpoint, "tier": tier})
    return directory


def topoctl(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code in (0, 2), result.output  # 2: plan with changes
    return result


def plan(directory: Path, kubeconfig: Path) -> dict[str, Any]:
    out = topoctl("plan", str(directory), "--kubeconfig", str(kubeconfig), "--format", "json")
    data: dict[str, Any] = json.loads(out.output)
    return data


def apply(directory: Path, kubeconfig: Path) -> None:
    topoctl("apply", str(directory), "--kubeconfig", str(kubeconfig), "--yes")


def writes_of(apiserver: ApiServer, key: str) -> int:
    """topoctl's patches of ``key`` on the node (its field manager in the query)."""
    return sum(
        1
        for r in apiserver.log
        if r.method == "PATCH"
        and r.path.endswith(f"/nodes/{NODE}")
        and r.query.get("fieldManager") == "topoctl"
        and isinstance(r.body, dict)
        and key
        in ((r.body.get("metadata") or {}).get("annotations") or {})
        | ((r.body.get("metadata") or {}).get("labels") or {})
    )


def node_of(apiserver: ApiServer) -> dict[str, Any]:
    node = apiserver.node(NODE)
    assert node is not None
    return node


def managers(apiserver: ApiServer, kind: str, key: str) -> list[str]:
    node = node_of(apiserver)
    return [
        e["manager"]
        for e in node["metadata"].get("managedFields", [])
        if f"f:{key}" in e.get("fieldsV1", {}).get("f:metadata", {}).get(f"f:{kind}", {})
    ]


def operator_writes(kube_api: client.ApiClient, endpoint: str) -> None:
    client.CoreV1Api(kube_api).patch_node(
        NODE,
        {"metadata": {"annotations": {keys.KILO_FORCE_ENDPOINT: endpoint}}},
        field_manager=OPERATOR,
    )


def conflicts(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["key"]: c for c in data["conflicts"] if c.get("kind") != "membership"}


@pytest.fixture
def seeded(apiserver: ApiServer) -> ApiServer:
    """One node, on a server whose clock moves a second each time it is read: the
    writers here follow each other in seconds, not within one (managedFields times
    are to the second; contested.py says what a same-second rewrite gets)."""
    ticks = itertools.count()
    start = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    apiserver.store.clock = lambda: start + timedelta(seconds=next(ticks))
    apiserver.seed_node(NODE, external_ip="203.0.113.10")
    return apiserver


def test_the_double_records_field_managers_as_kube_apiserver(
    seeded: ApiServer, kube_api: client.ApiClient
) -> None:
    """A patch naming a field manager owns the keys it wrote; a later writer of one of
    them takes that key alone; a patch without a manager records none of its own."""
    core = client.CoreV1Api(kube_api)
    core.patch_node(NODE, {"metadata": {"annotations": {"a": "1", "b": "1"}}}, field_manager="x")
    core.patch_node(NODE, {"metadata": {"annotations": {"b": "2"}}}, field_manager="y")
    assert managers(seeded, "annotations", "a") == ["x"]
    assert managers(seeded, "annotations", "b") == ["y"]
    entry = next(e for e in node_of(seeded)["metadata"]["managedFields"] if e["manager"] == "y")
    assert (entry["operation"], entry["apiVersion"], entry["fieldsType"]) == (
        "Update",
        "v1",
        "FieldsV1",
    )
    core.patch_node(NODE, {"metadata": {"annotations": {"a": None}}})  # no manager: a goes
    assert managers(seeded, "annotations", "a") == []
    assert [e["manager"] for e in node_of(seeded)["metadata"]["managedFields"]] == ["y"]
    before = node_of(seeded)["metadata"]["resourceVersion"]
    core.patch_node(NODE, {"metadata": {"annotations": {"b": "2"}}}, field_manager="z")
    assert node_of(seeded)["metadata"]["resourceVersion"] == before  # a no-op write
    assert managers(seeded, "annotations", "b") == ["y"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/merge-patch+json", {"metadata": {"labels": {"l": "1"}}}),
        ("application/strategic-merge-patch+json", {"metadata": {"labels": {"l": "1"}}}),
        (
            "application/json-patch+json",
            [{"op": "add", "path": "/metadata/labels/l", "value": "1"}],
        ),
    ],
)
def test_every_patch_type_records_its_manager_and_status_writes_their_subresource(
    seeded: ApiServer, kube_api: client.ApiClient, content_type: str, body: Any
) -> None:
    core = client.CoreV1Api(kube_api)
    core.patch_node(NODE, body, field_manager="w", _content_type=content_type)
    assert managers(seeded, "labels", "l") == ["w"]
    status = {"status": {"conditions": [{"type": "TopologyReady", "status": "True"}]}}
    core.patch_node_status(NODE, status, field_manager="agent")
    (entry,) = [e for e in node_of(seeded)["metadata"]["managedFields"] if e["manager"] == "agent"]
    assert entry["subresource"] == "status" and "f:status" in entry["fieldsV1"]
    assert managers(seeded, "labels", "l") == ["w"]  # a status write leaves labels alone


def test_kubectl_annotate_is_recorded_under_its_own_manager(
    seeded: ApiServer, kubectl: Any
) -> None:
    kubectl("annotate", "node", NODE, "example.com/by-hand=1")
    kubectl("label", "node", NODE, "example.com/tier=core")
    assert managers(seeded, "annotations", "example.com/by-hand") == ["kubectl-annotate"]
    assert managers(seeded, "labels", "example.com/tier") == ["kubectl-label"]


def test_an_operator_rewriting_force_endpoint_gets_one_write_then_a_conflict(
    seeded: ApiServer, kube_api: client.ApiClient, kubeconfig_path: Path, tmp_path: Path
) -> None:
    directory = sites(tmp_path / "sites")
    apply(directory, kubeconfig_path)
    assert writes_of(seeded, keys.KILO_FORCE_ENDPOINT) == 1
    assert managers(seeded, "annotations", keys.KILO_FORCE_ENDPOINT) == ["topoctl"]

    operator_writes(kube_api, "198.51.100.20:51820")
    data = plan(directory, kubeconfig_path)
    held = conflicts(data)[keys.KILO_FORCE_ENDPOINT]
    assert held["writer"] == OPERATOR and OPERATOR in held["reason"]
    assert (held["before"], held["after"]) == ("198.51.100.20:51820", "203.0.113.10:51820")
    assert data["summary"]["conflicts"] == 1
    for _ in range(3):  # the controller would come back on every watch event
        apply(directory, kubeconfig_path)
        operator_writes(kube_api, "198.51.100.20:51820")
    assert writes_of(seeded, keys.KILO_FORCE_ENDPOINT) == 1  # no fight
    annotations = node_of(seeded)["metadata"]["annotations"]
    assert annotations[keys.KILO_FORCE_ENDPOINT] == "198.51.100.20:51820"
    record = json.loads(annotations[keys.TOPOCTL_OWNED])
    assert record["written"]["annotation"][keys.KILO_FORCE_ENDPOINT][0] == OPERATOR

    # git changes the value: written once more, then held again when put back
    sites(directory, endpoint="203.0.113.11:51820")
    apply(directory, kubeconfig_path)
    assert writes_of(seeded, keys.KILO_FORCE_ENDPOINT) == 2
    node = node_of(seeded)
    assert node["metadata"]["annotations"][keys.KILO_FORCE_ENDPOINT] == "203.0.113.11:51820"
    operator_writes(kube_api, "198.51.100.20:51820")
    apply(directory, kubeconfig_path)
    apply(directory, kubeconfig_path)
    assert writes_of(seeded, keys.KILO_FORCE_ENDPOINT) == 2
    assert keys.KILO_FORCE_ENDPOINT in conflicts(plan(directory, kubeconfig_path))


def test_another_writer_taking_over_lifts_the_hold_once(
    seeded: ApiServer,
    kube_api: client.ApiClient,
    kubeconfig_path: Path,
    tmp_path: Path,
    kubectl: Any,
) -> None:
    """The operator held the key; a person's kubectl then writes it: topoctl writes
    git's value once more, and holds it against kubectl after that."""
    directory = sites(tmp_path / "sites")
    apply(directory, kubeconfig_path)
    operator_writes(kube_api, "198.51.100.20:51820")
    apply(directory, kubeconfig_path)
    assert writes_of(seeded, keys.KILO_FORCE_ENDPOINT) == 1
    kubectl("annotate", "--overwrite", "node", NODE, f"{keys.KILO_FORCE_ENDPOINT}=192.0.2.1:1")
    apply(directory, kubeconfig_path)
    assert writes_of(seeded, keys.KILO_FORCE_ENDPOINT) == 2
    kubectl("annotate", "--overwrite", "node", NODE, f"{keys.KILO_FORCE_ENDPOINT}=192.0.2.1:1")
    held = conflicts(plan(directory, kubeconfig_path))[keys.KILO_FORCE_ENDPOINT]
    assert held["writer"] == "kubectl-annotate"
    apply(directory, kubeconfig_path)
    assert writes_of(seeded, keys.KILO_FORCE_ENDPOINT) == 2


def test_a_label_set_by_hand_before_topoctl_is_adopted_then_held_if_put_back(
    seeded: ApiServer, kubeconfig_path: Path, tmp_path: Path, kubectl: Any
) -> None:
    """kubectl's value before topoctl ever wrote: adopted with one write (git wins), and
    kubectl putting its value back is then a conflict naming kubectl-label."""
    kubectl("label", "node", NODE, "example.com/tier=core")
    directory = sites(tmp_path / "sites")
    apply(directory, kubeconfig_path)
    assert node_of(seeded)["metadata"]["labels"]["example.com/tier"] == "edge"
    assert writes_of(seeded, "example.com/tier") == 1
    kubectl("label", "--overwrite", "node", NODE, "example.com/tier=core")
    held = conflicts(plan(directory, kubeconfig_path))["example.com/tier"]
    assert held["writer"] == "kubectl-label" and held["kind"] == "label"
    apply(directory, kubeconfig_path)
    assert writes_of(seeded, "example.com/tier") == 1
    assert node_of(seeded)["metadata"]["labels"]["example.com/tier"] == "core"


def test_a_value_set_by_hand_and_kept_by_git_is_not_held_when_git_changes(
    seeded: ApiServer, kubeconfig_path: Path, tmp_path: Path, kubectl: Any
) -> None:
    """An adopted cluster (topoctl import): the hand-set value equals git's, so topoctl
    never writes it; when git then changes it, that is topoctl's one write, no conflict."""
    kubectl("annotate", "node", NODE, f"{keys.KILO_FORCE_ENDPOINT}=203.0.113.10:51820")
    kubectl("annotate", "node", NODE, f"{keys.KILO_LOCATION}=fsn1")
    directory = sites(tmp_path / "sites")
    apply(directory, kubeconfig_path)
    assert writes_of(seeded, keys.KILO_FORCE_ENDPOINT) == 0
    sites(directory, endpoint="203.0.113.11:51820")
    assert keys.KILO_FORCE_ENDPOINT not in conflicts(plan(directory, kubeconfig_path))
    apply(directory, kubeconfig_path)
    assert writes_of(seeded, keys.KILO_FORCE_ENDPOINT) == 1
