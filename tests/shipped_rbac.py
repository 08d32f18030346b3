"""The RBAC and admission policy that deploy/ ships, enforced by the API double, and the
components' own tokens.

`kubectl kustomize deploy/base` renders the manifests (tests/deploy/manifests.py); its
Namespace, ServiceAccounts, Roles, ClusterRoles and bindings, and the agent's
ValidatingAdmissionPolicy and its binding, are stored in the double exactly as rendered,
and the controller and the agent talk to it with tokens minted for their own service
accounts (the agent's bound to its Node, as a pod's token is bound to the node the pod
runs on). A request the shipped RBAC does not grant, or a write the policy refuses, is
then refused in the test as it would be in a cluster.

Fixtures (enabled in tests/conftest.py): `shipped` (the double with the RBAC loaded),
`controller_api` (an ApiClient holding the controller's token), `controller_kubeconfig`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.apiserver import ApiServer
from tests.apiserver.fixtures import write_kubeconfig
from tests.deploy.manifests import BASE, render

NAMESPACE = "topoctl-system"  # where deploy/base installs the controller and the agent
CONTROLLER = "topoctl"  # the controller's ServiceAccount
AGENT = "topoctl-agent"  # the agent's ServiceAccount
ACCESS_KINDS = frozenset(
    {
        "Namespace",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
)


def rbac_objects(directory: Path = BASE) -> list[dict[str, Any]]:
    """The access-control objects of a kustomization (RBAC, admission), as rendered."""
    return [o for o in render(directory) if o["kind"] in ACCESS_KINDS]


@dataclass(frozen=True)
class Shipped:
    """The double holding deploy/'s RBAC."""

    apiserver: ApiServer

    def controller_token(self) -> str:
        """A token of the controller's service account."""
        return self.apiserver.token(NAMESPACE, CONTROLLER)

    def agent_token(self, node: str) -> str:
        """A token of the agent's service account, bound to its Node (which must exist)."""
        return self.apiserver.token(NAMESPACE, AGENT, node=node)

    def api(self, token: str) -> client.ApiClient:
        """An ApiClient that sends `token`, without urllib3's own retries."""
        config = client.Configuration(host=self.apiserver.url)
        config.retries = False
        config.api_key = {"authorization": f"Bearer {token}"}
        return client.ApiClient(config)

    def kubeconfig(self, path: Path, token: str) -> Path:
        """A kubeconfig whose user is the account `token` was minted for."""
        return write_kubeconfig(path, self.apiserver.url, namespace=NAMESPACE, token=token)


def load(apiserver: ApiServer, directory: Path = BASE) -> Shipped:
    """Store the rendered access control (namespaces that exist already are kept)."""
    present = {n["metadata"]["name"] for n in apiserver.objects("Namespace")}
    for obj in rbac_objects(directory):
        if obj["kind"] == "Namespace" and obj["metadata"]["name"] in present:
            continue
        apiserver.seed(obj)
    return Shipped(apiserver)


@pytest.fixture
def shipped(apiserver: ApiServer) -> Shipped:
    """The double with deploy/base's RBAC in it."""
    return load(apiserver)


@pytest.fixture
def controller_api(shipped: Shipped) -> Iterator[client.ApiClient]:
    """The real client as the controller's service account."""
    api = shipped.api(shipped.controller_token())
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def controller_kubeconfig(shipped: Shipped, tmp_path: Path) -> Path:
    """A kubeconfig for the controller's service account, in its namespace."""
    return shipped.kubeconfig(tmp_path / "controller-kubeconfig", shipped.controller_token())
