"""Every port: the narrow, typed interfaces between topoctl and the outside world.

This module is the one place that declares them (a test checks that no other module
defines a ``Protocol``). Adapters implement them; the use cases, the controller and the
agent receive them; tests hand in in-memory fakes.

Readers and writers are kept apart: ``topoctl plan`` is wired to a reader only, so it
cannot change anything. Values crossing a port are the model's and the core's frozen
values (:class:`NodeState`, :class:`NodeWrite`, :class:`ProbeRound`, ...), never a
library's objects or raw JSON; adapters raise the errors below, never their library's
own.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from reconciler.core.agent.routes import RouteApplyResult, RouteDiff, RouteSnapshot
from reconciler.core.election.lease import LeaseObject, LeaseSpec
from reconciler.core.loading.load import SourceFile
from reconciler.core.planning.plan import Plan, SitePlan
from reconciler.core.planning.planner import Planner
from reconciler.model.diagnostics import Diagnostic
from reconciler.model.probe import ProbeRound
from reconciler.model.records import EventRecord, StatusRecord
from reconciler.model.state import NodeEvent, NodeState, NodeWrite, StatusWrite

NodeObject = Mapping[str, Any]  # a Node as the API returns it (only for export)


class BackendError(Exception):
    """The backend failed (after its own retries); nothing more was written."""


class ConflictError(BackendError):
    """The node moved since it was read (HTTP 409): re-read, recompute, retry."""


class NotFoundError(BackendError):
    """The node does not exist (any more)."""


class ExpiredError(BackendError):
    """The resourceVersion a list or watch started from was compacted away (HTTP 410)."""


class ThrottledError(BackendError):
    """The API asked to wait (429, or 503, with Retry-After) before the next request."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds


class NotSentError(BackendError):
    """A write was not sent: the lease is not held, the controller is stopping, or it is
    a dry run (see :class:`WriteGate`)."""


class RouteTableError(Exception):
    """The kernel refused to read routes or to look one up; nothing was written."""


class ClusterReader(Protocol):
    """Reads Nodes."""

    def list_nodes(self) -> list[NodeState]:
        """Every node, in one consistent list."""
        ...

    def get_node(self, name: str) -> NodeState:
        """One node; raises NotFoundError."""
        ...


class NodeExporter(Protocol):
    """Reads Nodes whole, as the API returns them (``topoctl snapshot``)."""

    def export_nodes(self) -> list[NodeObject]:
        """Every node object, unchanged."""
        ...


class ClusterWriter(Protocol):
    """Writes Nodes: one atomic, resourceVersion-guarded write per call."""

    def write_node(self, write: NodeWrite) -> NodeState:
        """Apply the write; raises ConflictError when ``write.resource_version`` is stale,
        NotFoundError when the node is gone. Returns the node as written."""
        ...

    def write_status(self, write: StatusWrite) -> NodeState:
        """Apply a status write, with the same guarantees as :meth:`write_node`."""
        ...

    def commit(self) -> None:
        """Make the writes durable (a file backend writes its file; an API does nothing)."""
        ...


class ClusterBackend(ClusterReader, ClusterWriter, Protocol):
    """A cluster that is read and written through one backend."""


class NodeDeleter(Protocol):
    """Deletes Nodes, only if they are still the very object that was judged."""

    def delete_node(self, name: str, uid: str, resource_version: str) -> None:
        """Delete with uid and resourceVersion preconditions; ConflictError when either
        moved, NotFoundError when already gone."""
        ...


class WriteGate(Protocol):
    """The controller's lease, asked by the adapter that sends a write immediately
    before each request (each attempt) goes out."""

    def admit(self, what: str) -> float:
        """The seconds the request ``what`` may take, its whole timeout included; raises
        NotSentError when it must not be sent at all."""
        ...


class ClusterWatcher(Protocol):
    """Lists and watches Nodes like an informer."""

    def list_nodes_versioned(self) -> tuple[list[NodeState], str]:
        """Every node and the list's resourceVersion, to watch from."""
        ...

    def watch_nodes(self, resource_version: str, timeout: float) -> Iterator[NodeEvent]:
        """Events after ``resource_version`` until ``timeout`` seconds pass or the stream
        ends; raises ExpiredError on 410 (list again)."""
        ...

    def close(self) -> None:
        """End an open watch at once (called from another thread, on shutdown)."""
        ...


class NodeWatch(Protocol):
    """Wakes a node's agent when its own Node changes."""

    def wait_for_change(self, name: str, resource_version: str, timeout: float) -> bool:
        """Block until node ``name`` changes after ``resource_version`` (True) or
        ``timeout`` seconds pass or the stream ends without a change (False). A version
        too old to watch from counts as a change (re-read); a failed watch raises
        BackendError."""
        ...


class StatusStore(Protocol):
    """The controller's status ConfigMap (``topoctl-status`` in the lease namespace)."""

    def read(self) -> StatusRecord | None:
        """Its data and resourceVersion, or None when it does not exist."""
        ...

    def write(
        self,
        data: Mapping[str, str],
        resource_version: str | None,
        annotations: Mapping[str, str] | None = None,
    ) -> StatusRecord:
        """Replace its data and annotations (create it when ``resource_version`` is None);
        ConflictError when it moved since ``resource_version`` (or exists already)."""
        ...


