"""A Node of a shape topoctl cannot read, from an API, is a BackendError naming it."""

from __future__ import annotations

import pytest

from reconciler.adapters.kube import node_state
from reconciler.ports import BackendError


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"metadata": {"name": "n1", "annotations": ["a"]}}, "metadata.annotations"),
        ({"metadata": {"labels": {}}}, "metadata.name"),
        ({"metadata": {"name": "n1"}, "spec": {"taints": "x"}}, "spec.taints"),
    ],
)
def test_a_node_topoctl_cannot_read_is_a_backend_error(
    obj: dict[str, object], fragment: str
) -> None:
    with pytest.raises(
        BackendError, match=rf"read node n1: a Node topoctl cannot read: .*{fragment}"
    ):
        node_state(obj, "read node n1")


def test_a_readable_node_is_its_state() -> None:
    state = node_state({"metadata": {"name": "n1", "labels": {"a": "b"}}}, "read node n1")
    assert state.name == "n1" and dict(state.labels) == {"a": "b"}
