"""The narrow interfaces between the executors and the cluster backends.

Readers and writers are kept apart: ``topoctl plan`` is wired to a reader only, so it
cannot change anything. Backends raise the errors below, never their library's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

NodeObject = Mapping[str, Any]


class BackendError(Exception):
    """The backend failed (after its own retries); nothing more was written."""


class ConflictError(BackendError):
    """The node moved since it was read (HTTP 409): re-read, recompute, retry."""


class NotFoundError(BackendError):
    """The node does not exist (any more)."""


class NodeReader(Protocol):
    """Reads Node objects as the API returns them."""

    def list_nodes(self) -> list[NodeObject]:
        """Every node, in one consistent list."""
        ...

    def get_node(self, name: str) -> NodeObject:
        """One node; raises NotFoundError."""
        ...


class NodeWriter(Protocol):
    """Writes to Node objects: one atomic, resourceVersion-guarded write per call."""

    def patch_node(self, name: str, patch: Mapping[str, Any]) -> NodeObject:
        """Apply a merge patch to the node; raises ConflictError when
        ``patch.metadata.resourceVersion`` is stale, NotFoundError when it is gone."""
        ...

    def patch_node_status(self, name: str, patch: Mapping[str, Any]) -> NodeObject:
        """Patch the status subresource (addresses, conditions), resourceVersion-guarded."""
        ...

    def commit(self) -> None:
        """Make the writes durable (a file backend writes its file; an API does nothing)."""
        ...
