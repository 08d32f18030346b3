"""The snapshot use case: the cluster's nodes as one List, for offline planning."""

from __future__ import annotations

from typing import Any

from reconciler.ports import NodeExporter


def snapshot(exporter: NodeExporter) -> dict[str, Any]:
    """The cluster's nodes as one List, as ``kubectl get nodes -o yaml`` prints it."""
    items = [dict(n) for n in exporter.export_nodes()]
    for item in items:
        item.setdefault("apiVersion", "v1")
        item.setdefault("kind", "Node")
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
