"""The Kubernetes shape of the port's typed writes: RFC 7386 merge patches.

A merge patch names only the keys that change (None deletes one) and replaces lists
whole, so taints, addresses and conditions are sent as the full list the write states.
Every patch carries the resourceVersion it was computed against: the API (or the
snapshot file) refuses it with 409 once the node has moved.
"""

from __future__ import annotations

from typing import Any

from reconciler.model.state import NodeWrite, StatusWrite


def node_patch(write: NodeWrite) -> dict[str, Any]:
    """The merge patch of a metadata/spec write."""
    metadata: dict[str, Any] = {"resourceVersion": write.resource_version}
    if write.annotations:
        metadata["annotations"] = dict(write.annotations)
    if write.labels:
        metadata["labels"] = dict(write.labels)
    patch: dict[str, Any] = {"metadata": metadata}
    if write.taints is not None:
        patch["spec"] = {"taints": [t.as_dict() for t in write.taints]}
    return patch


def status_patch(write: StatusWrite) -> dict[str, Any]:
    """The merge patch of a status write."""
    status: dict[str, Any] = {}
    if write.addresses is not None:
        status["addresses"] = [{"type": t, "address": a} for t, a in write.addresses]
    if write.conditions is not None:
        status["conditions"] = [c.as_dict() for c in write.conditions]
    return {"metadata": {"resourceVersion": write.resource_version}, "status": status}