class EventSink(Protocol):
    """Events about Nodes (``events.k8s.io/v1``)."""

    def create(self, event: EventRecord) -> str:
        """Record a new event; returns its name, for :meth:`update_series`."""
        ...

    def update_series(self, name: str, event: EventRecord) -> None:
        """The same event seen again: its series count and last time move on."""
        ...


class RouteTable(Protocol):
    """A node's kernel routing state, as the agent needs it."""

    def snapshot(self, protocol: int) -> RouteSnapshot:
        """The routes carrying ``protocol`` (ours) and the slots others hold; raises
        ValueError for a protocol topoctl may not own, RouteTableError when the kernel
        refuses the read."""
        ...

    def apply(self, diff: RouteDiff) -> RouteApplyResult:
        """Write the diff (adds before deletes); per-route failures in the result."""
        ...

    def source_address(self, target: str) -> str | None:
        """The preferred source address of the route to ``target``, if there is one;
        raises ValueError for a target that is not an address, RouteTableError when
        the lookup is refused."""
        ...


class SourceUnavailableError(Exception):
    """The topology source could not be reached or read; nothing was taken from it.

    The message is safe to log and to publish: it never carries a credential."""


class GitSource(Protocol):
    """Where the topology comes from: a git remote (or a mounted directory) at a revision."""

    def fetch(self) -> str:
        """Bring the source up to date; return the revision it now points at (a commit's
        full sha, or a content hash). Raises SourceUnavailableError."""
        ...

    def read(self, revision: str) -> tuple[list[SourceFile], list[Diagnostic]]:
        """The topology files at ``revision`` (one ``fetch`` returned), and notes on what was
        skipped; a problem of the revision itself is an error note. Raises
        SourceUnavailableError when the revision cannot be read at all."""
        ...

    def describe(self) -> str:
        """Where it reads from, for logs and status (credentials removed)."""
        ...


class LeaseError(Exception):
    """The request failed or its answer was lost: the Lease may or may not have changed."""


class LeaseConflictError(LeaseError):
    """HTTP 409: someone else wrote the Lease first (stale resourceVersion, or it exists)."""


class LeasePort(Protocol):
    """One named Lease in one namespace. Every call takes a timeout in seconds, so the
    caller can keep each request inside the lease time it has left."""

    def get(self, timeout: float) -> LeaseObject | None:
        """The Lease, or None when it does not exist."""
        ...

    def create(self, spec: LeaseSpec, timeout: float) -> LeaseObject:
        """Create the Lease; LeaseConflictError when it already exists."""
        ...

    def replace(self, spec: LeaseSpec, resource_version: str, timeout: float) -> LeaseObject:
        """Replace the spec; LeaseConflictError when it changed since ``resource_version``."""
        ...


class Clock(Protocol):
    """Time: monotonic seconds for decisions, wall time for what is written and judged."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps."""
        ...

    def wall(self) -> datetime:
        """Now, timezone-aware."""
        ...

    def wait(self, stop: threading.Event, seconds: float) -> None:
        """Sleep up to ``seconds``, returning early once ``stop`` is set."""
        ...


class Prober(Protocol):
    """Sends one echo request to each address and reports what came back."""

    def probe(self, addresses: Collection[str]) -> ProbeRound:
        """Probe every address once, concurrently; about one timeout in all."""
        ...


class NodeLeases(Protocol):
    """The kubelets' node Leases (``kube-node-lease``): a sign of life beside ICMP."""

    def renewals(self) -> Mapping[str, datetime]:
        """When each node's Lease was last renewed, by node name; raises LeaseError when
        they cannot be listed."""
        ...


class Observer(Protocol):
    """What hears the controller's reconcile loop (the status, the metrics): every call
    from the loop's worker, after the reconcile it reports on."""

    def site_planned(
        self,
        plan: SitePlan,
        planner: Planner,
        revision: str,
        error: str,
        writes: Sequence[NodeWrite],
        flapping: Sequence[str],
    ) -> None:
        """One site was planned and, unless ``error``, written: ``writes`` were taken;
        ``flapping`` names the keys another writer keeps changing back (rate-limited)."""
        ...

    def full_planned(self, plan: Plan, planner: Planner, revision: str) -> None:
        """Every site of ``revision`` was planned: ``plan`` is their plans put together."""
        ...

    def reconciled(self, result: str, seconds: float) -> None:
        """One reconcile ended: ``ok``, ``held`` or ``error``, after ``seconds``."""
        ...

    def idle(self) -> None:
        """Between reconciles (and while there are none): publish what is due."""
        ...


class ForgeError(Exception):
    """A forge (GitHub, GitLab) refused or failed a request: the message says what to fix."""


class CommentThread(Protocol):
    """The comments of one pull request (GitHub) or merge request (GitLab)."""

    def comments(self) -> list[tuple[int, str]]:
        """Every comment people can see, oldest first: (id, body); all pages."""
        ...

    def create(self, body: str) -> int:
        """Post a new comment; its id."""
        ...

    def update(self, comment_id: int, body: str) -> None:
        """Replace the body of a comment."""
        ...

    def describe(self) -> str:
        """``acme/topology#7`` or ``acme/topology!7``: for messages."""
        ...


class CommitStatuses(Protocol):
    """Commit statuses of one repository (GitHub) or project (GitLab)."""

    def post(self, sha: str, state: str, description: str) -> None:
        """Set the status of commit ``sha``: ``pending``, ``success`` or ``failure``
        (ForgeError when the forge refuses or does not answer)."""
        ...

    def describe(self) -> str:
        """``github acme/topology`` or ``gitlab group/topology``: for messages."""
        ...
