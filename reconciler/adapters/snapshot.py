"""A cluster in a file: what ``kubectl get nodes -o yaml|json`` prints (a List or NodeList).

Reading for a plan takes the fast path (``json``, or PyYAML's C loader). A writable
snapshot keeps the file's own layout: YAML goes through ruamel's round-trip mode, so
fields, order, comments and quoting that apply does not change stay as they were, and
JSON keeps its key order and indentation. Writes behave like an API server's: a stale
``resourceVersion`` is a conflict, a real change bumps the version, a no-op does not.
The file is replaced atomically (temporary file + rename) on commit.
"""

from __future__ import annotations

import copy
import io
import json
import os
import tempfile
import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from reconciler.adapters.patches import node_patch, status_patch
from reconciler.model.state import NodeState
from reconciler.ports import (
    BackendError,
    ConflictError,
    NodeObject,
    NodeWrite,
    NotFoundError,
    StatusWrite,
)

if TYPE_CHECKING:
    from ruamel.yaml import YAML


class SnapshotError(BackendError):
    """The snapshot file cannot be read or written."""


def _is_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def load_fast(path: Path) -> list[dict[str, Any]]:
    """The nodes of a snapshot, parsed as fast as the format allows."""
    text = _read(path)
    try:
        if _is_json(text):
            data = json.loads(text)
        else:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            data = yaml.load(text, Loader=loader)
    except (ValueError, yaml.YAMLError) as err:
        raise SnapshotError(f"{path}: not a JSON or YAML node list: {err}") from None
    del text  # tens of MB for a large cluster: not kept beside the nodes
    return list(_items(data, path))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise SnapshotError(f"{path}: {err.strerror}") from None


def _items(data: Any, path: Path) -> Any:
    if isinstance(data, Mapping) and data.get("kind") == "Node":
        return [data]
    if not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
        raise SnapshotError(
            f"{path}: expected a List or NodeList with items (what "
            "`kubectl get nodes -o yaml` prints)"
        )
    return data["items"]


def merge_patch(target: MutableMapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """RFC 7386 merge patch, in place; returns whether anything changed."""
    changed = False
    for key, value in patch.items():
        if value is None:
            if key in target:
                del target[key]
                changed = True
        elif isinstance(value, Mapping):
            child = target.get(key)
            if not isinstance(child, MutableMapping):
                target[key] = child = {}
                changed = True
            changed = merge_patch(child, value) or changed
        elif target.get(key) != value:
            target[key] = copy.deepcopy(value)
            changed = True
    return changed


class SnapshotBackend:
    """Reads (and, when writable, writes) a node snapshot file."""

    def __init__(self, path: Path, *, writable: bool = False) -> None:
        self.path = path
        self.writable = writable
        self._dirty = False
        self._yaml: YAML | None = None
        self._indent = 4
        self._nodes: list[Any]
        if not writable:  # a plan: the fast path, which reads the file only once
            self._doc = None
            self._nodes = load_fast(path)
        elif not _is_json(text := _read(path)):
            from ruamel.yaml import YAML  # the round-trip loader: only to write YAML

            self._yaml = YAML(typ="rt")
            self._yaml.preserve_quotes = True
            self._yaml.width = 4096
            self._yaml.indent(mapping=2, sequence=2, offset=0)
            try:
                self._doc = self._yaml.load(text)
            except Exception as err:
                raise SnapshotError(f"{path}: not YAML: {err}") from None
            self._nodes = _items(self._doc, path)
        else:
            self._doc = json.loads(text)
            self._indent = _json_indent(text)
            self._nodes = _items(self._doc, path)
        self._by_name = {n["metadata"]["name"]: n for n in self._nodes}

    def list_nodes(self) -> list[NodeState]:
        """Every node in the file, as the values topoctl reads."""
        return [NodeState.from_object(n) for n in self._nodes]

    def export_nodes(self) -> list[NodeObject]:
        """Every node object in the file, unchanged."""
        return list(self._nodes)

    def get_node(self, name: str) -> NodeState:
        """One node by name."""
        return NodeState.from_object(self._node(name))

    def write_node(self, write: NodeWrite) -> NodeState:
        """A guarded write, as an API server would take it."""
        return NodeState.from_object(self._patch(write.name, node_patch(write), status=False))

    def write_status(self, write: StatusWrite) -> NodeState:
        """A guarded status write, as an API server would take it."""
        return NodeState.from_object(self._patch(write.name, status_patch(write), status=True))

    def wait_for_change(self, name: str, resource_version: str, timeout: float) -> bool:
        """True at once when the node held here is no longer at ``resource_version``;
        else False after ``timeout`` seconds (a file sends no events)."""
        if str(self._node(name)["metadata"].get("resourceVersion", "")) != resource_version:
            return True
        time.sleep(timeout)
        return False

    def _node(self, name: str) -> Any:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFoundError(f"node {name!r} is not in {self.path}") from None

    def _patch(self, name: str, patch: Mapping[str, Any], *, status: bool) -> NodeObject:
        if not self.writable:
            raise SnapshotError(f"{self.path} was opened read-only")
        node = self._node(name)
        assert isinstance(node, MutableMapping)
        rest = copy.deepcopy(dict(patch))
        meta = dict(rest.pop("metadata", None) or {})
        expected = meta.pop("resourceVersion", None)
        current = str(node["metadata"].get("resourceVersion", ""))
        if expected is not None and str(expected) != current:
            raise ConflictError(
                f"node {name!r} is at resourceVersion {current}, the patch "
                f"was made against {expected}"
            )
        body = (
            {"status": rest.get("status")}
            if status
            else {k: v for k, v in rest.items() if k != "status"}
        )
        if meta and not status:
            body["metadata"] = meta
        if merge_patch(node, {k: v for k, v in body.items() if v is not None}):
            node["metadata"]["resourceVersion"] = str(self._next_version())
            self._dirty = True
        return node

    def _next_version(self) -> int:
        versions = [n["metadata"].get("resourceVersion", "0") for n in self._nodes]
        return max((int(v) for v in versions if str(v).isdigit()), default=0) + 1

    def commit(self) -> None:
        """Write the file atomically if anything changed."""
        if not self._dirty:
            return
        buffer = io.StringIO()
        if self._yaml is not None:
            self._yaml.dump(self._doc, buffer)
        else:
            json.dump(self._doc, buffer, indent=self._indent, ensure_ascii=False)
            buffer.write("\n")
        _atomic_write(self.path, buffer.getvalue())
        self._dirty = False


def _json_indent(text: str) -> int:
    for line in text.splitlines()[1:2]:
        return len(line) - len(line.lstrip(" ")) or 4
    return 4


def _atomic_write(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
