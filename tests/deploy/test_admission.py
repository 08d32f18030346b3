"""The agent's admission policy (deploy/base/agent-own-node.yaml): its CEL, evaluated by a
real CEL implementation (cel-python) with the variables bound as kube-apiserver binds
them for a ValidatingAdmissionPolicy.

`object` and `oldObject` are whole Nodes: the API double computes `object` by applying
the very merge patch to the stored Node (dry run), as the API server admits the patched
object, through `/status` or not. `request` is the AdmissionRequest: kind, resource,
subResource, name, operation UPDATE (a PATCH is admitted as an UPDATE) and userInfo,
whose `extra` comes from the token the double minted for the agent's service account,
bound to its Node as a pod's token is (`authentication.kubernetes.io/node-name`, since
Kubernetes 1.32). `params` and `namespaceObject` are null (no paramKind; Nodes are
cluster-scoped).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import celpy
import pytest
from celpy.adapter import json_to_cel

from tests.apiserver import make_node
from tests.apiserver.rbac import Access
from tests.apiserver.resources import NAMESPACES, NODES, SERVICEACCOUNTS
from tests.apiserver.store import MERGE_PATCH, Store
from tests.deploy.manifests import BASE, EXAMPLE, find, render

OBJECTS = render(BASE)
POLICY = find(OBJECTS, "ValidatingAdmissionPolicy", "topoctl-agent-own-node")
BINDING = find(OBJECTS, "ValidatingAdmissionPolicyBinding", "topoctl-agent-own-node")
UNINITIALIZED_KEY = "node.cloudprovider.kubernetes.io/uninitialized"
UNINITIALIZED = {"key": UNINITIALIZED_KEY, "value": "true", "effect": "NoSchedule"}
GPU = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
JSON = dict[str, Any]


@functools.cache
def program(expression: str) -> Any:
    env = celpy.Environment()
    return env.program(env.compile(expression))


def evaluate(expression: str, activation: JSON) -> Any:
    return program(expression).evaluate({k: json_to_cel(v) for k, v in activation.items()})


class Cluster:
    """Two Nodes in the double's store, and the users that change them."""

    def __init__(self) -> None:
        self.store = Store()
        self.access = Access(self.store)
        for name in ("n1", "n2"):
            node = make_node(name, taints=[GPU, UNINITIALIZED], pod_cidr="10.244.0.0/24")
            node["metadata"]["annotations"] = {"kilo.squat.ai/location": "fra"}
            self.store.create(NODES, None, node)
        self.store.create(NAMESPACES, None, {"metadata": {"name": "topoctl-system"}})
        for account in ("topoctl", "topoctl-agent"):
            meta = {"name": account, "namespace": "topoctl-system"}
            self.store.create(SERVICEACCOUNTS, "topoctl-system", {"metadata": meta})

    def user(self, account: str, node: str | None = None) -> JSON:
        """request.userInfo of a service account's token (bound to `node`)."""
        issued = self.access.token_request(
            "topoctl-system",
            account,
            {"spec": {"boundObjectRef": {"kind": "Node", "name": node}}} if node else {},
        )
        info = self.access.user({"Authorization": f"Bearer {issued['status']['token']}"})
        assert info is not None
        out: JSON = {"username": info.name, "uid": info.uid, "groups": list(info.groups)}
        if info.extra:
            out["extra"] = {k: list(v) for k, v in info.extra.items()}
        return out

    def admission(self, user: JSON, node: str, patch: JSON, subresource: str = "") -> JSON:
        """The variables a ValidatingAdmissionPolicy sees for this PATCH."""
        old = self.store.get(NODES, None, node)
        new = self.store.patch(
            NODES, None, node, MERGE_PATCH, patch, subresource=subresource or None, dry_run=True
        )
        gvk = {"group": "", "version": "v1", "kind": "Node"}
        gvr = {"group": "", "version": "v1", "resource": "nodes"}
        request = {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": gvk,
            "resource": gvr,
            "subResource": subresource,
            "requestKind": gvk,
            "requestResource": gvr,
            "requestSubResource": subresource,
            "name": node,
            "namespace": "",
            "operation": "UPDATE",
            "userInfo": user,
            "dryRun": False,
            "options": {"kind": "PatchOptions", "apiVersion": "meta.k8s.io/v1"},
        }
        return {
            "object": new,
            "oldObject": old,
            "request": request,
            "params": None,
            "namespaceObject": None,
        }


def decide(variables: JSON) -> str | None:
    """None when admitted, else the refusal's message (first failing validation)."""
    spec = POLICY["spec"]
    if not all(evaluate(c["expression"], variables) for c in spec["matchConditions"]):
        return None  # not the agent: the policy does not apply
    for validation in spec["validations"]:
        if not evaluate(validation["expression"], variables):
            if "messageExpression" in validation:
                return str(evaluate(validation["messageExpression"], variables))
            return " ".join(str(validation["message"]).split())
    return None


def condition(kind: str, status: str) -> JSON:
    return {
        "type": kind,
        "status": status,
        "reason": "Converged" if status == "True" else "Failed",
        "message": "",
        "lastHeartbeatTime": "2030-01-01T00:00:00Z",
        "lastTransitionTime": "2030-01-01T00:00:00Z",
    }


Change = Callable[[JSON], tuple[JSON, str]]  # the live Node -> (merge patch, subresource)


def addresses_and_condition(node: JSON) -> tuple[JSON, str]:
    """The agent's status write: both addresses, and TopologyReady appended."""
    status = node["status"]
    addresses = [a for a in status["addresses"] if a["type"] not in ("ExternalIP",)]
    addresses.append({"type": "ExternalIP", "address": "192.0.2.10"})
    conditions = [*status["conditions"], condition("TopologyReady", "True")]
    return {"status": {"addresses": addresses, "conditions": conditions}}, "status"


