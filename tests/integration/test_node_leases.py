"""Node Leases (kube-node-lease) read through the real client from the API-server double:
the kubelet's renewals, a sign of life the lifecycle honours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kubernetes import client

from reconciler.adapters.kubelease import node_lease_renewals
from reconciler.ports import LeaseError
from tests.apiserver import ApiServer


def node_lease(name: str, renew: str | None) -> dict[str, object]:
    spec: dict[str, object] = {"holderIdentity": name, "leaseDurationSeconds": 40}
    if renew is not None:
        spec["renewTime"] = renew
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": spec,
    }


def test_renewals_by_node(apiserver: ApiServer, kube_api: client.ApiClient) -> None:
    apiserver.seed(
        node_lease("w-1", "2026-12-02T19:59:50.123456Z"),
        node_lease("w-2", None),  # never renewed: no sign of life from it
    )
    assert node_lease_renewals(kube_api) == {
        "w-1": datetime(2026, 12, 2, 19, 59, 50, 123456, tzinfo=UTC)
    }


def test_no_node_leases_is_an_empty_map(kube_api: client.ApiClient) -> None:
    assert node_lease_renewals(kube_api) == {}


def test_a_failing_api_is_a_lease_error(apiserver: ApiServer, kube_api: client.ApiClient) -> None:
    apiserver.stop()
    with pytest.raises(LeaseError, match="node leases"):
        node_lease_renewals(kube_api, timeout=1.0)
