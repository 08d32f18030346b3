"""Realistic objects to seed the double with (shaped like a Talos node running Kilo and Cilium)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]

DEFAULT_IMAGES: tuple[tuple[str, int], ...] = (
    ("ghcr.io/siderolabs/kubelet:v1.32.4", 95_000_000),
    ("quay.io/cilium/cilium:v1.16.6", 220_000_000),
    ("docker.io/squat/kilo:0.6.0", 48_000_000),
    ("registry.k8s.io/pause:3.10", 320_000),
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(type_: str, ok: bool, reason: str, message: str, stamp: str) -> JSON:
    return {
        "type": type_,
        "status": "True" if ok else "False",
        "lastHeartbeatTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def make_node(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, Any]] | None = None,
    internal_ip: str | None = "10.0.0.10",
    external_ip: str | None = None,
    addresses: Sequence[Mapping[str, str]] | None = None,
    ready: bool | None = True,
    unschedulable: bool = False,
    kubelet_version: str = "v1.32.4",
    architecture: str = "amd64",
    pod_cidr: str | None = None,
    provider_id: str | None = None,
    images: Sequence[tuple[str, int]] | None = None,
    cpu: str = "4",
    memory: str = "8039068Ki",
    control_plane: bool = False,
) -> JSON:
    """A Node as kubelet registers it: labels, addresses, conditions, nodeInfo, images.

    `ready=None` gives a Ready condition with status Unknown (kubelet stopped reporting).
    `addresses` overrides the InternalIP/ExternalIP/Hostname list built from the IPs.
    """
    stamp = _now()
    node_labels = {
        "beta.kubernetes.io/arch": architecture,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": architecture,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    if control_plane:
        node_labels["node-role.kubernetes.io/control-plane"] = ""
    node_labels.update(labels or {})
    if addresses is None:
        built = []
        if internal_ip:
            built.append({"type": "InternalIP", "address": internal_ip})
        if external_ip:
            built.append({"type": "ExternalIP", "address": external_ip})
        built.append({"type": "Hostname", "address": name})
        address_list = built
    else:
        address_list = [dict(a) for a in addresses]
    conditions = [
        _condition(
            "MemoryPressure",
            False,
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            stamp,
        ),
        _condition(
            "DiskPressure", False, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", stamp
        ),
        _condition(
            "PIDPressure",
            False,
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            stamp,
        ),
    ]
    if ready is None:
        conditions.append(
            {
                "type": "Ready",
                "status": "Unknown",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
            }
        )
    else:
        conditions.append(
            _condition(
                "Ready",
                ready,
                "KubeletReady" if ready else "KubeletNotReady",
                "kubelet is posting ready status" if ready else "container runtime is down",
                stamp,
            )
        )
    digest = hashlib.sha256(name.encode()).hexdigest()
    spec: JSON = {}
    if pod_cidr:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    if provider_id:
        spec["providerID"] = provider_id
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    if unschedulable:
        spec["unschedulable"] = True
    metadata: JSON = {"name": name, "labels": node_labels}
    if annotations:
        metadata["annotations"] = dict(annotations)
    resources = {
        "cpu": cpu,
        "ephemeral-storage": "102350Mi",
        "hugepages-2Mi": "0",
        "memory": memory,
        "pods": "110",
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": metadata,
        "spec": spec,
        "status": {
            "addresses": address_list,
            "allocatable": dict(resources),
            "capacity": dict(resources),
            "conditions": conditions,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": [
                {"names": [image], "sizeBytes": size}
                for image, size in (DEFAULT_IMAGES if images is None else images)
            ],
            "nodeInfo": {
                "architecture": architecture,
                "bootID": f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-"
                f"{digest[20:32]}",
                "containerRuntimeVersion": "containerd://2.0.2",
                "kernelVersion": "6.12.11-talos",
                "kubeProxyVersion": "",
                "kubeletVersion": kubelet_version,
                "machineID": digest[:32],
                "operatingSystem": "linux",
                "osImage": "Talos (v1.9.3)",
                "systemUUID": digest[32:64],
            },
        },
    }


def make_lease(
    name: str,
    namespace: str = "kube-system",
    *,
    holder: str | None = None,
    duration_seconds: int = 15,
    transitions: int = 0,
) -> JSON:
    """A coordination.k8s.io/v1 Lease (leader election)."""
    spec: JSON = {"leaseDurationSeconds": duration_seconds, "leaseTransitions": transitions}
    if holder is not None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec.update({"holderIdentity": holder, "acquireTime": now, "renewTime": now})
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
