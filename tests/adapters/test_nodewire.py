"""The msgspec fast path reads a JSON List of Nodes exactly as ``NodeState.from_object``
does, or declines it: it never takes what the general reader refuses, nor reads a
value differently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.adapters import nodewire
from reconciler.adapters.snapshot import SnapshotBackend, SnapshotError, node_items, node_states
from reconciler.model.state import NodeState

TEXT = st.text(st.characters(codec="utf-8"), max_size=8)
ODD = st.one_of(  # what a hand-edited file puts where a string or a map belongs
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(TEXT, TEXT, max_size=2),
)


def _or_odd(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, value, value, value, value, value, value, ODD)


def _fields(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A map where each field may be missing, right, or of an odd type."""
    return st.fixed_dictionaries({}, optional={k: _or_odd(v) for k, v in fields.items()})


FIELD_KEYS = st.dictionaries(
    st.one_of(st.sampled_from(["f:a", "f:b", ".", "f:"]), TEXT), _or_odd(st.just({})), max_size=3
)
MANAGED = _fields(  # a managedFields entry: who owns which labels and annotations
    manager=st.sampled_from(["topoctl", "kubectl-annotate", "talos", ""]),
    operation=st.sampled_from(["Update", "Apply"]),
    time=st.sampled_from(["2026-12-07T10:00:00Z", "2026-12-07T10:00:01Z", ""]),
    fieldsV1=_fields(
        **{"f:metadata": _fields(**{"f:annotations": FIELD_KEYS, "f:labels": FIELD_KEYS})}
    ),
)
NODE = st.fixed_dictionaries(
    {
        "kind": _or_odd(st.just("Node")),
        "metadata": _or_odd(
            _fields(
                name=st.sampled_from(["n1", "n2", "n3", ""]),
                uid=TEXT,
                resourceVersion=st.one_of(TEXT, st.integers(-5, 2**40)),
                labels=st.dictionaries(TEXT, _or_odd(TEXT), max_size=3),
                annotations=st.dictionaries(TEXT, _or_odd(TEXT), max_size=3),
                managedFields=st.lists(MANAGED, max_size=3),
            )
        ),
    },
    optional={
        "spec": _fields(
            taints=st.lists(_fields(key=TEXT, effect=TEXT, value=TEXT), max_size=2),
            podCIDR=TEXT,
        ),
        "status": _fields(
            conditions=st.lists(
                _fields(
                    type=TEXT,
                    status=st.sampled_from(["True", "", "Unknown"]),
                    reason=TEXT,
                    message=TEXT,
                    lastTransitionTime=TEXT,
                    lastHeartbeatTime=TEXT,
                ),
                max_size=3,
            ),
            addresses=st.lists(_fields(type=TEXT, address=TEXT), max_size=2),
        ),
        "extra": ODD,
    },
)
DOC = st.fixed_dictionaries(
    {"items": _or_odd(st.lists(NODE, max_size=3))},
    optional={"kind": _or_odd(st.sampled_from(["List", "NodeList", "Node", "Pod"]))},
)


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # not orjson: it refuses integers beyond 64 bits


def general(doc: Any) -> dict[str, NodeState] | str:
    """What the general reader makes of the document: the states, or its error."""
    try:
        return node_states(node_items(doc, Path("nodes.json")), Path("nodes.json"))
    except SnapshotError as err:
        return str(err)


@given(DOC)
def test_the_fast_path_reads_as_the_general_reader_or_declines(doc: dict[str, Any]) -> None:
    fast = nodewire.node_states(_json(doc))
    if fast is not None:
        assert general(doc) == fast


@given(st.lists(NODE, max_size=4))
def test_a_well_formed_list_takes_the_fast_path(items: list[dict[str, Any]]) -> None:
    """Where every field has its JSON type and names are unique, nothing is declined."""
    wanted = general({"kind": "List", "items": items})
    fast = nodewire.node_states(_json({"kind": "List", "items": items}))
    if isinstance(wanted, dict) and _all_typed(items):
        assert fast == wanted


def _all_typed(items: list[dict[str, Any]]) -> bool:
    """No null, boolean or float anywhere (the general reader takes a null for an absent
    field; the fast path declines it)."""

    def typed(value: Any) -> bool:
        if isinstance(value, dict):
            return all(typed(v) for v in value.values())
        if isinstance(value, list):
            return all(typed(v) for v in value)
        return isinstance(value, str) or type(value) is int

    return all(typed({k: v for k, v in item.items() if k != "extra"}) for item in items)


@pytest.mark.parametrize(
    "text",
    [
        b'{"kind": "Node", "metadata": {"name": "n1"}}',  # a lone Node
        b'{"kind": "List", "items": [{"kind": "Node", "metadata": null}]}',
        b'{"items": [{"kind": "Node", "metadata": {"name": "n1"}}, '
        b'{"kind": "Node", "metadata": {"name": "n1"}}]}',  # a name twice
        b"\xff\xfe not json",
    ],
)
def test_what_the_fast_path_declines(text: bytes) -> None:
    assert nodewire.node_states(text) is None


def test_a_plan_reads_a_declined_file_the_general_way(tmp_path: Path) -> None:
    """A null metadata map is absent to the general reader: the file still plans."""
    path = tmp_path / "nodes.json"
    path.write_bytes(
        b'{"kind": "List", "items": [{"kind": "Node", "metadata": '
        b'{"name": "n1", "labels": null, "resourceVersion": 7}}]}'
    )
    assert nodewire.node_states(path.read_bytes()) is None
    (node,) = SnapshotBackend(path).list_nodes()
    assert (node.name, node.resource_version, dict(node.labels)) == ("n1", "7", {})


def test_a_generated_cluster_reads_the_same_both_ways(tmp_path: Path) -> None:
    from bench.nodegen import write_cluster

    _, snapshot = write_cluster(tmp_path, 300, 7)
    data = snapshot.read_bytes()
    fast = nodewire.node_states(data)
    assert fast is not None and len(fast) == 300
    assert fast == general(orjson.loads(data))
