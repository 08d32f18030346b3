"""The optional ValidatingAdmissionPolicy (components/agent-own-node): its CEL, evaluated
by a real CEL implementation (cel-python) on the requests the API server would admit.

The API server puts the node name of a pod-bound service account token (Kubernetes 1.32+)
into request.userInfo.extra["authentication.kubernetes.io/node-name"] as a one-item list.
"""

from __future__ import annotations

from typing import Any

import celpy
import pytest
from celpy.adapter import json_to_cel

from tests.deploy.manifests import EXAMPLE, find, render

OBJECTS = render(EXAMPLE)
POLICY = find(OBJECTS, "ValidatingAdmissionPolicy", "topoctl-agent-own-node")
BINDING = find(OBJECTS, "ValidatingAdmissionPolicyBinding", "topoctl-agent-own-node")
AGENT = "system:serviceaccount:topoctl-system:topoctl-agent"
NODE_NAME = "authentication.kubernetes.io/node-name"


def evaluate(expression: str, request: dict[str, Any], node: str) -> Any:
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    activation = {
        "request": json_to_cel(request),
        "object": json_to_cel({"metadata": {"name": node}}),
    }
    return program.evaluate(activation)


def admitted(username: str, extra: dict[str, list[str]] | None, node: str) -> bool:
    """What the policy decides for an UPDATE of Node `node` by this user."""
    user: dict[str, Any] = {"username": username}
    if extra is not None:
        user["extra"] = extra
    request = {"userInfo": user, "operation": "UPDATE"}
    spec = POLICY["spec"]
    if not all(evaluate(c["expression"], request, node) for c in spec["matchConditions"]):
        return True  # not the agent: the policy does not apply
    return all(bool(evaluate(v["expression"], request, node)) for v in spec["validations"])


def test_the_policy_is_bound_and_denies() -> None:
    assert BINDING["spec"]["policyName"] == POLICY["metadata"]["name"]
    assert BINDING["spec"]["validationActions"] == ["Deny"]
    assert POLICY["spec"]["failurePolicy"] == "Fail"
    (rule,) = POLICY["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["nodes", "nodes/status"] and rule["operations"] == ["UPDATE"]


@pytest.mark.parametrize(
    ("username", "extra", "node", "allowed"),
    [
        pytest.param(AGENT, {NODE_NAME: ["n1"]}, "n1", True, id="agent-own-node"),
        pytest.param(AGENT, {NODE_NAME: ["n2"]}, "n1", False, id="agent-other-node"),
        pytest.param(AGENT, {}, "n1", False, id="token-without-node"),
        pytest.param(AGENT, None, "n1", False, id="no-extra-at-all"),
        pytest.param(AGENT, {NODE_NAME: ["n1", "n2"]}, "n1", False, id="two-node-names"),
        pytest.param(
            "system:serviceaccount:elsewhere:topoctl-agent",
            {NODE_NAME: ["n2"]},
            "n1",
            False,
            id="agent-in-another-namespace",
        ),
        pytest.param(
            "system:serviceaccount:topoctl-system:topoctl", None, "n1", True, id="controller"
        ),
        pytest.param("system:node:n2", None, "n1", True, id="a-kubelet-is-not-concerned"),
        pytest.param("alice", None, "n1", True, id="a-person"),
    ],
)
def test_the_agent_changes_only_its_own_node(
    username: str, extra: dict[str, list[str]] | None, node: str, allowed: bool
) -> None:
    assert admitted(username, extra, node) is allowed


def test_the_denial_names_the_node() -> None:
    (validation,) = POLICY["spec"]["validations"]
    message = evaluate(validation["messageExpression"], {"userInfo": {"username": AGENT}}, "n9")
    assert str(message) == "the topoctl agent may change only its own Node, not n9"
