# mypy: disable-error-code="arg-type,union-attr,index,operator,type-var"
# (the client's models type every field Optional; these tests read what they just wrote)
"""The double's CustomResourceDefinitions, watch-list and OpenAPI index, through the real
client over HTTP and kubectl: what Kilo's agent and `kubectl create -f` need of them."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.apiserver import ApiServer
from tests.apiserver.fixtures import KubectlRunner

ROOT = Path(__file__).resolve().parents[2]
KILO_CRDS = ROOT / "tests" / "apiserver" / "kilo-crds.yaml"
KILO = ("kilo.squat.ai", "v1alpha1", "peers")
KEY = "GY5aT1N9dTR/nJnT1N2f4ClZWVj0jOAld0r8ysWLyjg="


def kilo_crd() -> dict[str, Any]:
    doc = yaml.safe_load(KILO_CRDS.read_text())
    assert isinstance(doc, dict)
    return doc


def crd(
    plural: str,
    kind: str,
    group: str = "example.com",
    *,
    scope: str = "Namespaced",
    versions: tuple[str, ...] = ("v1",),
    status: bool = False,
    short_names: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A CRD whose versions are schemaless (preserve-unknown-fields), the first stored."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": plural, "kind": kind, "shortNames": list(short_names)},
            "versions": [
                {
                    "name": v,
                    "served": True,
                    "storage": i == 0,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                    **({"subresources": {"status": {}}} if status else {}),
                }
                for i, v in enumerate(versions)
            ],
        },
    }


def peer(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kilo.squat.ai/v1alpha1",
        "kind": "Peer",
        "metadata": {"name": name},
        "spec": {"allowedIPs": ["10.5.0.1/32"], "publicKey": KEY, **spec},
    }


@pytest.fixture
def ext(kube_api: client.ApiClient) -> client.ApiextensionsV1Api:
    return client.ApiextensionsV1Api(kube_api)


@pytest.fixture
def custom(kube_api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


def raw(
    apiserver: ApiServer, method: str, path: str, body: Any = None, ctype: str | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": ctype} if ctype else {}
    request = urllib.request.Request(apiserver.url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def watch_lines(apiserver: ApiServer, path: str, until: int) -> list[dict[str, Any]]:
    """The first `until` events of a watch, as the JSON lines the server sent."""
    with urllib.request.urlopen(apiserver.url + path, timeout=5) as resp:
        events = []
        for line in resp:
            events.append(json.loads(line))
            if len(events) == until:
                break
        return events


# ------------------------------------------------------------ Kilo's own CRD


def test_kilo_crd_serves_peers_at_once(
    apiserver: ApiServer, ext: client.ApiextensionsV1Api, custom: client.CustomObjectsApi
) -> None:
    with pytest.raises(ApiException) as gone:
        custom.list_cluster_custom_object(*KILO)
    assert gone.value.status == 404
    created = ext.create_custom_resource_definition(kilo_crd())
    assert created.metadata.name == "peers.kilo.squat.ai"
    assert created.metadata.generation == 1
    conditions = {c.type: c.status for c in created.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert created.status.accepted_names.kind == "Peer"
    assert created.status.stored_versions == ["v1alpha1"]
    # what kg asks before it starts its peer informer
    read = ext.read_custom_resource_definition("peers.kilo.squat.ai")
    assert read.spec.names.plural == "peers" and read.spec.scope == "Cluster"

    made = custom.create_cluster_custom_object(*KILO, peer("laptop", persistentKeepalive=10))
    assert made["metadata"]["generation"] == 1 and made["metadata"]["uid"]
    assert made["spec"]["persistentKeepalive"] == 10
    listed = custom.list_cluster_custom_object(*KILO)
    assert listed["kind"] == "PeerList" and listed["apiVersion"] == "kilo.squat.ai/v1alpha1"
    assert [p["metadata"]["name"] for p in listed["items"]] == ["laptop"]
    assert apiserver.objects("Peer")[0]["spec"]["publicKey"] == KEY


def test_discovery_lists_a_crd_until_it_is_deleted(
    apiserver: ApiServer, ext: client.ApiextensionsV1Api
) -> None:
    assert "kilo.squat.ai" not in {g["name"] for g in raw(apiserver, "GET", "/apis")[1]["groups"]}
    ext.create_custom_resource_definition(kilo_crd())
    groups = {g["name"]: g for g in raw(apiserver, "GET", "/apis")[1]["groups"]}
    assert groups["kilo.squat.ai"]["preferredVersion"]["groupVersion"] == "kilo.squat.ai/v1alpha1"
    code, group = raw(apiserver, "GET", "/apis/kilo.squat.ai")
    assert code == 200 and group["kind"] == "APIGroup"
    code, listing = raw(apiserver, "GET", "/apis/kilo.squat.ai/v1alpha1")
    assert code == 200
    assert [(r["name"], r["kind"], r["namespaced"]) for r in listing["resources"]] == [
        ("peers", "Peer", False)
    ]
    ext.delete_custom_resource_definition("peers.kilo.squat.ai")
    assert "kilo.squat.ai" not in {g["name"] for g in raw(apiserver, "GET", "/apis")[1]["groups"]}
    assert raw(apiserver, "GET", "/apis/kilo.squat.ai/v1alpha1/peers")[0] == 404


def test_versions_are_preferred_as_kubernetes_orders_them(
    apiserver: ApiServer, ext: client.ApiextensionsV1Api, custom: client.CustomObjectsApi
) -> None:
    ext.create_custom_resource_definition(
        crd("widgets", "Widget", versions=("v1beta1", "v2alpha1", "v1"))
    )
    group = raw(apiserver, "GET", "/apis/example.com")[1]
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1", "v2alpha1"]
    assert group["preferredVersion"]["version"] == "v1"
    # one storage for every version: an object written through one is read through another
    body = {"apiVersion": "example.com/v1beta1", "kind": "Widget", "metadata": {"name": "w"}}
    custom.create_namespaced_custom_object("example.com", "v1beta1", "default", "widgets", body)
    read = custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w")
    assert read["apiVersion"] == "example.com/v1"


# ------------------------------------------------ objects: the Nodes' semantics


def test_custom_objects_keep_unknown_fields_and_count_generations(
    custom: client.CustomObjectsApi, ext: client.ApiextensionsV1Api
) -> None:
    ext.create_custom_resource_definition(kilo_crd())
    custom.create_cluster_custom_object(
        *KILO, {**peer("p"), "extra": {"kept": [1, "two"]}, "metadata": {"name": "p"}}
    )
    got = custom.get_cluster_custom_object(*KILO, "p")
    assert got["extra"] == {"kept": [1, "two"]}  # schemaless, as preserve-unknown-fields
    labelled = custom.patch_cluster_custom_object(*KILO, "p", {"metadata": {"labels": {"a": "b"}}})
    assert labelled["metadata"]["generation"] == 1  # metadata only: no new generation
    moved = custom.patch_cluster_custom_object(*KILO, "p", {"spec": {"persistentKeepalive": 5}})
    assert moved["metadata"]["generation"] == 2
    assert int(moved["metadata"]["resourceVersion"]) > int(labelled["metadata"]["resourceVersion"])
    same = custom.patch_cluster_custom_object(*KILO, "p", {"spec": {"persistentKeepalive": 5}})
    assert same["metadata"]["resourceVersion"] == moved["metadata"]["resourceVersion"]


def test_custom_objects_conflict_on_a_stale_resource_version(
    custom: client.CustomObjectsApi, ext: client.ApiextensionsV1Api
) -> None:
    ext.create_custom_resource_definition(kilo_crd())
    first: Any = custom.create_cluster_custom_object(*KILO, peer("p"))
    custom.patch_cluster_custom_object(*KILO, "p", {"metadata": {"annotations": {"x": "1"}}})
    stale = {**first, "spec": {**first["spec"], "persistentKeepalive": 9}}
    with pytest.raises(ApiException) as err:
        custom.replace_cluster_custom_object(*KILO, "p", stale)
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "Conflict"
    with pytest.raises(ApiException) as exists:
        custom.create_cluster_custom_object(*KILO, peer("p"))
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"
    assert "peers.kilo.squat.ai" in json.loads(exists.value.body)["message"]
    custom.delete_cluster_custom_object(*KILO, "p")
    with pytest.raises(ApiException) as missing:
        custom.get_cluster_custom_object(*KILO, "p")
    assert missing.value.status == 404


def test_patch_types_of_custom_objects(
    apiserver: ApiServer, ext: client.ApiextensionsV1Api
) -> None:
    ext.create_custom_resource_definition(kilo_crd())
    apiserver.seed(peer("p"))
    path = "/apis/kilo.squat.ai/v1alpha1/peers/p"
    code, body = raw(
        apiserver, "PATCH", path, {"spec": {"a": 1}}, "application/strategic-merge-patch+json"
    )
    assert code == 415 and body["reason"] == "UnsupportedMediaType"
    assert "application/merge-patch+json" in body["message"]
    ops = [{"op": "add", "path": "/spec/allowedIPs/-", "value": "10.5.0.2/32"}]
    code, body = raw(apiserver, "PATCH", path, ops, "application/json-patch+json")
    assert code == 200 and body["spec"]["allowedIPs"] == ["10.5.0.1/32", "10.5.0.2/32"]
    code, body = raw(
        apiserver, "PATCH", path, {"spec": {"allowedIPs": None}}, "application/merge-patch+json"
    )
    assert code == 200 and "allowedIPs" not in body["spec"]


def test_status_subresource_of_a_custom_resource(
    custom: client.CustomObjectsApi, ext: client.ApiextensionsV1Api
) -> None:
    ext.create_custom_resource_definition(crd("widgets", "Widget", status=True))
    args = ("example.com", "v1", "default", "widgets")
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": 1}, "status": {"phase": "ignored"}}  # fmt: skip
    made = custom.create_namespaced_custom_object(*args, body)
    assert "status" not in made  # create cannot set status
    status = custom.patch_namespaced_custom_object_status(
        *args,
        "w",
        {
            "status": {"phase": "Ready"},
            "metadata": {"labels": {"x": "y"}},
            "spec": {"size": 7},
        },
    )
    assert status["status"] == {"phase": "Ready"}
    assert status["spec"] == {"size": 1} and "labels" not in status["metadata"]
    assert status["metadata"]["generation"] == 1  # status is not a new generation
    main = custom.patch_namespaced_custom_object(
        *args, "w", {"spec": {"size": 2}, "status": {"phase": "lost"}}
    )
    assert main["status"] == {"phase": "Ready"} and main["metadata"]["generation"] == 2


def test_namespaced_custom_objects_need_and_follow_their_namespace(
    apiserver: ApiServer, custom: client.CustomObjectsApi, ext: client.ApiextensionsV1Api
) -> None:
    ext.create_custom_resource_definition(crd("widgets", "Widget", short_names=("wd",)))
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object("example.com", "v1", "nowhere", "widgets", body)
    assert err.value.status == 404
    core = client.CoreV1Api(custom.api_client)
    core.create_namespace({"metadata": {"name": "team"}})
    custom.create_namespaced_custom_object("example.com", "v1", "team", "widgets", body)
    custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", body)
    everywhere = custom.list_custom_object_for_all_namespaces("example.com", "v1", "widgets")
    assert sorted(i["metadata"]["namespace"] for i in everywhere["items"]) == ["default", "team"]
    core.delete_namespace("team")
    assert [o["metadata"]["namespace"] for o in apiserver.objects("Widget")] == ["default"]


def test_watch_sees_custom_objects_and_ends_when_the_crd_is_deleted(
    apiserver: ApiServer, custom: client.CustomObjectsApi, ext: client.ApiextensionsV1Api
) -> None:
    ext.create_custom_resource_definition(kilo_crd())
    apiserver.seed(peer("a"))
    rv = custom.list_cluster_custom_object(*KILO)["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []
    stream = watch.Watch().stream(
        custom.list_cluster_custom_object, *KILO, resource_version=rv, timeout_seconds=10
    )
    custom.create_cluster_custom_object(*KILO, peer("b"))
    for event in stream:
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if len(seen) == 1:
            ext.delete_custom_resource_definition("peers.kilo.squat.ai")
    # the objects go with their CRD, the watcher sees them go, then its stream ends
    assert seen == [("ADDED", "b"), ("DELETED", "a"), ("DELETED", "b")]
    assert apiserver.open_watches == 0
    ext.create_custom_resource_definition(kilo_crd())
    assert custom.list_cluster_custom_object(*KILO)["items"] == []  # nothing comes back


def test_crd_validation_is_422(ext: client.ApiextensionsV1Api) -> None:
    bad = crd("widgets", "Widget")
    bad["metadata"]["name"] = "gadgets.example.com"
    bad["spec"]["versions"][0]["storage"] = False
    bad["spec"]["scope"] = "Galaxy"
    with pytest.raises(ApiException) as err:
        ext.create_custom_resource_definition(bad)
    status = json.loads(err.value.body)
    assert err.value.status == 422 and status["reason"] == "Invalid"
    fields = {c["field"] for c in status["details"]["causes"]}
    assert fields == {"metadata.name", "spec.scope", "spec.versions"}
    no_dot = crd("widgets", "Widget", group="example")
    with pytest.raises(ApiException) as err:
        ext.create_custom_resource_definition(no_dot)
    assert "should be a domain with at least one dot" in json.loads(err.value.body)["message"]


# ---------------------------------------------------------------- watch-list


@pytest.mark.parametrize(
    ("seed_path", "watch_path"),
    [
        ("nodes", "/api/v1/nodes"),
        ("peers", "/apis/kilo.squat.ai/v1alpha1/peers"),
        ("configmaps", "/api/v1/namespaces/default/configmaps"),
    ],
)
def test_watch_list_sends_initial_events_then_the_end_bookmark(
    apiserver: ApiServer, ext: client.ApiextensionsV1Api, seed_path: str, watch_path: str
) -> None:
    """What client-go's reflector asks with WatchList (kg's Node and Peer informers)."""
    ext.create_custom_resource_definition(kilo_crd())
    if seed_path == "nodes":
        apiserver.seed_node("n2")
        apiserver.seed_node("n1")
    elif seed_path == "peers":
        apiserver.seed(peer("n2"), peer("n1"))
    else:
        for name in ("n2", "n1"):
            apiserver.seed({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": name, "namespace": "default"}})  # fmt: skip
    rv = apiserver.resource_version
    query = "?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
    query += "&allowWatchBookmarks=true&timeoutSeconds=5"
    events = watch_lines(apiserver, watch_path + query, until=3)
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "n1"),
        ("ADDED", "n2"),
        ("BOOKMARK", None),
    ]
    end = events[2]["object"]
    assert end["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(end["metadata"]["resourceVersion"]) == rv
    assert end["kind"] == events[0]["object"]["kind"]


def test_watch_list_options_are_validated_as_the_real_server_does(apiserver: ApiServer) -> None:
    code, body = raw(apiserver, "GET", "/api/v1/nodes?watch=true&sendInitialEvents=true")
    assert code == 422 and body["details"]["kind"] == "ListOptions"
    assert (
        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
        in (body["message"])
    )
    code, body = raw(apiserver, "GET", "/api/v1/nodes?watch=true&resourceVersionMatch=NotOlderThan")
    assert code == 422 and "forbidden for watch unless sendInitialEvents" in body["message"]
    code, body = raw(apiserver, "GET", "/api/v1/nodes?sendInitialEvents=true")
    assert code == 422 and "sendInitialEvents is forbidden for list" in body["message"]
    code, body = raw(apiserver, "GET", "/api/v1/nodes?resourceVersionMatch=NotOlderThan")
    assert code == 422 and "unless resourceVersion is provided" in body["message"]


# ------------------------------------------------------------------- kubectl


def test_kubectl_creates_kilo_crd_and_peers(
    apiserver: ApiServer, kubectl: KubectlRunner, tmp_path: Path
) -> None:
    assert "created" in kubectl("create", "-f", str(KILO_CRDS)).stdout
    assert "peers.kilo.squat.ai" in kubectl("get", "crd").stdout
    resources = kubectl("api-resources", "--api-group=kilo.squat.ai").stdout
    assert "peers" in resources and "Peer" in resources
    manifest = tmp_path / "peer.yaml"
    manifest.write_text(yaml.safe_dump(peer("laptop", persistentKeepalive=10)))
    assert "created" in kubectl("apply", "-f", str(manifest)).stdout
    # kubectl let the server validate fields (it found fieldValidation in /openapi/v3)
    posts = [r for r in apiserver.log if r.method == "POST" and r.resource == "peers"]
    assert posts and posts[-1].query.get("fieldValidation") == "Strict"
    assert "laptop" in kubectl("get", "peers").stdout
    kubectl("annotate", "peer", "laptop", "owner=ops")
    assert apiserver.get("Peer", "laptop")["metadata"]["annotations"]["owner"] == "ops"
    got = json.loads(kubectl("get", "peer", "laptop", "-o", "json").stdout)
    assert got["spec"]["persistentKeepalive"] == 10
    kubectl("delete", "crd", "peers.kilo.squat.ai")
    assert apiserver.objects("CustomResourceDefinition") == []
    gone = kubectl("get", "peers.kilo.squat.ai", check=False)
    assert gone.returncode != 0


def test_openapi_index_names_every_group_version(
    apiserver: ApiServer, ext: client.ApiextensionsV1Api
) -> None:
    ext.create_custom_resource_definition(kilo_crd())
    index = raw(apiserver, "GET", "/openapi/v3")[1]["paths"]
    assert {"api/v1", "apis/apiextensions.k8s.io/v1", "apis/kilo.squat.ai/v1alpha1"} <= set(index)
    _, doc = raw(apiserver, "GET", index["apis/kilo.squat.ai/v1alpha1"]["serverRelativeURL"])
    patch = doc["paths"]["/apis/kilo.squat.ai/v1alpha1/peers/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "kilo.squat.ai", "version": "v1alpha1", "kind": "Peer"
    }  # fmt: skip
    assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][2].items()


# --------------------------------------------------------------------- --host


def test_standalone_double_listens_on_the_host_given() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.apiserver", "--host", "127.0.0.2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.2:")
        api = client.ApiClient(client.Configuration(host=url))
        versions = client.CoreApi(api).get_api_versions()
        api.close()
        assert versions.server_address_by_client_cidrs[0].server_address.startswith("127.0.0.2:")
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
