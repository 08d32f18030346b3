"""Nodes from a file for the standalone double: what `kubectl get nodes -o json|yaml` prints.

A List or NodeList (items may lack kind/apiVersion, as in typed lists), a single
Node, or a topoctl snapshot (the same List form). Fields only a server sets are
dropped so the double assigns its own: uid, resourceVersion, creationTimestamp,
managedFields, selfLink, generation, deletionTimestamp.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

JSON = dict[str, Any]
SERVER_SET = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


class NodesFileError(ValueError):
    """The file is not a node list."""


def load_nodes(path: Path) -> list[JSON]:
    """The Nodes in `path`, ready to create (server-set metadata removed)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise NodesFileError(f"{path}: {err.strerror}") from None
    try:
        data = json.loads(text) if text.lstrip()[:1] in ("{", "[") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        raise NodesFileError(f"{path}: neither JSON nor YAML: {err}") from None
    if isinstance(data, dict) and data.get("kind") == "Node":
        items: Any = [data]
    elif isinstance(data, dict) and isinstance(data.get("items"), list):
        items = data["items"]
    else:
        raise NodesFileError(
            f"{path}: expected a List or NodeList with items, or a Node "
            "(what `kubectl get nodes -o yaml` prints)"
        )
    nodes = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise NodesFileError(f"{path}: item {i} is not an object")
        kind = item.get("kind") or "Node"
        if kind != "Node" or item.get("apiVersion", "v1") != "v1":
            raise NodesFileError(
                f"{path}: item {i} is a {item.get('apiVersion')} {kind}, not a Node"
            )
        node = dict(item)
        meta = {k: v for k, v in (item.get("metadata") or {}).items() if k not in SERVER_SET}
        node.update(kind="Node", apiVersion="v1", metadata=meta)
        nodes.append(node)
    return nodes