def remove_uninitialized(node: JSON) -> tuple[JSON, str]:
    """The agent's taint write: the taints without the uninitialized one."""
    taints = [t for t in node["spec"]["taints"] if t["key"] != UNINITIALIZED["key"]]
    return {"spec": {"taints": taints}}, ""


def flip_ready(node: JSON) -> tuple[JSON, str]:
    conditions = [
        {**c, "status": "False"} if c["type"] == "Ready" else c
        for c in node["status"]["conditions"]
    ]
    return {"status": {"conditions": conditions}}, "status"


AGENT_CHANGES: dict[str, Change] = {
    "addresses-and-condition": addresses_and_condition,
    "uninitialized-taint-removed": remove_uninitialized,
}
METADATA = "the topoctl agent may not change a Node's labels, annotations, finalizers or owners"
TAINTS = f"the topoctl agent may only remove the {UNINITIALIZED_KEY} taint"
CONDITIONS = "the topoctl agent may change no Node condition but TopologyReady"
SPEC = "the topoctl agent may not change a Node's pod CIDRs, providerID or unschedulable"


def metadata(**changes: Any) -> Change:
    return lambda node: ({"metadata": changes}, "")


def add_taint(node: JSON) -> tuple[JSON, str]:
    return {"spec": {"taints": [*node["spec"]["taints"], {"key": "x", "effect": "NoExecute"}]}}, ""


REFUSED: dict[str, tuple[Change, str]] = {
    "a-label": (metadata(labels={"x": "y"}), METADATA),
    "a-label-through-status": (
        lambda n: ({"metadata": {"labels": {"x": "y"}}}, "status"),
        METADATA,
    ),
    "kilo-allowed-location-ips": (
        metadata(annotations={"kilo.squat.ai/allowed-location-ips": "0.0.0.0/0"}),
        METADATA,
    ),
    "kilo-location-removed": (metadata(annotations={"kilo.squat.ai/location": None}), METADATA),
    "a-finalizer": (metadata(finalizers=["x.io/keep"]), METADATA),
    "unschedulable": (lambda n: ({"spec": {"unschedulable": True}}, ""), SPEC),
    "a-taint-added": (add_taint, TAINTS),
    "another-taint-removed": (lambda n: ({"spec": {"taints": [UNINITIALIZED]}}, ""), TAINTS),
    "ready-condition": (flip_ready, CONDITIONS),
}


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return Cluster()


def test_the_policy_is_in_the_base_bound_and_denies() -> None:
    assert BINDING["spec"]["policyName"] == POLICY["metadata"]["name"]
    assert BINDING["spec"]["validationActions"] == ["Deny"]
    assert POLICY["spec"]["failurePolicy"] == "Fail"
    (rule,) = POLICY["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resources"] == ["nodes", "nodes/status"] and rule["operations"] == ["UPDATE"]
    example = render(EXAMPLE)
    assert find(example, "ValidatingAdmissionPolicy", "topoctl-agent-own-node") == POLICY


@pytest.mark.parametrize("change", AGENT_CHANGES.values(), ids=AGENT_CHANGES.keys())
def test_the_agent_may_make_its_writes_on_its_own_node(cluster: Cluster, change: Change) -> None:
    patch, sub = change(cluster.store.get(NODES, None, "n1"))
    variables = cluster.admission(cluster.user("topoctl-agent", "n1"), "n1", patch, sub)
    assert variables["object"] != variables["oldObject"]  # the patch changes something
    assert decide(variables) is None


@pytest.mark.parametrize("change", AGENT_CHANGES.values(), ids=AGENT_CHANGES.keys())
def test_the_same_writes_on_another_node_are_refused(cluster: Cluster, change: Change) -> None:
    patch, sub = change(cluster.store.get(NODES, None, "n2"))
    variables = cluster.admission(cluster.user("topoctl-agent", "n1"), "n2", patch, sub)
    assert decide(variables) == "the topoctl agent may change only its own Node, not n2"


def test_a_token_that_names_no_node_is_refused(cluster: Cluster) -> None:
    patch, sub = addresses_and_condition(cluster.store.get(NODES, None, "n1"))
    unbound = cluster.user("topoctl-agent")
    assert "authentication.kubernetes.io/node-name" not in unbound.get("extra", {})
    variables = cluster.admission(unbound, "n1", patch, sub)
    assert decide(variables) == "the topoctl agent may change only its own Node, not n1"
    del variables["request"]["userInfo"]["extra"]
    assert decide(variables) == "the topoctl agent may change only its own Node, not n1"


@pytest.mark.parametrize(("change", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_the_agent_may_change_nothing_else_on_its_own_node(
    cluster: Cluster, change: Change, message: str
) -> None:
    patch, sub = change(cluster.store.get(NODES, None, "n1"))
    variables = cluster.admission(cluster.user("topoctl-agent", "n1"), "n1", patch, sub)
    assert variables["object"] != variables["oldObject"]
    assert decide(variables) == message


@pytest.mark.parametrize(
    "username",
    ["system:serviceaccount:topoctl-system:topoctl", "system:node:n2", "alice"],
    ids=["the-controller", "a-kubelet", "a-person"],
)
def test_other_users_are_not_concerned(cluster: Cluster, username: str) -> None:
    patch = {"metadata": {"labels": {"x": "y"}}, "spec": {"taints": None}}
    variables = cluster.admission({"username": username}, "n2", patch)
    assert decide(variables) is None
