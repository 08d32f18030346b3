"""The API-server double, exercised through the real `kubernetes` client and kubectl.

These tests pin the behaviours topoctl relies on (and that a real
kube-apiserver has), so adapter tests built on the double mean something.
"""
# The official client's models type every field Optional; a None where a test expects a
# value is a test failure anyway, so these checks would only add None-guards everywhere.
# mypy: disable-error-code="union-attr,index,operator,arg-type"

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.apiserver import ApiServer, make_lease, make_node
from tests.apiserver.faults import RequestInfo

MERGE = "application/merge-patch+json"


@pytest.fixture
def core(kube_api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


@pytest.fixture
def coord(kube_api: client.ApiClient) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(kube_api)


class Background:
    """Run `fn` in a thread; `join()` re-raises whatever it raised."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.error: BaseException | None = None

        def target() -> None:
            try:
                fn()
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def join(self, timeout: float = 5.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background writer did not finish"
        if self.error is not None:
            raise self.error


def lease_model(name: str, namespace: str = "kube-system", **kwargs: Any) -> client.V1Lease:
    """A typed V1Lease built from the `make_lease` dict."""
    lease = client.V1Lease.from_dict(make_lease(name, namespace, **kwargs))
    assert lease is not None
    return lease


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def events_before_bookmark(
    apiserver: ApiServer, core: client.CoreV1Api, rv: str, **kwargs: Any
) -> list[tuple[str, str]]:
    """Watch nodes from `rv`; (type, name) of every event before the first BOOKMARK.

    The double sends a bookmark only once everything up to it has been delivered,
    so this shows exactly what a watcher gets, without waiting for a timeout.
    """
    apiserver.bookmark_interval = 0.05
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_node, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=5, **kwargs
    ):
        if event["type"] == "BOOKMARK":
            w.stop()
            break
        seen.append((event["type"], event["object"].metadata.name))
    return seen


def raw_get(apiserver: ApiServer, path: str) -> tuple[int, Any]:
    with urllib.request.urlopen(apiserver.url + path, timeout=5) as resp:
        data = resp.read()
        ctype = resp.headers.get("Content-Type", "")
        return resp.status, json.loads(data) if "json" in ctype else data.decode()


# --------------------------------------------------------------- basic CRUD


def test_create_get_list_delete_node(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    created = core.create_node(
        client.V1Node(metadata=client.V1ObjectMeta(name="n1", labels={"site": "a"}))
    )
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    rv = int(created.metadata.resource_version)

    got = core.read_node("n1")
    assert got.metadata.resource_version == str(rv)
    assert got.metadata.labels == {"site": "a"}

    listed = core.list_node()
    assert [n.metadata.name for n in listed.items] == ["n1"]
    assert int(listed.metadata.resource_version) >= rv
    assert listed.kind == "NodeList"

    core.delete_node("n1")
    with pytest.raises(ApiException) as err:
        core.read_node("n1")
    assert err.value.status == 404
    status = status_of(err.value)
    assert status["kind"] == "Status" and status["reason"] == "NotFound"
    assert status["details"] == {"name": "n1", "kind": "nodes"}
    assert apiserver.node("n1") is None


def test_create_existing_name_is_already_exists(core: client.CoreV1Api) -> None:
    body = client.V1Node(metadata=client.V1ObjectMeta(name="dup"))
    core.create_node(body)
    with pytest.raises(ApiException) as err:
        core.create_node(body)
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "AlreadyExists"
    assert status_of(err.value)["message"] == 'nodes "dup" already exists'


def test_create_with_resource_version_is_refused(core: client.CoreV1Api) -> None:
    body = client.V1Node(metadata=client.V1ObjectMeta(name="n1", resource_version="5"))
    with pytest.raises(ApiException) as err:
        core.create_node(body)
    assert err.value.status == 500
    assert "resourceVersion should not be set" in status_of(err.value)["message"]


def test_seeded_node_keeps_status_and_typed_fields(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("gw-1", external_ip="198.51.100.7", labels={"site": "fra"})
    node = core.read_node("gw-1")
    assert {(a.type, a.address) for a in node.status.addresses} == {
        ("InternalIP", "10.0.0.10"),
        ("ExternalIP", "198.51.100.7"),
        ("Hostname", "gw-1"),
    }
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "True"
    assert node.status.node_info.kubelet_version == "v1.32.4"
    assert node.status.images and node.status.images[0].size_bytes > 0


# ------------------------------------------------------------------ listing


def test_label_selectors(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("a", labels={"site": "fra", "role": "gw"})
    apiserver.seed_node("b", labels={"site": "ams", "role": "gw"})
    apiserver.seed_node("c", labels={"site": "ams"})

    def names(selector: str) -> list[str]:
        return [str(n.metadata.name) for n in core.list_node(label_selector=selector).items]

    assert names("site=ams") == ["b", "c"]
    assert names("site==fra") == ["a"]
    assert names("site!=ams") == ["a"]
    assert names("site in (fra, ams),role") == ["a", "b"]
    assert names("site notin (fra)") == ["b", "c"]
    assert names("!role") == ["c"]
    assert names("role,site=ams") == ["b"]
    with pytest.raises(ApiException) as err:
        core.list_node(label_selector="site in (fra")
    assert err.value.status == 400


def test_field_selectors(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("a")
    apiserver.seed_node("b", unschedulable=True)
    assert [n.metadata.name for n in core.list_node(field_selector="metadata.name=b").items] == [
        "b"
    ]
    assert [
        n.metadata.name for n in core.list_node(field_selector="spec.unschedulable=true").items
    ] == ["b"]
    assert [n.metadata.name for n in core.list_node(field_selector="metadata.name!=b").items] == [
        "a"
    ]
    with pytest.raises(ApiException) as err:
        core.list_node(field_selector="status.phase=Running")
    assert err.value.status == 400
    assert "field label not supported" in status_of(err.value)["message"]


def test_limit_and_continue_page_a_consistent_snapshot(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    for i in range(5):
        apiserver.seed_node(f"n{i}")
    first = core.list_node(limit=2)
    assert [n.metadata.name for n in first.items] == ["n0", "n1"]
    assert first.metadata._continue and first.metadata.remaining_item_count == 3

    apiserver.seed_node("n2a")  # created after the first page: not in this list
    apiserver.delete("Node", "n3")  # deleted after the first page: still in this list
    second = core.list_node(limit=2, _continue=first.metadata._continue)
    third = core.list_node(limit=2, _continue=second.metadata._continue)
    assert [n.metadata.name for n in second.items] == ["n2", "n3"]
    assert [n.metadata.name for n in third.items] == ["n4"]
    assert not third.metadata._continue
    assert (
        first.metadata.resource_version
        == second.metadata.resource_version
        == third.metadata.resource_version
    )

    fresh = core.list_node(limit=2)
    apiserver.seed_node("n5")
    apiserver.compact()  # forgets the revision `fresh` was listed at
    with pytest.raises(ApiException) as err:
        core.list_node(limit=2, _continue=fresh.metadata._continue)
    assert err.value.status == 410
    assert status_of(err.value)["reason"] == "Expired"


def test_list_resource_version_semantics(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("a")
    old_rv = core.list_node().metadata.resource_version
    apiserver.seed_node("b")
    exact = core.list_node(resource_version=old_rv, resource_version_match="Exact")
    assert [n.metadata.name for n in exact.items] == ["a"]
    assert exact.metadata.resource_version == old_rv
    assert len(core.list_node(resource_version="0").items) == 2
    with pytest.raises(ApiException) as err:
        core.list_node(resource_version=str(apiserver.resource_version + 100))
    assert err.value.status == 504


# ---------------------------------------------------------------- patching


def test_strategic_merge_follows_schema_patch_metadata(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node(
        "n1",
        labels={"keep": "1", "drop": "1"},
        taints=[
            {"key": "a", "effect": "NoSchedule"},
            {"key": "b", "value": "x", "effect": "NoExecute"},
        ],
    )
    # metadata merges key by key; null deletes; spec.taints is atomic: replaced wholesale
    patched = core.patch_node(
        "n1",
        {
            "metadata": {"labels": {"drop": None, "new": "2"}},
            "spec": {"taints": [{"key": "c", "effect": "PreferNoSchedule"}]},
        },
    )
    assert patched.metadata.labels["keep"] == "1" and patched.metadata.labels["new"] == "2"
    assert "drop" not in patched.metadata.labels
    assert [(t.key, t.effect) for t in patched.spec.taints] == [("c", "PreferNoSchedule")]

    # status.addresses and status.conditions merge by `type`
    status = core.patch_node_status(
        "n1",
        {
            "status": {
                "addresses": [
                    {"type": "ExternalIP", "address": "203.0.113.9"},
                    {"type": "InternalIP", "address": "10.9.9.9"},
                ],
                "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}],
            }
        },
    )
    addresses = [(a.type, a.address) for a in status.status.addresses]
    assert sorted(addresses) == [
        ("ExternalIP", "203.0.113.9"),
        ("Hostname", "n1"),
        ("InternalIP", "10.9.9.9"),
    ]
    conditions = {c.type: (c.status, c.reason) for c in status.status.conditions}
    assert conditions["Ready"] == ("False", "KubeletNotReady")
    assert conditions["DiskPressure"][0] == "False"  # untouched entries survive
    assert len(status.status.conditions) == 4


def test_strategic_merge_directives(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("n1", external_ip="203.0.113.9")
    deleted = core.patch_node_status(
        "n1", {"status": {"addresses": [{"type": "ExternalIP", "$patch": "delete"}]}}
    )
    assert [a.type for a in deleted.status.addresses] == ["InternalIP", "Hostname"]

    replaced = core.patch_node_status(
        "n1",
        {
            "status": {
                "addresses": [{"$patch": "replace"}, {"type": "InternalIP", "address": "10.1.1.1"}]
            }
        },
    )
    assert [(a.type, a.address) for a in replaced.status.addresses] == [("InternalIP", "10.1.1.1")]

    core.patch_node("n1", {"metadata": {"finalizers": ["a.example/x", "b.example/y"]}})
    pruned = core.patch_node(
        "n1", {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/x"]}}
    )
    assert pruned.metadata.finalizers == ["b.example/y"]

    ordered = core.patch_node_status(
        "n1",
        {
            "status": {
                "$setElementOrder/addresses": [{"type": "Hostname"}, {"type": "InternalIP"}],
                "addresses": [{"type": "Hostname", "address": "n1"}],
            }
        },
    )
    assert [a.type for a in ordered.status.addresses] == ["Hostname", "InternalIP"]


def test_json_patch_and_merge_patch(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("n1", taints=[{"key": "a", "effect": "NoSchedule"}])
    rv = apiserver.node("n1")["metadata"]["resourceVersion"]

    patched = core.patch_node(
        "n1",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {
                "op": "add",
                "path": "/metadata/annotations",
                "value": {"kilo.squat.ai/leader": "true"},
            },
            {"op": "replace", "path": "/spec/taints/0/effect", "value": "NoExecute"},
        ],
    )
    assert patched.metadata.annotations == {"kilo.squat.ai/leader": "true"}
    assert patched.spec.taints[0].effect == "NoExecute"
    assert apiserver.log.entries[-1].content_type == "application/json-patch+json"

    merged = core.patch_node(
        "n1",
        {"metadata": {"annotations": {"kilo.squat.ai/leader": None, "x": "y"}}},
        _content_type=MERGE,
    )
    assert merged.metadata.annotations == {"x": "y"}
    # a merge patch replaces lists: addresses are not merged by type
    lists = core.patch_node_status(
        "n1",
        {"status": {"addresses": [{"type": "ExternalIP", "address": "192.0.2.1"}]}},
        _content_type=MERGE,
    )
    assert [a.type for a in lists.status.addresses] == ["ExternalIP"]


def test_json_patch_failed_test_op_is_422(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("n1")
    before = apiserver.resource_version
    with pytest.raises(ApiException) as err:
        core.patch_node(
            "n1",
            [
                {"op": "test", "path": "/metadata/labels/kubernetes.io~1hostname", "value": "no"},
                {"op": "add", "path": "/metadata/labels/x", "value": "y"},
            ],
        )
    assert err.value.status == 422
    assert status_of(err.value)["reason"] == "Invalid"
    assert apiserver.resource_version == before
    assert "x" not in apiserver.node("n1")["metadata"]["labels"]


def test_apply_patch_is_unsupported_media_type(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("n1")
    with pytest.raises(ApiException) as err:
        core.patch_node(
            "n1", {"metadata": {"labels": {"a": "b"}}}, _content_type="application/apply-patch+yaml"
        )
    assert err.value.status == 415


# ----------------------------------------------------- optimistic concurrency


def test_stale_resource_version_conflicts(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("n1")
    stale = core.read_node("n1")
    apiserver.mutate_node("n1", lambda n: n["metadata"]["labels"].update(other="writer"))

    with pytest.raises(ApiException) as err:
        core.patch_node(
            "n1",
            {
                "metadata": {
                    "resourceVersion": stale.metadata.resource_version,
                    "labels": {"a": "b"},
                }
            },
        )
    assert err.value.status == 409
    status = status_of(err.value)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]

    stale.metadata.labels["a"] = "b"
    with pytest.raises(ApiException) as err:
        core.replace_node("n1", stale)
    assert err.value.status == 409

    fresh = core.read_node("n1")
    wrong_uid = core.read_node("n1")
    wrong_uid.metadata.uid = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ApiException) as err:
        core.replace_node("n1", wrong_uid)  # the body's uid is a precondition: 409, not 422
    assert err.value.status == 409
    assert "Precondition failed: UID" in status_of(err.value)["message"]

    fresh.metadata.labels["a"] = "b"
    replaced = core.replace_node("n1", fresh)
    assert replaced.metadata.labels["a"] == "b"
    assert replaced.metadata.labels["other"] == "writer"
    assert int(replaced.metadata.resource_version) > int(fresh.metadata.resource_version)


def test_delete_preconditions(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    node = apiserver.seed_node("n1")
    uid, rv = node["metadata"]["uid"], node["metadata"]["resourceVersion"]
    for pre in (
        client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000"),
        client.V1Preconditions(resource_version=str(int(rv) - 1)),
    ):
        with pytest.raises(ApiException) as err:
            core.delete_node("n1", body=client.V1DeleteOptions(preconditions=pre))
        assert err.value.status == 409
        assert "Precondition failed" in status_of(err.value)["message"]
    assert apiserver.node("n1") is not None
    core.delete_node(
        "n1",
        body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=uid, resource_version=rv)
        ),
    )
    assert apiserver.node("n1") is None


def test_concurrent_writer_between_read_and_write(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("n1")
    node = core.read_node("n1")

    def kubelet_heartbeat(_: RequestInfo) -> None:
        apiserver.mutate_node("n1", lambda n: n["metadata"]["labels"].update(beat="1"))

    apiserver.faults.before(kubelet_heartbeat, method="PUT")
    node.metadata.labels["topoctl"] = "yes"
    with pytest.raises(ApiException) as err:
        core.replace_node("n1", node)
    assert err.value.status == 409


def test_noop_write_keeps_resource_version_and_emits_nothing(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("n1", labels={"a": "b"})
    rv = core.read_node("n1").metadata.resource_version
    history = len(apiserver.store.history("nodes"))

    same = core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
    assert same.metadata.resource_version == rv
    same = core.patch_node("n1", [{"op": "replace", "path": "/metadata/labels/a", "value": "b"}])
    assert same.metadata.resource_version == rv
    node = core.read_node("n1")
    assert core.replace_node("n1", node).metadata.resource_version == rv
    assert len(apiserver.store.history("nodes")) == history

    assert events_before_bookmark(apiserver, core, rv) == []


def test_status_subresource_separation(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("n1")
    main = core.patch_node(
        "n1",
        {
            "spec": {"unschedulable": True},
            "status": {"addresses": [{"type": "ExternalIP", "address": "192.0.2.1"}]},
        },
    )
    assert main.spec.unschedulable is True
    assert "ExternalIP" not in [a.type for a in main.status.addresses]

    status = core.patch_node_status(
        "n1",
        {
            "spec": {"unschedulable": False},
            "status": {"addresses": [{"type": "ExternalIP", "address": "192.0.2.1"}]},
        },
    )
    assert status.spec.unschedulable is True
    assert "ExternalIP" in [a.type for a in status.status.addresses]

    node = core.read_node_status("n1")
    node.status.conditions = [c for c in node.status.conditions if c.type == "Ready"]
    node.spec.unschedulable = False
    replaced = core.replace_node_status("n1", node)
    assert [c.type for c in replaced.status.conditions] == ["Ready"]
    assert replaced.spec.unschedulable is True


def test_unknown_fields_dropped_with_warning_or_rejected_when_strict(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("n1")
    patched = core.patch_node("n1", {"spec": {"taint": [{"key": "a"}]}})
    assert patched.spec.taints is None
    warning = apiserver.log.entries[-1]
    assert warning.status == 200
    with pytest.raises(ApiException) as err:
        core.patch_node("n1", {"spec": {"taint": []}}, field_validation="Strict")
    assert err.value.status == 400
    assert 'unknown field "spec.taint"' in status_of(err.value)["message"]


def test_validation_errors_are_422(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("n1")
    with pytest.raises(ApiException) as err:
        core.patch_node("n1", {"metadata": {"labels": {"bad": "not a label value!"}}})
    assert err.value.status == 422
    status = status_of(err.value)
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "metadata.labels"
    with pytest.raises(ApiException) as err:
        core.patch_node("n1", {"spec": {"taints": [{"key": "a", "effect": "Sometimes"}]}})
    assert err.value.status == 422
    assert "spec.taints[0].effect" in status_of(err.value)["message"]
    with pytest.raises(ApiException) as err:
        core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="Upper_Case")))
    assert err.value.status == 422


def test_dry_run_changes_nothing(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("n1")
    rv = apiserver.resource_version
    result = core.patch_node("n1", {"metadata": {"labels": {"x": "y"}}}, dry_run="All")
    assert result.metadata.labels["x"] == "y"
    assert "x" not in apiserver.node("n1")["metadata"]["labels"]
    assert apiserver.resource_version == rv


def test_finalizers_defer_deletion(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    node = make_node("n1")
    node["metadata"]["finalizers"] = ["example.com/hold"]
    apiserver.seed_node(node)
    core.delete_node("n1")
    held = core.read_node("n1")
    assert held.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as err:
        core.patch_node("n1", {"metadata": {"finalizers": ["example.com/another"]}})
    assert err.value.status == 422  # no new finalizers once deletion started
    core.patch_node(
        "n1", {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/hold"]}}
    )
    assert apiserver.node("n1") is None


# ------------------------------------------------------------------- watch


def test_watch_streams_added_modified_deleted(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    rv = core.list_node().metadata.resource_version

    def writer() -> None:
        assert apiserver.wait_for_watches(1)
        core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="w1")))
        core.patch_node("w1", {"metadata": {"labels": {"a": "b"}}})
        core.delete_node("w1")

    bg = Background(writer)
    w = watch.Watch()
    seen: list[tuple[str, str, str]] = []
    for event in w.stream(core.list_node, resource_version=rv, timeout_seconds=5):
        obj = event["object"]
        seen.append((event["type"], obj.metadata.name, obj.metadata.resource_version))
        if event["type"] == "DELETED":
            w.stop()
    bg.join()
    assert [(t, n) for t, n, _ in seen] == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    rvs = [int(r) for _, _, r in seen]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    assert isinstance(event["object"], client.V1Node)


def test_watch_without_resource_version_starts_with_current_state(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("a")
    apiserver.seed_node("b")
    w = watch.Watch()
    names = []
    for event in w.stream(core.list_node, timeout_seconds=5):
        assert event["type"] == "ADDED"
        names.append(event["object"].metadata.name)
        if len(names) == 2:
            w.stop()
    assert names == ["a", "b"]


def test_watch_replays_history_after_resource_version(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    rv = core.list_node().metadata.resource_version
    apiserver.seed_node("a")
    apiserver.mutate_node("a", lambda n: n["metadata"]["labels"].update(x="1"))
    assert events_before_bookmark(apiserver, core, rv) == [("ADDED", "a"), ("MODIFIED", "a")]


def test_watch_bookmarks(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.bookmark_interval = 0.05
    rv = core.list_node().metadata.resource_version
    w = watch.Watch()
    bookmarks = []
    for event in w.stream(
        core.list_node, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=3
    ):
        assert event["type"] == "BOOKMARK"
        bookmarks.append(event["raw_object"])
        if len(bookmarks) == 2:
            w.stop()
    assert len(bookmarks) == 2
    assert bookmarks[0]["kind"] == "Node"
    assert set(bookmarks[0]["metadata"]) == {"resourceVersion"}
    assert int(bookmarks[0]["metadata"]["resourceVersion"]) >= int(rv)
    assert w.resource_version == bookmarks[-1]["metadata"]["resourceVersion"]


def test_watch_label_selector_sees_objects_enter_and_leave(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("a", labels={"site": "fra"})
    rv = core.list_node().metadata.resource_version
    apiserver.mutate_node("a", lambda n: n["metadata"]["labels"].update(site="ams"))
    apiserver.mutate_node("a", lambda n: n["metadata"]["labels"].update(site="fra"))
    apiserver.seed_node("b", labels={"site": "ams"})
    seen = events_before_bookmark(apiserver, core, rv, label_selector="site=fra")
    assert seen == [("DELETED", "a"), ("ADDED", "a")]


def test_watch_after_compaction_gets_410_and_client_raises(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    rv = core.list_node().metadata.resource_version
    apiserver.seed_node("a")
    apiserver.compact()

    # no timeout: the client retries once from the same resourceVersion, then raises
    w = watch.Watch()
    with pytest.raises(ApiException) as err:
        for _ in w.stream(core.list_node, resource_version=rv):
            pytest.fail("no event expected")
    assert err.value.status == 410
    assert "Expired" in err.value.reason
    assert apiserver.log.count(verb="watch") == 2

    # the ERROR event itself is in-stream, on a 200 response
    status, body = raw_get(apiserver, f"/api/v1/nodes?watch=true&resourceVersion={rv}")
    assert status == 200
    event = json.loads(body.splitlines()[0]) if isinstance(body, str) else body
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"

    # relist, then watch from the fresh resourceVersion: fine
    fresh = core.list_node().metadata.resource_version
    assert events_before_bookmark(apiserver, core, fresh) == []


def test_drop_watches(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    rv = core.list_node().metadata.resource_version

    def dropper() -> None:
        assert apiserver.wait_for_watches(1)
        assert apiserver.drop_watches() == 1

    bg = Background(dropper)
    started = time.monotonic()
    events = list(watch.Watch().stream(core.list_node, resource_version=rv, timeout_seconds=10))
    bg.join()
    assert events == []
    assert time.monotonic() - started < 5  # ended by the drop, not the 10 s timeout

    def reset() -> None:
        assert apiserver.wait_for_watches(1)
        apiserver.drop_watches(abrupt=True)

    bg = Background(reset)
    with pytest.raises(urllib3.exceptions.HTTPError):
        list(watch.Watch().stream(core.list_node, resource_version=rv, timeout_seconds=10))
    bg.join()


# ------------------------------------------------------------------- faults


def test_503_burst_then_recovery(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("n1")
    rule = apiserver.faults.fail(503, times=2, method="GET", path=r"^/api/v1/nodes$")
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            core.list_node()
        assert err.value.status == 503
        assert status_of(err.value)["reason"] == "ServiceUnavailable"
    assert [n.metadata.name for n in core.list_node().items] == ["n1"]
    assert rule.hits == 2 and rule.remaining == 0
    assert [e.status for e in apiserver.log.filter(verb="list")] == [503, 503, 200]


def test_429_with_retry_after_is_visible_to_writers(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("n1")
    apiserver.faults.throttle(retry_after=7, method="PATCH")
    with pytest.raises(ApiException) as err:
        core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "7"
    assert status_of(err.value)["details"]["retryAfterSeconds"] == 7
    assert core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}}).metadata.labels["a"] == "b"


def test_429_on_get_is_retried_by_urllib3(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    # urllib3's default Retry honours Retry-After for idempotent methods: callers never see it
    apiserver.seed_node("n1")
    apiserver.faults.throttle(retry_after=0, method="GET")
    assert core.read_node("n1").metadata.name == "n1"
    assert [e.status for e in apiserver.log.filter(verb="get")] == [429, 200]


def test_connection_reset(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.seed_node("n1")
    apiserver.faults.reset(method="PATCH")
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
    assert [e.status for e in apiserver.log.filter(verb="patch")] == [0]
    assert "a" not in apiserver.node("n1")["metadata"]["labels"]

    # an idempotent GET is retried transparently by urllib3
    apiserver.faults.reset(method="GET", times=1)
    assert core.read_node("n1").metadata.name == "n1"
    assert [e.status for e in apiserver.log.filter(verb="get")] == [0, 200]


def test_answer_lost_after_the_write_was_applied(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("n1")
    apiserver.faults.reset(method="PATCH", after=True)
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
    assert apiserver.node("n1")["metadata"]["labels"]["a"] == "b"  # applied nonetheless

    # urllib3 re-sends a PUT whose answer was lost: the retry carries a now stale
    # resourceVersion, so the caller sees 409 for a write that actually succeeded
    node = core.read_node("n1")
    node.metadata.labels["c"] = "d"
    apiserver.faults.reset(method="PUT", after=True)
    with pytest.raises(ApiException) as err:
        core.replace_node("n1", node)
    assert err.value.status == 409
    assert apiserver.node("n1")["metadata"]["labels"]["c"] == "d"
    assert [e.status for e in apiserver.log.filter(verb="update")] == [0, 409]


def test_an_injected_expiry_is_the_in_stream_410_of_a_compacted_version(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("n1")
    rv = core.list_node().metadata.resource_version
    apiserver.faults.expire(times=1)
    response: Any = core.list_node(
        watch=True, resource_version=rv, timeout_seconds=5, _preload_content=False
    )
    assert response.status == 200
    lines = [json.loads(line) for line in response.data.decode().splitlines() if line]
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in lines] == [
        ("ERROR", 410, "Expired")
    ]
    assert core.list_node().items  # lists are untouched
    again: Any = core.list_node(
        watch=True, resource_version=rv, timeout_seconds=1, _preload_content=False
    )
    assert b'"ERROR"' not in again.data  # `times` spent: the next watch is served


def test_an_after_hook_reacts_to_a_served_write(
    apiserver: ApiServer, core: client.CoreV1Api
) -> None:
    apiserver.seed_node("n1")

    def revert(_req: RequestInfo) -> None:
        apiserver.mutate_node("n1", lambda o: o["metadata"]["labels"].pop("a", None))

    apiserver.faults.after(revert, method="PATCH")
    answer = core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
    assert answer.metadata.labels["a"] == "b"  # the client's answer shows its own write
    assert "a" not in apiserver.node("n1")["metadata"]["labels"]  # the other writer's since


def test_latency(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    apiserver.faults.latency(0.2, path="/nodes", times=1)
    started = time.monotonic()
    core.list_node()
    assert time.monotonic() - started >= 0.2


def test_request_log_counts_lists_and_patches(apiserver: ApiServer, core: client.CoreV1Api) -> None:
    for name in ("a", "b", "c"):
        apiserver.seed_node(name)
    apiserver.log.clear()
    for node in core.list_node().items:
        core.patch_node(node.metadata.name, {"metadata": {"annotations": {"topoctl.io/x": "1"}}})
    assert apiserver.log.count(verb="list", resource="nodes") == 1
    assert apiserver.log.count(verb="patch", resource="nodes") == 3
    assert len(apiserver.log.writes()) == 3
    first = apiserver.log.filter(verb="patch")[0]
    assert first.content_type == "application/strategic-merge-patch+json"
    assert first.body == {"metadata": {"annotations": {"topoctl.io/x": "1"}}}
    assert first.name == "a" and first.status == 200


# ------------------------------------------------------ leases, events, misc


def test_lease_create_replace_and_conflicts(
    apiserver: ApiServer, coord: client.CoordinationV1Api
) -> None:
    lease = coord.create_namespaced_lease("kube-system", lease_model("topoctl", holder="pod-a"))
    assert lease.spec.holder_identity == "pod-a"
    assert lease.spec.renew_time is not None

    lease.spec.holder_identity = "pod-b"
    renewed = coord.replace_namespaced_lease("topoctl", "kube-system", lease)
    assert renewed.spec.holder_identity == "pod-b"

    with pytest.raises(ApiException) as err:
        coord.replace_namespaced_lease("topoctl", "kube-system", lease)  # stale resourceVersion
    assert err.value.status == 409

    renewed.metadata.resource_version = None
    with pytest.raises(ApiException) as err:
        coord.replace_namespaced_lease("topoctl", "kube-system", renewed)
    assert err.value.status == 422  # leases refuse unconditional updates

    with pytest.raises(ApiException) as err:
        coord.create_namespaced_lease("kube-system", lease_model("topoctl", holder="pod-c"))
    assert err.value.status == 409

    created = coord.replace_namespaced_lease("other", "kube-system", lease_model("other"))
    assert created.metadata.name == "other"  # leases allow create-on-update
    with pytest.raises(ApiException) as err:
        coord.create_namespaced_lease("missing-ns", lease_model("x", "missing-ns"))
    assert err.value.status == 404


def test_events_core_and_events_k8s_io_share_storage(
    apiserver: ApiServer, kube_api: client.ApiClient, core: client.CoreV1Api
) -> None:
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name="n1."),
        involved_object=client.V1ObjectReference(kind="Node", name="n1", api_version="v1"),
        reason="RouteConverged",
        message="3 routes",
        type="Normal",
        source=client.V1EventSource(component="topoctl"),
        event_time=datetime.now(UTC),  # the client's EventsV1Event model requires it
        reporting_component="topoctl",
        reporting_instance="topoctl-0",
        action="Converge",
    )
    created = core.create_namespaced_event("default", event)
    assert created.metadata.name.startswith("n1.") and len(created.metadata.name) == 8
    listed = core.list_namespaced_event(
        "default", field_selector="involvedObject.name=n1,reason=RouteConverged"
    )
    assert [e.message for e in listed.items] == ["3 routes"]

    events_v1 = client.EventsV1Api(kube_api).list_namespaced_event("default")
    assert [(e.note, e.regarding.name, e.reporting_controller) for e in events_v1.items] == [
        ("3 routes", "n1", "topoctl")
    ]


def test_namespace_deletion_removes_its_objects(
    apiserver: ApiServer, core: client.CoreV1Api, coord: client.CoordinationV1Api
) -> None:
    ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="topoctl")))
    assert ns.status.phase == "Active"
    assert ns.metadata.labels == {"kubernetes.io/metadata.name": "topoctl"}
    coord.create_namespaced_lease("topoctl", lease_model("leader", "topoctl"))
    core.delete_namespace("topoctl")
    assert apiserver.objects("Lease", "topoctl") == []


def test_discovery_and_version(apiserver: ApiServer) -> None:
    assert raw_get(apiserver, "/api")[1]["versions"] == ["v1"]
    groups = {g["name"] for g in raw_get(apiserver, "/apis")[1]["groups"]}
    assert groups == {
        "coordination.k8s.io",
        "events.k8s.io",
        "rbac.authorization.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
    }
    core_resources = {r["name"] for r in raw_get(apiserver, "/api/v1")[1]["resources"]}
    assert {"nodes", "nodes/status", "namespaces", "events"} <= core_resources
    assert raw_get(apiserver, "/version")[1]["gitVersion"].startswith("v1.")
    assert raw_get(apiserver, "/healthz") == (200, "ok")


def test_kubeconfig_loads_with_the_official_loader(
    apiserver: ApiServer, kubeconfig_path: Path
) -> None:
    apiserver.seed_node("n1")
    api_client = config.new_client_from_config(config_file=str(kubeconfig_path))
    try:
        names = [n.metadata.name for n in client.CoreV1Api(api_client).list_node().items]
    finally:
        api_client.close()
    assert names == ["n1"]


# ------------------------------------------------------------------ kubectl


def test_kubectl_get_nodes(apiserver: ApiServer, kubectl: Callable[..., Any]) -> None:
    apiserver.seed_node("cp-1", control_plane=True)
    apiserver.seed_node("gw-1", ready=False)
    table = kubectl("get", "nodes").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["cp-1"][1:3] == ["Ready", "control-plane"]
    assert rows["gw-1"][1] == "NotReady"
    doc = json.loads(kubectl("get", "node", "gw-1", "-o", "json").stdout)
    assert doc["kind"] == "Node" and doc["metadata"]["name"] == "gw-1"
    # --server alone (no cluster from a kubeconfig) works too
    direct = kubectl(
        "--kubeconfig=/dev/null", f"--server={apiserver.url}", "get", "no", "-o", "name"
    )
    assert direct.stdout.split() == ["node/cp-1", "node/gw-1"]


def test_kubectl_annotate_label_taint_delete(
    apiserver: ApiServer, kubectl: Callable[..., Any]
) -> None:
    apiserver.seed_node(
        "n1",
        taints=[
            {
                "key": "node.cloudprovider.kubernetes.io/uninitialized",
                "value": "true",
                "effect": "NoSchedule",
            }
        ],
    )
    kubectl("annotate", "node", "n1", "kilo.squat.ai/location=fra")
    kubectl("label", "node", "n1", "topology.kubernetes.io/zone=fra-1")
    kubectl("taint", "node", "n1", "dedicated=gateway:NoExecute")
    kubectl("taint", "node", "n1", "node.cloudprovider.kubernetes.io/uninitialized-")
    node = apiserver.node("n1")
    assert node is not None
    assert node["metadata"]["annotations"] == {"kilo.squat.ai/location": "fra"}
    assert node["metadata"]["labels"]["topology.kubernetes.io/zone"] == "fra-1"
    assert node["spec"]["taints"] == [
        {"key": "dedicated", "value": "gateway", "effect": "NoExecute"}
    ]
    assert apiserver.log.count(verb="patch", content_type=MERGE) == 2
    assert (
        apiserver.log.count(verb="patch", content_type="application/strategic-merge-patch+json")
        == 2
    )

    conflict = kubectl("label", "node", "n1", "x=y", "--resource-version=1", check=False)
    assert conflict.returncode != 0 and "modified" in conflict.stderr

    assert "deleted" in kubectl("delete", "node", "n1").stdout
    assert apiserver.node("n1") is None
