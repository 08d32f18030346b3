"""The double's ValidatingAdmissionPolicies, through the real client: deploy/base's policy
confining the agent to its own Node, enforced on its real writes, and the semantics of
matching, variables, failure policies and reasons."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from reconciler.adapters.kube import KubeBackend
from reconciler.model.state import NodeWrite, StatusWrite
from tests.apiserver import ApiServer, make_node
from tests.shipped_rbac import Shipped

UNINITIALIZED = {"key": "node.cloudprovider.kubernetes.io/uninitialized", "effect": "NoSchedule"}
POLICY = "ValidatingAdmissionPolicy 'topoctl-agent-own-node' with binding 'topoctl-agent-own-node'"


def refused(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body or "{}")["message"]


@pytest.fixture
def agent(shipped: Shipped) -> Iterator[Any]:
    """The real client as the agent of node n1 (whose token names n1)."""
    for name in ("n1", "n2"):
        shipped.apiserver.seed_node(make_node(name, taints=[UNINITIALIZED]))
    api = shipped.api(shipped.agent_token("n1"))
    yield client.CoreV1Api(api)
    api.close()


def test_the_agent_writes_what_it_writes_on_its_own_node(shipped: Shipped, agent: Any) -> None:
    backend = KubeBackend(agent.api_client)
    node = backend.get_node("n1")
    addresses = (("InternalIP", "10.0.0.10"), ("ExternalIP", "192.0.2.10"))
    node = backend.write_status(StatusWrite("n1", node.resource_version, addresses, None))
    node = backend.write_node(NodeWrite("n1", node.resource_version, taints=()))
    stored = shipped.apiserver.node("n1")
    assert stored is not None and "taints" not in stored["spec"]
    assert {"type": "ExternalIP", "address": "192.0.2.10"} in stored["status"]["addresses"]


def test_the_agent_is_refused_another_node_and_anything_else(shipped: Shipped, agent: Any) -> None:
    status, message = refused(lambda: agent.patch_node_status("n2", {"status": {"phase": "x"}}))
    assert (status, message) == (
        403,
        f'nodes "n2" is forbidden: {POLICY} denied request: the topoctl agent may change only '
        "its own Node, not n2",
    )
    label = {"metadata": {"labels": {"node-role.kubernetes.io/gateway": ""}}}
    status, message = refused(lambda: agent.patch_node("n1", label))
    assert status == 403 and message.endswith(
        "the topoctl agent may not change a Node's labels, annotations, finalizers or owners"
    )
    unchanged = shipped.apiserver.node("n1")
    assert unchanged is not None
    assert "node-role.kubernetes.io/gateway" not in unchanged["metadata"]["labels"]
    # the controller and the admin are not concerned
    controller = shipped.api(shipped.controller_token())
    client.CoreV1Api(controller).patch_node("n2", label)
    controller.close()


RULE = {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}
RULE["operations"] = ["CREATE", "UPDATE"]


def policy(validations: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "matchConstraints": {
                "resourceRules": [RULE]
            },
            "validations": validations,
            **spec,
        },
    }  # fmt: skip


BINDING = {
    "apiVersion": "admissionregistration.k8s.io/v1",
    "kind": "ValidatingAdmissionPolicyBinding",
    "metadata": {"name": "b"},
    "spec": {"policyName": "p", "validationActions": ["Deny"]},
}


@pytest.fixture
def core(kube_api: client.ApiClient) -> Any:
    return client.CoreV1Api(kube_api)


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": data}


SAYS = "'at most 2 keys, not ' + string(variables.size)"


def test_variables_messages_and_reasons(apiserver: ApiServer, core: Any) -> None:
    apiserver.seed(
        policy(
            [{"expression": "variables.size <= 2", "messageExpression": SAYS}],
            variables=[{"name": "size", "expression": "size(object.data)"}],
        ),
        BINDING,
    )  # fmt: skip
    core.create_namespaced_config_map("default", cm("small", a="1"))
    status, message = refused(
        lambda: core.create_namespaced_config_map("default", cm("big", a="1", b="2", c="3"))
    )
    assert status == 422
    assert (
        "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: at most 2 keys, not 3"
        in message
    )
    assert apiserver.get("ConfigMap", "big", "default") is None
    status, _ = refused(
        lambda: core.patch_namespaced_config_map("small", "default", {"data": {"b": "2", "c": "3"}})
    )
    assert status == 422 and apiserver.get("ConfigMap", "small", "default")["data"] == {"a": "1"}  # type: ignore[index]
    core.delete_namespaced_config_map("small", "default")  # DELETE is not matched


@pytest.mark.parametrize(("failure", "admitted"), [("Fail", False), ("Ignore", True)])
def test_an_expression_that_fails_follows_the_failure_policy(
    apiserver: ApiServer, core: Any, failure: str, admitted: bool
) -> None:
    broken = [{"expression": "object.data.missing == 'x'"}]  # no such key: an error
    apiserver.seed(policy(broken, failurePolicy=failure), BINDING)
    if admitted:
        core.create_namespaced_config_map("default", cm("x", a="1"))
    else:
        status, message = refused(
            lambda: core.create_namespaced_config_map("default", cm("x", a="1"))
        )
        assert status == 422 and "could not be evaluated" in message


def test_match_conditions_and_other_resources_are_not_reviewed(
    apiserver: ApiServer, core: Any
) -> None:
    conditioned = policy(
        [{"expression": "false", "reason": "Forbidden"}],
        matchConditions=[{"name": "only-x", "expression": "object.metadata.name == 'x'"}],
    )
    apiserver.seed(conditioned, BINDING)
    core.create_namespaced_config_map("default", cm("y", a="1"))
    assert refused(lambda: core.create_namespaced_config_map("default", cm("x", a="1")))[0] == 403
    apiserver.seed_node("n1")  # nodes are not matched: no review
    core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
