"""The snapshot use case: the cluster's nodes as one List, for offline planning."""

from __future__ import annotations

from typing import Any

from reconciler.model import captured, keys
from reconciler.ports import NodeExporter


def snapshot(exporter: NodeExporter, captured_at: int | None) -> dict[str, Any]:
    """The cluster's nodes as one List, as ``kubectl get nodes -o yaml`` prints it, with
    the unix second they were read at (``topoctl.io/captured-at``; None: unknown, as
    for a snapshot of a file that does not say)."""
    items = [dict(n) for n in exporter.export_nodes()]
    for item in items:
        item.setdefault("apiVersion", "v1")
        item.setdefault("kind", "Node")
    metadata: dict[str, Any] = {"resourceVersion": ""}
    if captured_at is not None:
        metadata["annotations"] = {keys.TOPOCTL_CAPTURED_AT: captured.render(captured_at)}
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": metadata}
