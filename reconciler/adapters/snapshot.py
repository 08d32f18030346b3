"""A cluster in a file: what ``kubectl get nodes -o yaml|json`` prints (a List or NodeList).

JSON goes through orjson, YAML through libyaml (PyYAML's C loader); a read-only JSON
file is first offered to msgspec (nodewire.py), which builds the states without dicts.
Every item is checked once, as it is read: a Node with a name of its own and fields of
the right shape, or a clear error naming the file, the item and the field (``nodes.json:
items[3].metadata.annotations: ...``). A write keeps the file's own layout: JSON its key
order, indentation (compact stays compact) and final newline; YAML every byte outside
the changed items (yamlfile.py). Writes behave like an API server's: a stale
``resourceVersion`` is a conflict, a real change bumps the version (the newest is kept:
no scan per write), a no-op does not. ``commit`` replaces the file atomically, through
a symlink.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import yaml

from reconciler.adapters import jsonfile, nodewire, yamlfile
from reconciler.adapters.atomicfile import signals_held, write_atomic
from reconciler.adapters.nodewire import LIST_KINDS
from reconciler.adapters.patches import node_patch, status_patch
from reconciler.model import captured, keys
from reconciler.model.shape import ShapeError, kind_of
from reconciler.model.state import NodeState, NodeWrite, StatusWrite
from reconciler.ports import BackendError, ConflictError, NodeObject, NotFoundError


class SnapshotError(BackendError):
    """The snapshot file cannot be read or written."""


def read_bytes(path: Path) -> bytes:
    """The file's content; a missing, unreadable or non-regular file is a SnapshotError."""
    try:
        if not path.is_file():
            raise SnapshotError(f"{path}: not a regular file")
        return path.read_bytes()
    except OSError as err:
        raise SnapshotError(f"{path}: cannot read: {err.strerror}") from None


