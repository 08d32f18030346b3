"""The double's service-account tokens and RBAC, through the real client and kubectl: what
kube-apiserver allows, refuses (403 with its Status body) and does not authenticate (401)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.apiserver import ApiServer
from tests.apiserver.fixtures import write_kubeconfig
from tests.apiserver.rbac import UserInfo, request_attributes

NS = "team"
SA = f"system:serviceaccount:{NS}:bot"
RBAC = "rbac.authorization.k8s.io/v1"


def role(name: str, rules: list[dict[str, Any]], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    kind = "Role" if namespace else "ClusterRole"
    return {"apiVersion": RBAC, "kind": kind, "metadata": meta, "rules": rules}


def binding(
    called: str,
    role_kind: str,
    role_name: str,
    namespace: str | None = None,
    subject: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": called}
    if namespace:
        meta["namespace"] = namespace
    who = subject or {"kind": "ServiceAccount", "name": "bot", "namespace": NS}
    return {
        "apiVersion": RBAC,
        "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
        "subjects": [who],
    }


def rule(groups: str, resources: str, verbs: str, names: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiGroups": [g if g != "core" else "" for g in groups.split()],
        "resources": resources.split(),
        "verbs": verbs.split(),
    }
    if names:
        out["resourceNames"] = names.split()
    return out


@pytest.fixture
def cluster(apiserver: ApiServer) -> ApiServer:
    apiserver.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "bot", "namespace": NS},
        },
    )
    apiserver.seed_node("n1")
    apiserver.seed_node("n2")
    return apiserver


def api_as(apiserver: ApiServer, token: str) -> client.ApiClient:
    config = client.Configuration(host=apiserver.url)
    config.retries = False
    config.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(config)


@pytest.fixture
def bot(cluster: ApiServer) -> Iterator[Any]:  # the typed client, fed JSON bodies
    api = api_as(cluster, cluster.token(NS, "bot"))
    yield client.CoreV1Api(api)
    api.close()


def refused(call: Callable[[], object]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body or "{}")


def allowed(call: Callable[[], object]) -> None:
    call()


# ------------------------------------------------------------------ tokens


def test_a_token_request_mints_a_token_for_the_account(
    cluster: ApiServer, kube_api: client.ApiClient
) -> None:
    core: Any = client.CoreV1Api(kube_api)
    issued = core.create_namespaced_service_account_token(
        "bot", NS, {"spec": {"expirationSeconds": 3600, "audiences": ["api"]}}
    )
    assert issued.kind == "TokenRequest" and issued.spec.audiences == ["api"]
    left = issued.status.expiration_timestamp - datetime.now(UTC)
    assert timedelta(minutes=59) < left <= timedelta(hours=1)
    api = api_as(cluster, issued.status.token)
    status, body = refused(lambda: client.CoreV1Api(api).list_node())
    assert status == 403 and body["message"] == (
        f'nodes is forbidden: User "{SA}" cannot list resource "nodes" in API group "" '
        "at the cluster scope"
    )
    api.close()
    logged = cluster.log.filter(subresource="token")
    assert [(e.verb, e.resource, e.status) for e in logged] == [("create", "serviceaccounts", 201)]


def test_token_requests_refuse_what_the_api_server_refuses(
    cluster: ApiServer, kube_api: client.ApiClient
) -> None:
    core: Any = client.CoreV1Api(kube_api)
    status, body = refused(lambda: core.create_namespaced_service_account_token("nobody", NS, {}))
    assert status == 404 and body["message"] == 'serviceaccounts "nobody" not found'
    short = {"spec": {"expirationSeconds": 60}}
    status, body = refused(lambda: core.create_namespaced_service_account_token("bot", NS, short))
    assert status == 422 and "less than 10 minutes" in body["message"]
    gone = {"spec": {"boundObjectRef": {"kind": "Node", "apiVersion": "v1", "name": "n9"}}}
    status, _ = refused(lambda: core.create_namespaced_service_account_token("bot", NS, gone))
    assert status == 404


def test_a_token_stops_working_with_its_account_or_its_node(cluster: ApiServer) -> None:
    cluster.seed(role("read-nodes", [rule("core", "nodes", "get list")]))
    cluster.seed(binding("read-nodes", "ClusterRole", "read-nodes"))
    bound = api_as(cluster, cluster.token(NS, "bot", node="n1"))
    plain = api_as(cluster, cluster.token(NS, "bot"))
    allowed(lambda: client.CoreV1Api(bound).read_node("n2"))
    cluster.delete("Node", "n1")
    assert refused(lambda: client.CoreV1Api(bound).read_node("n2"))[0] == 401
    allowed(lambda: client.CoreV1Api(plain).read_node("n2"))
    cluster.delete("ServiceAccount", "bot", NS)  # recreated: another uid, the token is void
    cluster.seed(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot", "namespace": NS}}
    )
    status, body = refused(lambda: client.CoreV1Api(plain).read_node("n2"))
    assert (status, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")
    for api in (bound, plain):
        api.close()


def test_an_unknown_token_is_401_and_no_token_is_the_admin(
    cluster: ApiServer, kube_api: client.ApiClient
) -> None:
    stranger = api_as(cluster, "not-a-token")
    assert refused(lambda: client.CoreV1Api(stranger).list_node())[0] == 401
    stranger.close()
    assert len(client.CoreV1Api(kube_api).list_node().items) == 2  # no token: admin


# ----------------------------------------------------------- authorization


def test_verbs_are_the_kube_verbs_list_and_watch_apart(cluster: ApiServer, bot: Any) -> None:
    cluster.seed(role("lister", [rule("core", "nodes", "list")]))
    cluster.seed(binding("lister", "ClusterRole", "lister"))
    allowed(bot.list_node)
    status, body = refused(
        lambda: bot.list_node(watch=True, timeout_seconds=1, _preload_content=False)
    )
    assert status == 403 and 'cannot watch resource "nodes"' in body["message"]
    status, body = refused(lambda: bot.read_node("n1"))
    assert body["message"] == (
        f'nodes "n1" is forbidden: User "{SA}" cannot get resource "nodes" in API group "" '
        "at the cluster scope"
    )
    assert body["details"] == {"name": "n1", "kind": "nodes"}
    status, body = refused(bot.delete_collection_node)
    assert 'cannot deletecollection resource "nodes"' in body["message"]


def test_a_wildcard_grants_every_verb_group_and_resource(cluster: ApiServer, bot: Any) -> None:
    cluster.seed(role("all", [rule("*", "*", "*")]))
    cluster.seed(binding("all", "ClusterRole", "all"))
    allowed(lambda: bot.patch_node("n1", {"metadata": {"labels": {"a": "b"}}}))
    allowed(lambda: bot.patch_node_status("n1", {"status": {"phase": "Running"}}))


def test_subresources_are_granted_apart_from_their_resource(cluster: ApiServer, bot: Any) -> None:
    cluster.seed(role("status", [rule("core", "nodes/status", "patch")]))
    cluster.seed(binding("status", "ClusterRole", "status"))
    allowed(lambda: bot.patch_node_status("n1", {"status": {"phase": "Running"}}))
    _, body = refused(lambda: bot.patch_node("n1", {"metadata": {"labels": {"a": "b"}}}))
    assert body["message"] == (
        f'nodes "n1" is forbidden: User "{SA}" cannot patch resource "nodes" in API group "" '
        "at the cluster scope"
    )
    cluster.seed(role("any-status", [rule("core", "*/status", "get")]))
    cluster.seed(binding("any-status", "ClusterRole", "any-status"))
    allowed(lambda: bot.read_node_status("n2"))
    assert refused(lambda: bot.read_node("n2"))[0] == 403


def test_resource_names_restrict_get_and_a_watch_by_name_but_not_list(
    cluster: ApiServer, bot: Any
) -> None:
    cluster.seed(role("one", [rule("core", "nodes", "get list watch", names="n1")]))
    cluster.seed(binding("one", "ClusterRole", "one"))
    allowed(lambda: bot.read_node("n1"))
    assert refused(lambda: bot.read_node("n2"))[0] == 403
    assert refused(bot.list_node)[0] == 403
    by_name = "metadata.name=n1"
    allowed(lambda: bot.list_node(field_selector=by_name))  # the selector names the object
    watched = bot.list_node(
        field_selector=by_name, watch=True, timeout_seconds=1, _preload_content=False
    )
    assert watched.status == 200
    watched.release_conn()
    assert refused(lambda: bot.list_node(field_selector="metadata.name=n2"))[0] == 403


def test_role_bindings_grant_in_their_namespace_only(cluster: ApiServer, bot: Any) -> None:
    cluster.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    cluster.seed(role("cm", [rule("core", "configmaps", "create get")], namespace=NS))
    cluster.seed(binding("cm", "Role", "cm", namespace=NS))
    # a ClusterRole bound by a RoleBinding grants in that namespace only
    cluster.seed(role("leases", [rule("coordination.k8s.io", "leases", "create")]))
    cluster.seed(binding("leases", "ClusterRole", "leases", namespace="other"))
    body = {"metadata": {"name": "x"}, "data": {"k": "v"}}
    allowed(lambda: bot.create_namespaced_config_map(NS, body))
    _, denied = refused(lambda: bot.create_namespaced_config_map("other", body))
    assert denied["message"] == (
        f'configmaps is forbidden: User "{SA}" cannot create resource "configmaps" in API '
        'group "" in the namespace "other"'
    )
    leases: Any = client.CoordinationV1Api(bot.api_client)
    lease = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}
    _, denied = refused(lambda: leases.create_namespaced_lease(NS, lease))
    assert 'in API group "coordination.k8s.io" in the namespace "team"' in denied["message"]
    allowed(lambda: leases.create_namespaced_lease("other", lease))


def test_groups_and_users_are_subjects_too(cluster: ApiServer, bot: Any) -> None:
    cluster.seed(role("ns-read", [rule("core", "namespaces", "get")]))
    cluster.seed(
        binding(
            "by-group",
            "ClusterRole",
            "ns-read",
            subject={"kind": "Group", "name": "system:serviceaccounts"},
        )
    )
    allowed(lambda: bot.read_namespace(NS))
    cluster.seed(role("leases", [rule("coordination.k8s.io", "leases", "list")]))
    cluster.seed(binding("by-user", "ClusterRole", "leases", subject={"kind": "User", "name": SA}))
    allowed(lambda: client.CoordinationV1Api(bot.api_client).list_namespaced_lease(NS))


def test_a_binding_to_a_missing_role_says_so_in_the_denial(cluster: ApiServer, bot: Any) -> None:
    cluster.seed(binding("dangling", "ClusterRole", "not-there"))
    status, body = refused(bot.list_node)
    assert status == 403 and body["message"].endswith(
        'at the cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io "not-there" not found'
    )


def test_an_aggregated_cluster_role_holds_the_rules_it_selects(
    cluster: ApiServer, bot: Any
) -> None:
    aggregated = role("aggregate", [])
    aggregated["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]}
    part = role("part", [rule("core", "nodes", "get")])
    part["metadata"]["labels"] = {"agg": "yes"}
    cluster.seed(aggregated, part, binding("aggregate", "ClusterRole", "aggregate"))
    allowed(lambda: bot.read_node("n1"))


def test_every_authenticated_user_may_discover_and_check_health(
    cluster: ApiServer, bot: Any
) -> None:
    token = cluster.token(NS, "bot")

    def get(path: str) -> int:
        request = urllib.request.Request(
            cluster.url + path, headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as err:
            assert err.code != 403 or json.loads(err.read())["message"] == (
                f'forbidden: User "{SA}" cannot get path "{path}"'
            )
            return err.code

    for path in (
        "/api",
        "/api/v1",
        "/apis",
        "/apis/coordination.k8s.io/v1",
        "/version",
        "/healthz",
    ):
        assert get(path) == 200, path
    assert get("/metrics") == 403
    names = {r["metadata"]["name"] for r in cluster.objects("ClusterRoleBinding")}
    assert {"system:discovery", "system:basic-user", "system:public-info-viewer"} <= names


def test_role_refs_cannot_change_and_rules_need_verbs(cluster: ApiServer) -> None:
    rbac: Any = client.RbacAuthorizationV1Api(
        client.ApiClient(client.Configuration(host=cluster.url))
    )
    rbac.create_cluster_role(role("a", [rule("core", "nodes", "get")]))
    rbac.create_cluster_role_binding(binding("a", "ClusterRole", "a"))
    changed = binding("a", "ClusterRole", "cluster-admin")
    status, body = refused(lambda: rbac.replace_cluster_role_binding("a", changed))
    assert status == 422 and "cannot change roleRef" in body["message"]
    no_verbs = role("b", [{"apiGroups": [""], "resources": ["nodes"], "verbs": []}])
    status, body = refused(lambda: rbac.create_cluster_role(no_verbs))
    assert status == 422 and "verbs must contain at least one value" in body["message"]
    rbac.api_client.close()


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/nodes", {}, ("list", "", "", "nodes", "", "")),
        ("GET", "/api/v1/nodes", {"watch": "true"}, ("watch", "", "", "nodes", "", "")),
        ("GET", "/api/v1/nodes", {"watch": "0"}, ("list", "", "", "nodes", "", "")),
        (
            "GET",
            "/api/v1/nodes",
            {"fieldSelector": "metadata.name=a"},
            ("list", "", "", "nodes", "", "a"),
        ),
        ("PATCH", "/api/v1/nodes/a/status", {}, ("patch", "", "", "nodes", "status", "a")),
        (
            "DELETE",
            "/api/v1/namespaces/x/configmaps",
            {},
            ("deletecollection", "", "x", "configmaps", "", ""),
        ),
        ("GET", "/api/v1/namespaces/x", {}, ("get", "", "x", "namespaces", "", "x")),
        (
            "PUT",
            "/api/v1/namespaces/x/finalize",
            {},
            ("update", "", "x", "namespaces", "finalize", "x"),
        ),
        (
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/x/leases",
            {},
            ("create", "coordination.k8s.io", "x", "leases", "", ""),
        ),
        (
            "POST",
            "/api/v1/namespaces/x/serviceaccounts/s/token",
            {},
            ("create", "", "x", "serviceaccounts", "token", "s"),
        ),
    ],
)
def test_request_attributes_are_derived_as_request_info_does(
    method: str, path: str, query: dict[str, str], expected: tuple[str, ...]
) -> None:
    a = request_attributes(UserInfo("u"), method, path, query)
    assert a.resource_request
    assert (a.verb, a.group, a.namespace, a.resource, a.subresource, a.name) == expected


@pytest.mark.parametrize(
    "path", ["/api", "/api/v1", "/apis/rbac.authorization.k8s.io/v1", "/healthz"]
)
def test_discovery_paths_are_non_resource_requests(path: str) -> None:
    a = request_attributes(UserInfo("u"), "GET", path, {})
    assert not a.resource_request and a.verb == "get"


def test_kubectl_applies_rbac(
    cluster: ApiServer, kubectl: Callable[..., Any], tmp_path: Path
) -> None:
    manifest = tmp_path / "rbac.yaml"
    docs = [
        role("node-reader", [rule("core", "nodes", "get list")]),
        binding("node-reader", "ClusterRole", "node-reader"),
    ]
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    # the double serves no OpenAPI documents, which kubectl's client-side validation wants
    assert "created" in kubectl("apply", "--validate=false", "-f", str(manifest)).stdout
    assert "unchanged" in kubectl("apply", "--validate=false", "-f", str(manifest)).stdout
    bound = {
        b["metadata"]["name"]: b["roleRef"]["name"] for b in cluster.objects("ClusterRoleBinding")
    }
    assert bound["node-reader"] == "node-reader"
    # kubectl sends no credentials over plain http (the double's only scheme): it is the
    # admin here, whatever its kubeconfig holds; the real client sends its token
    token = cluster.token(NS, "bot")
    as_bot = write_kubeconfig(tmp_path / "bot", cluster.url, token=token)
    deleted = kubectl("--kubeconfig", str(as_bot), "delete", "node", "n2")
    assert deleted.returncode == 0 and cluster.node("n2") is None
