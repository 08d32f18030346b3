# mypy: disable-error-code="arg-type,union-attr,index,operator,type-var"
# (the client's models type every field Optional; these tests read what they just wrote)
"""The double's ConfigMaps, Events, Lease MicroTime parsing and Node status structs,
through the real client over HTTP (and kubectl, where installed)."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.apiserver import ApiServer
from tests.apiserver.fixtures import KubectlRunner

NS = "default"


@pytest.fixture
def core(kube_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


def raw(core: client.CoreV1Api, method: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    response = method(*args, _preload_content=False, **kwargs)
    doc = json.loads(response.data)
    assert isinstance(doc, dict)
    return doc


def status_of(err: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body = json.loads(err.value.body)
    assert isinstance(body, dict)
    return body


def cm(name: str, data: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": data,
        **extra,
    }


# ------------------------------------------------------------------ configmaps


def test_configmap_crud_with_resource_versions(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    created = core.create_namespaced_config_map(NS, cm("status", {"revision": "abc"}))
    rv = created.metadata.resource_version
    assert created.metadata.uid and created.metadata.creation_timestamp
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(NS, cm("status"))
    assert err.value.status == 409 and status_of(err)["reason"] == "AlreadyExists"

    got = core.read_namespaced_config_map("status", NS)
    assert got.data == {"revision": "abc"}
    got.data["revision"] = "def"
    updated = core.replace_namespaced_config_map("status", NS, got)
    assert int(updated.metadata.resource_version) > int(rv)
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("status", NS, got)  # got carries the old rv
    assert err.value.status == 409 and status_of(err)["reason"] == "Conflict"

    # a no-op write keeps the resourceVersion and emits no event
    events_before = len(apiserver.store.history("configmaps"))
    same = core.replace_namespaced_config_map("status", NS, updated)
    assert same.metadata.resource_version == updated.metadata.resource_version
    assert len(apiserver.store.history("configmaps")) == events_before

    # ConfigMaps are not created by PUT (unlike Leases)
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("absent", NS, cm("absent"))
    assert err.value.status == 404

    listed = core.list_namespaced_config_map(NS, field_selector="metadata.name=status")
    assert [c.data for c in listed.items] == [{"revision": "def"}]
    assert core.list_config_map_for_all_namespaces().items[0].metadata.namespace == NS

    core.delete_namespaced_config_map("status", NS)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("status", NS)
    assert err.value.status == 404


def test_configmap_patches_of_every_kind(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, cm("p", {"a": "1", "b": "2"}))
    merged = core.patch_namespaced_config_map("p", NS, {"data": {"a": None, "c": "3"}})
    assert merged.data == {"b": "2", "c": "3"}  # a dict body is strategic merge
    merge = core.patch_namespaced_config_map(
        "p", NS, {"data": {"d": "4"}}, _content_type="application/merge-patch+json"
    )
    assert merge.data == {"b": "2", "c": "3", "d": "4"}
    jsonp = core.patch_namespaced_config_map(
        "p", NS, [{"op": "replace", "path": "/data/b", "value": "two"}]
    )
    assert jsonp.data["b"] == "two"
    stale = {"metadata": {"resourceVersion": merged.metadata.resource_version}, "data": {"e": "5"}}
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("p", NS, stale)
    assert err.value.status == 409


def test_configmap_size_limit_is_one_mebibyte(core: client.CoreV1Api) -> None:
    limit = 1024 * 1024
    core.create_namespaced_config_map(NS, cm("fits", {"k": "x" * limit}))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(NS, cm("big", {"k": "x" * limit, "l": "y"}))
    body = status_of(err)
    assert err.value.status == 422 and body["reason"] == "Invalid"
    assert body["message"] == (
        'ConfigMap "big" is invalid: []: Too long: must have at most 1048576 bytes'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueTooLong",
            "message": "Too long: must have at most 1048576 bytes",
            "field": "[]",
        }
    ]
    # binaryData counts its decoded bytes, and adds to data
    half = base64.b64encode(b"\0" * (limit // 2)).decode()
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(
            NS, cm("mixed", {"t": "x" * (limit // 2 + 1)}, binaryData={"b": half})
        )
    assert err.value.status == 422


def test_configmap_keys_immutable_and_binary_data(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(NS, cm("bad", {"no/slash": "1", "..x": "2"}))
    causes = {
        (c["field"], c["message"].split(": ", 2)[-1][:40])
        for c in status_of(err)["details"]["causes"]
    }
    assert ("data[no/slash]", "a valid config key must consist of alpha") in causes
    assert ("data[..x]", "must not start with '..'") in causes

    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(NS, cm("b64", binaryData={"k": "not base64!"}))
    assert err.value.status == 400 and "illegal base64 data" in status_of(err)["message"]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(NS, cm("dup", {"k": "1"}, binaryData={"k": "AA=="}))
    assert err.value.status == 422

    frozen = core.create_namespaced_config_map(NS, cm("frozen", {"k": "1"}, immutable=True))
    assert frozen.immutable is True
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("frozen", NS, {"data": {"k": "2"}})
    assert err.value.status == 422 and "immutable" in status_of(err)["message"]
    labelled = core.patch_namespaced_config_map("frozen", NS, {"metadata": {"labels": {"a": "b"}}})
    assert labelled.metadata.labels == {"a": "b"}  # metadata stays writable


def test_configmap_watch_sees_changes_not_no_ops(core: client.CoreV1Api) -> None:
    start = core.create_namespaced_config_map(NS, cm("w", {"a": "1"}))
    seen: list[tuple[str, dict[str, str] | None]] = []
    done = threading.Event()

    def consume() -> None:
        stream = watch.Watch()
        for event in stream.stream(
            core.list_namespaced_config_map,
            NS,
            resource_version=start.metadata.resource_version,
            timeout_seconds=5,
        ):
            seen.append((event["type"], event["object"].data))
            if event["type"] == "DELETED":
                stream.stop()
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    core.patch_namespaced_config_map("w", NS, {"data": {"a": "1"}})  # no-op: no event
    core.patch_namespaced_config_map("w", NS, {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w", NS)
    assert done.wait(10)
    assert seen == [("MODIFIED", {"a": "2"}), ("DELETED", {"a": "2"})]


def test_configmaps_are_discoverable_and_kubectl_reads_them(
    core: client.CoreV1Api, kube_api: client.ApiClient, kubectl: KubectlRunner
) -> None:
    resources = client.CoreV1Api(kube_api).get_api_resources().resources
    entry = next(r for r in resources if r.name == "configmaps")
    assert entry.namespaced and entry.kind == "ConfigMap" and "cm" in entry.short_names
    # (kubectl creates core objects as protobuf, which the double does not speak)
    core.create_namespaced_config_map(NS, cm("topoctl-status", {"revision": "abc"}))
    assert core.read_namespaced_config_map("topoctl-status", NS).data == {"revision": "abc"}
    table = kubectl("get", "cm").stdout.split()
    assert table[:3] == ["NAME", "DATA", "AGE"] and "topoctl-status" in table
    kubectl("patch", "cm", "topoctl-status", "--type=merge", "-p", '{"data":{"x":"1"}}')
    doc = json.loads(kubectl("get", "cm", "topoctl-status", "-o", "json").stdout)
    assert doc["data"] == {"revision": "abc", "x": "1"}
    kubectl("delete", "cm", "topoctl-status")
    assert core.list_namespaced_config_map(NS).items == []


# ---------------------------------------------------------------------- events


def test_events_in_both_groups_create_patch_list(
    kube_api: client.ApiClient, core: client.CoreV1Api
) -> None:
    groups = {g.name: g for g in client.ApisApi(kube_api).get_api_versions().groups}
    assert "events.k8s.io" in groups
    v1_resources = client.EventsV1Api(kube_api).get_api_resources().resources
    assert {"events"} <= {r.name for r in v1_resources}
    assert "events" in {r.name for r in core.get_api_resources().resources}

    events = client.EventsV1Api(kube_api)
    now = datetime.now(UTC).replace(microsecond=123456)
    created = events.create_namespaced_event(
        NS,
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"generateName": "gw-1."},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "regarding": {"kind": "Node", "name": "gw-1", "apiVersion": "v1"},
            "reason": "TopologyApplied",
            "note": "revision abc",
            "type": "Normal",
            "action": "Apply",
            "reportingController": "topoctl.io/controller",
            "reportingInstance": "topoctl-0",
        },
    )
    name = created.metadata.name
    assert name.startswith("gw-1.")
    patched = events.patch_namespaced_event(
        name,
        NS,
        {"series": {"count": 2, "lastObservedTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}},
    )
    assert patched.series.count == 2
    listed = events.list_namespaced_event(NS, field_selector="regarding.name=gw-1")
    assert [e.reason for e in listed.items] == ["TopologyApplied"]
    # the same Event through core/v1, renamed as the real conversion does
    core_event = raw(core, core.read_namespaced_event, name, NS)
    assert (
        core_event["involvedObject"]["name"] == "gw-1" and core_event["message"] == "revision abc"
    )
    patched_core = core.patch_namespaced_event(name, NS, {"count": 3, "message": "again"})
    assert patched_core.count == 3
    assert events.read_namespaced_event(name, NS).deprecated_count == 3
    listed_core = core.list_namespaced_event(NS, field_selector="reason=TopologyApplied")
    assert [e.message for e in listed_core.items] == ["again"]


# ---------------------------------------------------------------------- leases


def test_lease_microtime_is_parsed_as_go_does(
    apiserver: ApiServer, kube_api: client.ApiClient
) -> None:
    coord = client.CoordinationV1Api(kube_api)

    def lease(name: str, renew: str) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": renew},
        }

    def post(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{apiserver.url}/apis/coordination.k8s.io/v1/namespaces/{NS}/leases",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    code, ok = post(lease("ok", "2026-03-01T10:00:00.000001+02:00"))
    assert code == 201 and ok["spec"]["renewTime"] == "2026-03-01T08:00:00.000001Z"
    for bad in ("2026-03-01T10:00:00Z", "2026-03-01T10:00:00.123Z", "2026-03-01 10:00:00.000000Z"):
        code, body = post(lease("bad", bad))
        assert code == 400 and 'as "2006-01-02T15:04:05.000000Z07:00"' in body["message"]
    # the typed client sends isoformat(), which drops a zero fraction: the server refuses it
    typed = client.V1Lease(
        metadata=client.V1ObjectMeta(name="typed"),
        spec=client.V1LeaseSpec(holder_identity="a", renew_time=datetime(2026, 3, 1, tzinfo=UTC)),
    )
    with pytest.raises(ApiException) as err:
        coord.create_namespaced_lease(NS, typed)
    assert err.value.status == 400
    # leaseDurationSeconds must be positive, leaseTransitions not negative
    with pytest.raises(ApiException) as err:
        spec = {"leaseDurationSeconds": 0, "leaseTransitions": -1}
        coord.create_namespaced_lease(NS, {"metadata": {"name": "z"}, "spec": spec})
    fields = {c["field"] for c in status_of(err)["details"]["causes"]}
    assert err.value.status == 422 and fields == {
        "spec.leaseDurationSeconds",
        "spec.leaseTransitions",
    }


def test_lease_kubectl_get(
    apiserver: ApiServer, kube_api: client.ApiClient, kubectl: KubectlRunner
) -> None:
    coord = client.CoordinationV1Api(kube_api)
    coord.create_namespaced_lease(
        NS,
        {
            "metadata": {"name": "topoctl"},
            "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15},
        },
    )
    rows = kubectl("get", "leases").stdout.splitlines()
    assert rows[0].split() == ["NAME", "HOLDER", "AGE"] and rows[1].split()[:2] == [
        "topoctl",
        "pod-a",
    ]


# ----------------------------------------------------------------------- nodes


def test_a_bare_node_reads_back_with_status_structs_filled(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "bare"}})
    stored = apiserver.node("bare")
    assert stored is not None
    info = stored["status"]["nodeInfo"]
    assert len(info) == 10 and set(info.values()) == {""}
    assert stored["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 0}}
    typed = core.read_node("bare")  # the strict typed model needs all ten strings
    assert typed.status.node_info.kubelet_version == ""
    assert core.list_node().items[0].metadata.name == "bare"