def decode(path: Path, data: bytes) -> str:
    """The text of a snapshot; not UTF-8 (binary data) is a SnapshotError with its place."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        col = err.start - data.rfind(b"\n", 0, err.start)
        raise SnapshotError(
            f"{path}:{line}:{col}: not UTF-8 text (byte 0x{data[err.start]:02x}): "
            "a snapshot is what `kubectl get nodes -o yaml|json` prints"
        ) from None


def is_json(data: bytes) -> bool:
    """JSON starts with an object or an array; anything else is read as YAML."""
    return data.lstrip()[:1] in (b"{", b"[")


def parse(path: Path, data: bytes) -> tuple[Any, str, list[yamlfile.Span] | None]:
    """The document; for YAML also its text and where each item is in it (None: JSON)."""
    json_error = None
    if is_json(data):
        try:
            return jsonfile.loads(path, data, SnapshotError), "", None
        except SnapshotError as err:  # YAML's flow style starts with a brace too
            json_error = err
    text = decode(path, data)
    try:
        doc, spans = yamlfile.load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as err:
        raise (json_error or SnapshotError(yamlfile.error(path, err))) from None
    return doc, text, spans


def node_items(data: Any, path: Path) -> list[Any]:
    """The items of a List or NodeList of Nodes (or a lone Node); anything else is refused."""
    if isinstance(data, Mapping) and data.get("kind") == "Node":
        return [data]
    if not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
        got = kind_of(data) if not isinstance(data, Mapping) else "a map without items"
        raise SnapshotError(
            f"{path}: expected a List or NodeList with items (what `kubectl get nodes "
            f"-o yaml` prints), got {got}"
        )
    kind = data.get("kind")
    if kind is not None and kind not in LIST_KINDS:
        raise SnapshotError(
            f"{path}: kind: {str(kind)[:60]!r} is not a List or NodeList of Nodes: "
            "topoctl reads and writes Nodes only"
        )
    items: list[Any] = data["items"]
    for index, item in enumerate(items):
        found = item.get("kind") if isinstance(item, Mapping) else None
        if found != "Node":
            what = repr(str(found)[:60]) if found is not None else kind_of(item)
            raise SnapshotError(
                f"{path}: items[{index}].kind: expected Node, got {what}: "
                "topoctl reads and writes Nodes only"
            )
    return items


def list_annotations(meta: Any, path: Path) -> Mapping[str, Any]:
    """The annotations of the List itself (``metadata.annotations``), checked."""
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise SnapshotError(f"{path}: metadata: expected a map, got {kind_of(meta)}")
    annotations = meta.get("annotations")
    if annotations is None:
        return {}
    if not isinstance(annotations, Mapping):
        raise SnapshotError(
            f"{path}: metadata.annotations: expected a map, got {kind_of(annotations)}"
        )
    return annotations


def capture_time(annotations: Mapping[str, Any], path: Path) -> int | None:
    """When ``topoctl snapshot`` read the nodes (None: the file does not say)."""
    value = annotations.get(keys.TOPOCTL_CAPTURED_AT)
    if value is None:
        return None
    try:
        return captured.parse(value)
    except ValueError as err:
        raise SnapshotError(
            f"{path}: metadata.annotations.{keys.TOPOCTL_CAPTURED_AT}: {err}"
        ) from None


def node_states(items: list[Any], path: Path) -> dict[str, NodeState]:
    """Every item as a NodeState, by name; a malformed item or a second name is refused."""
    states: dict[str, NodeState] = {}
    for index, item in enumerate(items):
        try:
            state = NodeState.from_object(item)
        except ShapeError as err:
            raise SnapshotError(f"{path}: items[{index}].{err}") from None
        if state.name in states:
            first = list(states).index(state.name)
            raise SnapshotError(
                f"{path}: items[{index}].metadata.name: {state.name[:80]!r} is also "
                f"items[{first}]: node names are unique in a cluster"
            )
        states[state.name] = state
    return states


def load_fast(path: Path) -> list[dict[str, Any]]:
    """The nodes of a snapshot, parsed as fast as the format allows and checked."""
    items = node_items(parse(path, read_bytes(path))[0], path)
    node_states(items, path)
    return items


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


def _version(raw: Any) -> int:
    text = str(raw)
    return int(text) if text.isdigit() else 0


class SnapshotBackend:
    """Reads (and, when writable, writes) a node snapshot file."""

    def __init__(self, path: Path, *, writable: bool = False) -> None:
        self.path = path
        self.writable = writable
        self.written = False  # True once commit has replaced the file
        self._dirty: set[int] = set()  # indexes of the items changed since the last commit
        self._layout: jsonfile.Layout | None = None
        self._text = ""  # a writable YAML file's text, and where each item is in it
        self._spans: list[yamlfile.Span] = []
        self._doc: Any = None  # the parsed file and its items, kept only to be written
        self._nodes: list[Any] = []
        self.captured_at: int | None = None  # when `topoctl snapshot` read the nodes
        data = read_bytes(path)
        read = nodewire.node_list(data) if not writable and is_json(data) else None
        if read is None:  # the general way: a file to write, YAML, or an error to name
            states = self._parse(data)
        else:
            states = read[0]
            self.captured_at = capture_time(read[1], path)
        del data  # tens of MB for a large cluster: not kept beside the nodes
        self._states = states
        self._index = {name: i for i, name in enumerate(states)}
        self._max_version = max((_version(s.resource_version) for s in states.values()), default=0)

    def _parse(self, data: bytes) -> dict[str, NodeState]:
        """The states from the parsed file, keeping what a write needs when writable."""
        doc, text, spans = parse(self.path, data)
        nodes = node_items(doc, self.path)
        meta = doc.get("metadata") if doc.get("kind") != "Node" else None  # a List's own
        self.captured_at = capture_time(list_annotations(meta, self.path), self.path)
        if self.writable:  # read-only, the raw objects are let go: a plan needs states only
            self._doc, self._nodes = doc, nodes
            if spans is None:
                self._layout = jsonfile.Layout.of(data)
            else:
                self._text, self._spans = text, spans
        return node_states(nodes, self.path)

    def list_nodes(self) -> list[NodeState]:
        """Every node in the file, as the values topoctl reads."""
        return list(self._states.values())

    def export_nodes(self) -> list[NodeObject]:
        """Every node object in the file, unchanged (read again when opened read-only)."""
        if not self.writable:
            return list(load_fast(self.path))
        return list(self._nodes)

    def get_node(self, name: str) -> NodeState:
        """One node by name."""
        try:
            return self._states[name]
        except KeyError:
            raise NotFoundError(f"node {name!r} is not in {self.path}") from None

    def write_node(self, write: NodeWrite) -> NodeState:
        """A guarded write, as an API server would take it."""
        self._patch(write.name, node_patch(write), status=False)
        return self._states[write.name]

    def write_status(self, write: StatusWrite) -> NodeState:
        """A guarded status write, as an API server would take it."""
        self._patch(write.name, status_patch(write), status=True)
        return self._states[write.name]

    def wait_for_change(self, name: str, resource_version: str, timeout: float) -> bool:
        """True at once when the node held here is no longer at ``resource_version``;
        else False after ``timeout`` seconds (a file sends no events)."""
        if self.get_node(name).resource_version != resource_version:
            return True
        time.sleep(timeout)
        return False

    def _node(self, name: str) -> Any:
        try:
            return self._nodes[self._index[name]]
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
        current = self._states[name].resource_version
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
            self._max_version += 1  # the cluster's newest version, kept: no scan per write
            node["metadata"]["resourceVersion"] = str(self._max_version)
            try:
                self._states[name] = NodeState.from_object(node)
            except ShapeError as err:
                raise SnapshotError(f"{self.path}: node {name!r} after the write: {err}") from None
            self._dirty.add(self._index[name])
        return node

    def commit(self) -> None:
        """Write the file atomically (through a symlink) if anything changed."""
        if not self._dirty:
            return
        if self._layout is not None:
            data = self._layout.dumps(self._doc)
        else:
            text, spans = yamlfile.splice(self._text, self._spans, self._nodes, self._dirty)
            data = text.encode("utf-8")
        try:
            with signals_held():  # a signal now is delivered once `written` tells the truth
                write_atomic(self.path, data)
                self.written = True
                if self._layout is None:
                    self._text, self._spans = text, spans
        except OSError as err:
            raise SnapshotError(
                f"{self.path}: cannot write: {err.strerror or err}: the file is unchanged"
            ) from None
        self._dirty.clear()
