"""Synthetic but realistic clusters for benchmarks: Node objects and the matching sites/.

Each node looks like what ``kubectl get nodes -o json`` prints for a Talos node running
Kilo (about 5 KB of JSON): labels, Kilo's and the kubelet's annotations, taints,
addresses, capacity/allocatable, conditions, nodeInfo and a list of cached images with
their sizes. Each site has two named gateways (the first pinned as leader) and two
pools: workers by name pattern, GPU nodes by labels. Everything is deterministic.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

LAST_SEEN = 1_795_683_600
IMAGES = (
    "registry.k8s.io/pause:3.10",
    "ghcr.io/siderolabs/kubelet:v1.32.1",
    "quay.io/cilium/cilium:v1.16.6",
    "quay.io/cilium/operator-generic:v1.16.6",
    "docker.io/squat/kilo:0.6.0",
    "ghcr.io/cozystack/cozystack/kubeovn-webhook:v0.25.0",
    "registry.k8s.io/coredns/coredns:v1.11.3",
    "docker.io/library/nginx:1.27.3",
    "ghcr.io/prometheus/node-exporter:v1.8.2",
    "quay.io/prometheus-operator/prometheus-config-reloader:v0.79.2",
    "ghcr.io/fluxcd/source-controller:v1.4.1",
    "ghcr.io/fluxcd/helm-controller:v1.1.0",
    "docker.io/grafana/alloy:v1.5.1",
    "registry.k8s.io/metrics-server/metrics-server:v0.7.2",
)


def site_name(index: int) -> str:
    return f"site-{index:03d}"


def _image(name: str, index: int) -> dict[str, Any]:
    repo = name.rsplit(":", 1)[0]
    # zlib.crc32, not hash(): str hashes are salted per process (PYTHONHASHSEED).
    digest = f"{zlib.crc32(name.encode()) ^ index:08x}" * 8
    return {"names": [f"{repo}@sha256:{digest}", name], "sizeBytes": 12_000_000 + index * 7919}


def node(site: int, role: str, index: int, serial: int) -> dict[str, Any]:
    """One Node as the API returns it; ``role`` is gw, worker or gpu."""
    name = f"{site_name(site)}-{role}-{index}"
    host = index + {"gw": 0, "worker": 10, "gpu": 200}[role]
    internal = f"10.{site // 250}.{site % 250}.{host}"
    public = role == "gw"
    external = f"198.51.{site % 250}.{index + 1}" if public else None
    endpoint = f"{external or internal}:51820"
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "cx32" if role != "gpu" else "gx2-16",
        "topology.kubernetes.io/region": "eu-central",
        "example.com/site": site_name(site),
    }
    if role == "gpu":
        labels["nvidia.com/gpu.present"] = "true"
    annotations = {
        "kilo.squat.ai/endpoint": endpoint,
        "kilo.squat.ai/internal-ip": f"{internal}/24",
        "kilo.squat.ai/key": "c3ludGhldGljIGJlbmNoIGtleSAtIG5vdCByZWFsISE=",
        "kilo.squat.ai/last-seen": str(LAST_SEEN - serial % 20),
        "kilo.squat.ai/wireguard-ip": "",
        "kilo.squat.ai/granularity": "location",
        "kilo.squat.ai/discovered-endpoints": "{}",
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        "talos.dev/owned-labels": '["topology.kubernetes.io/region"]',
    }
    taints = []
    if role == "gpu":
        taints.append({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"})
    addresses = [{"type": "InternalIP", "address": internal}]
    if external:
        addresses.append({"type": "ExternalIP", "address": external})
    addresses.append({"type": "Hostname", "address": name})
    resources = {
        "cpu": "8",
        "ephemeral-storage": "157197504Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "32768000Ki",
        "pods": "110",
    }
    condition_types = (
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    )
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": annotations,
            "creationTimestamp": "2026-10-01T09:00:00Z",
            "labels": labels,
            "name": name,
            "resourceVersion": str(100_000 + serial),
            "uid": f"6f1c2d3e-{site:04d}-4000-8000-{serial:012d}",
        },
        "spec": {
            "podCIDR": f"10.{64 + serial // 65536}.{serial // 256 % 256}.0/24",
            "podCIDRs": [f"10.{64 + serial // 65536}.{serial // 256 % 256}.0/24"],
            "taints": taints,
        },
        "status": {
            "addresses": addresses,
            "allocatable": {**resources, "cpu": "7800m", "memory": "31665000Ki"},
            "capacity": resources,
            "conditions": [
                {
                    "lastHeartbeatTime": "2026-11-26T08:00:00Z",
                    "lastTransitionTime": "2026-10-01T09:01:00Z",
                    "message": f"kubelet reports {reason}",
                    "reason": reason,
                    "status": status,
                    "type": kind,
                }
                for kind, status, reason in condition_types
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": [_image(image, serial) for image in IMAGES],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": f"{serial:08x}-1b2c-4d3e-8f40-{site:012x}",
                "containerRuntimeVersion": "containerd://2.0.2",
                "kernelVersion": "6.12.6-talos",
                "kubeProxyVersion": "",
                "kubeletVersion": "v1.32.1",
                "machineID": f"{serial:032x}",
                "operatingSystem": "linux",
                "osImage": "Talos (v1.9.2)",
                "systemUUID": f"{serial:08x}-0000-4000-8000-{site:012x}",
            },
        },
    }


def nodes(count: int, sites: int) -> list[dict[str, Any]]:
    """``count`` nodes spread evenly over ``sites``: 2 gateways, then workers and GPUs."""
    out = []
    for serial in range(count):
        site, slot = serial % sites, serial // sites
        if slot < 2:
            out.append(node(site, "gw", slot + 1, serial))
        elif slot % 5 == 0:
            out.append(node(site, "gpu", slot, serial))
        else:
            out.append(node(site, "worker", slot, serial))
    return out


def site_yaml(index: int) -> str:
    """A Site document for ``site_name(index)`` matching :func:`nodes`."""
    name = site_name(index)
    return f"""apiVersion: topoctl.io/v1alpha1
