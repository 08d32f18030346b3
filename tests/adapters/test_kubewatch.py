"""The node watch adapter over HTTP: list version, events, bookmarks, in-stream 410, faults."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client

from reconciler.adapters.kube import KubeBackend, RetryPolicy
from reconciler.adapters.kubewatch import KubeWatcher
from reconciler.ports import BackendError, ExpiredError
from tests.apiserver import ApiServer


@pytest.fixture
def watcher(apiserver: ApiServer) -> KubeWatcher:
    config = client.Configuration(host=apiserver.url)
    config.retries = False
    return KubeWatcher(KubeBackend(client.ApiClient(config), RetryPolicy(initial=0.01, cap=0.02)))


def test_list_then_watch_from_its_version(apiserver: ApiServer, watcher: KubeWatcher) -> None:
    apiserver.seed_node("a")
    nodes, version = watcher.list_nodes_versioned()
    assert [n.name for n in nodes] == ["a"] and version == str(apiserver.resource_version)
    apiserver.seed_node("b")
    apiserver.delete("Node", "a")
    seen = []
    for event in watcher.watch_nodes(version, 1):
        seen.append((event.kind, event.node.name if event.node else None))
        if event.kind == "BOOKMARK":
            assert event.resource_version == str(apiserver.resource_version)
            break
    assert seen == [("ADDED", "b"), ("DELETED", "a"), ("BOOKMARK", None)]


def test_an_in_stream_410_is_expired(apiserver: ApiServer, watcher: KubeWatcher) -> None:
    apiserver.seed_node("a")
    _nodes, version = watcher.list_nodes_versioned()
    apiserver.seed_node("b")
    apiserver.compact()
    with pytest.raises(ExpiredError, match="too old resource version"):
        list(watcher.watch_nodes(version, 1))
    assert apiserver.log.count(verb="watch", status=200) == 1  # the 410 came in the stream


def test_faults_are_backend_errors(apiserver: ApiServer, watcher: KubeWatcher) -> None:
    _nodes, version = watcher.list_nodes_versioned()
    apiserver.faults.fail(503, watch=True)
    with pytest.raises(BackendError, match="503"):
        list(watcher.watch_nodes(version, 1))
    stream = watcher.watch_nodes(version, 30)
    threading.Timer(0.2, lambda: apiserver.drop_watches(abrupt=True)).start()
    with pytest.raises(BackendError, match="broke"):
        list(stream)


def test_close_ends_an_open_watch(apiserver: ApiServer, watcher: KubeWatcher) -> None:
    _nodes, version = watcher.list_nodes_versioned()
    ended: list[object] = []

    def consume() -> None:
        try:
            ended.extend(watcher.watch_nodes(version, 600))
        except BackendError as err:
            ended.append(err)

    reader = threading.Thread(target=consume)
    reader.start()
    assert apiserver.wait_for_watches(1)
    watcher.close()
    reader.join(10.0)  # a bound: the watch itself would run ten minutes
    assert not reader.is_alive()
