"""The kubelet's part of every mesh node: its Node object, Ready condition and node Lease.

A node registers as a Talos kubelet with `cloud-provider: external` does: labels
(hostname, os, arch, plus the node's own), the annotations a kubelet always writes (kg
panics on a Node with no annotation at all), the `uninitialized` taint that the agent
removes once it has set the addresses, an InternalIP and Hostname address, a podCIDR
(the node IPAM controller's part), conditions with Ready True, and a Lease in
`kube-node-lease` renewed every `renew_every` seconds (40 s duration, as a kubelet's).
Writes go through the double's store, as any API write would: resourceVersions, watch
events and validation included.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from tests.apiserver import ApiServer, make_lease, make_node

LEASE_NAMESPACE = "kube-node-lease"
UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Kubelets:
    """Registers nodes and keeps their Leases renewed from one thread."""

    def __init__(self, api: ApiServer, *, renew_every: float = 10.0) -> None:
        self.api = api
        self.renew_every = renew_every
        self._names: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start renewing Leases."""
        self._thread = threading.Thread(target=self._renew_loop, name="kubelets", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing Leases."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def register(
        self,
        name: str,
        *,
        address: str,
        pod_cidr: str,
        labels: Mapping[str, str],
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        """Create the Node and its Lease, as a kubelet does when it starts; `annotations`
        are what its machine config adds (Talos `nodeAnnotations`), for Kilo alone."""
        node = make_node(
            name,
            labels=labels,
            annotations={
                "alpha.kubernetes.io/provided-node-ip": address,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                **(annotations or {}),
            },
            taints=[{"key": UNINITIALIZED, "value": "true", "effect": "NoSchedule"}],
            internal_ip=address,
            pod_cidr=pod_cidr,
        )
        self.api.seed(node)
        self.api.seed(make_lease(name, LEASE_NAMESPACE, holder=name, duration_seconds=40))
        with self._lock:
            self._names.add(name)

    def unregister(self, name: str) -> None:
        """Delete the Node and its Lease (a node removed from the cluster)."""
        with self._lock:
            self._names.discard(name)
        if self.api.node(name) is not None:
            self.api.delete("Node", name)
        if self.api.get("Lease", name, LEASE_NAMESPACE) is not None:
            self.api.delete("Lease", name, LEASE_NAMESPACE)

    def renew(self, name: str) -> None:
        """Renew one node's Lease now."""

        def touch(lease: dict[str, object]) -> None:
            spec = lease.setdefault("spec", {})
            assert isinstance(spec, dict)
            spec["renewTime"] = _micro_now()

        self.api.mutate("Lease", name, touch, LEASE_NAMESPACE)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_every):
            with self._lock:
                names = sorted(self._names)
            for name in names:
                try:
                    self.renew(name)
                except Exception:  # a node removed meanwhile: its Lease is gone
                    continue