kind: Site
metadata:
  name: {name}
spec:
  leader: [{name}-gw-1]
  persistentKeepalive: 25
  allowedLocationIPs: [172.{16 + index // 256}.{index % 256}.0/24]
  labels:
    topology.kubernetes.io/zone: {name}
  nodes:
    - name: {name}-gw-1
      endpoint: 198.51.{index % 250}.2:51820
      internalIP: 10.{index // 250}.{index % 250}.1
      taints:
        - {{key: dedicated, value: gateway, effect: NoSchedule}}
    - name: {name}-gw-2
      endpoint: 198.51.{index % 250}.3
      internalIP: 10.{index // 250}.{index % 250}.2
  pools:
    - name: workers
      selector:
        namePattern: "{name}-worker-*"
      labels:
        node-role.kubernetes.io/worker: ""
    - name: gpu
      selector:
        matchLabels:
          example.com/site: {name}
          nvidia.com/gpu.present: "true"
      labels:
        node-role.kubernetes.io/gpu: ""
  routes:
    - to: 192.168.{index % 256}.0/24
      via: leader
      dev: cilium_tunl
      onlink: true
      on: non-leaders
      metric: 100
"""


CLUSTER_YAML = """apiVersion: topoctl.io/v1alpha1
kind: Cluster
metadata:
  name: bench
spec:
  unassignedNodes: warn
"""


def write_cluster(directory: Path, count: int, sites: int) -> tuple[Path, Path]:
    """Write ``sites/`` and ``nodes.json`` under ``directory``; return both paths."""
    sites_dir = directory / "sites"
    sites_dir.mkdir(parents=True, exist_ok=True)
    (sites_dir / "cluster.yaml").write_text(CLUSTER_YAML)
    for index in range(sites):
        (sites_dir / f"{site_name(index)}.yaml").write_text(site_yaml(index))
    snapshot = directory / "nodes.json"
    doc = {"apiVersion": "v1", "kind": "List", "items": nodes(count, sites), "metadata": {}}
    snapshot.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    return sites_dir, snapshot
