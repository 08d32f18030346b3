"""Least privilege: every right the manifests grant, listed and compared with the rights
docs/security.md gives each component."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.manifests import BASE, EXAMPLE, controller_flags, find, render

NS = "topoctl-system"
# (service account, scope, apiGroup, resource, verb, resourceName or None)
Grant = tuple[str, str, str, str, str, str | None]


def _grants(sa: str, scope: str, group: str, resource: str, verbs: str, name: str | None = None):
    return {(sa, scope, group, resource, verb, name) for verb in verbs.split()}


EXPECTED: set[Grant] = (
    _grants("topoctl", "cluster", "", "nodes", "get list watch patch delete")
    # Events only where they are recorded: about Nodes in default, about the status
    # ConfigMap beside it; events.k8s.io only (no core/v1 Event is sent).
    | _grants("topoctl", "default", "events.k8s.io", "events", "create patch")
    | _grants("topoctl", NS, "events.k8s.io", "events", "create patch")
    # resourceNames cannot restrict create: create alone, every other verb by name.
    | _grants("topoctl", NS, "coordination.k8s.io", "leases", "create")
    | _grants("topoctl", NS, "coordination.k8s.io", "leases", "get update", "topoctl")
    | _grants("topoctl", NS, "", "configmaps", "create")
    | _grants("topoctl", NS, "", "configmaps", "get update", "topoctl-status")
    # the kubelets' node Leases, a sign of life the lifecycle must see
    | _grants("topoctl", "kube-node-lease", "coordination.k8s.io", "leases", "list")
    | _grants("topoctl-agent", "cluster", "", "nodes", "get watch patch")
    | _grants("topoctl-agent", "cluster", "", "nodes/status", "patch")
)


def inventory(objects: list[dict[str, Any]]) -> set[Grant]:
    """Every (subject, scope, group, resource, verb, name) that the bindings grant."""
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
    }
    granted: set[Grant] = set()
    for binding in (o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        namespace = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"])]
        scope = namespace if binding["kind"] == "RoleBinding" else "cluster"
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["namespace"] == NS, subject
            for rule in role["rules"]:
                assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            for name in rule.get("resourceNames") or [None]:
                                granted.add((subject["name"], scope, group, resource, verb, name))
    return granted


@pytest.mark.parametrize("path", [BASE, EXAMPLE], ids=["base", "example"])
def test_rbac_grants_exactly_the_designed_rights(path) -> None:
    granted = inventory(render(path))
    assert sorted(granted - EXPECTED, key=str) == [], "granted beyond the design"
    assert sorted(EXPECTED - granted, key=str) == [], "designed but not granted"


def test_no_wildcards_no_secrets_no_unbound_roles() -> None:
    objects = render(EXAMPLE)
    rules = [r for o in objects if o["kind"] in ("Role", "ClusterRole") for r in o["rules"]]
    assert rules
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        assert "secrets" not in rule["resources"], rule
        assert not rule.get("nonResourceURLs"), rule
    bound = {
        o["roleRef"]["name"] for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
    }
    assert {o["metadata"]["name"] for o in objects if o["kind"] in ("Role", "ClusterRole")} == bound


def test_every_pod_runs_as_the_account_the_rights_are_for() -> None:
    objects = render(EXAMPLE)
    accounts = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}
    assert accounts == {sa for sa, *_ in EXPECTED}
    for kind, name in (("Deployment", "topoctl"), ("DaemonSet", "topoctl-agent")):
        pod = find(objects, kind, name)["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == name


def test_the_lease_rights_name_the_lease_the_controller_takes() -> None:
    lease = controller_flags(render(EXAMPLE))["--lease-name"]
    names = {g[5] for g in inventory(render(EXAMPLE)) if g[3] == "leases" and g[5]}
    assert names == {lease}


def test_the_inventory_sees_an_added_right() -> None:
    objects = render(EXAMPLE)
    role = find(objects, "ClusterRole", "topoctl-agent")
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    assert inventory(objects) - EXPECTED == {
        ("topoctl-agent", "cluster", "", "secrets", "get", None)
    }
