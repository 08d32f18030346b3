"""Run a plan against a cluster backend: one guarded patch per node, never half a node.

A 409 means someone else wrote the node between read and write: the node is re-read,
its changes recomputed from the fresh object (so the other writer's change survives),
and the write retried; when only what the planner does not read moved (Kilo's
``last-seen`` heartbeat, the kubelet's status), the same write is retried under the new
resourceVersion, without a re-plan. Transient faults (5xx, 429, timeouts) are the backend's to
retry; what still fails is reported per node, and the other nodes go on. A write the API
answered with Retry-After leaves the longest such wait in the report, for the caller to
retry no sooner.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import msgspec

from reconciler.core.planning.fingerprint import only_heartbeat
from reconciler.core.planning.plan import NodePlan, Plan
from reconciler.core.planning.planner import Planner
from reconciler.core.planning.project import holds, node_write
from reconciler.model.state import NodeState, NodeWrite
from reconciler.ports import (
    BackendError,
    ClusterReader,
    ClusterWriter,
    ConflictError,
    NotFoundError,
    ThrottledError,
)

MAX_CONFLICT_RETRIES = 5

Replan = Callable[[NodeState], NodePlan | None]
Hold = Callable[[NodePlan, NodeState], NodePlan]  # the plan less what must wait, vs live


def replanner(planner: Planner) -> Replan:
    """Re-plan one node as re-read after a 409, through the one planner (its site only)."""

    def replan(fresh: NodeState) -> NodePlan | None:
        return planner.updated([fresh]).plan_node(fresh.name)

    return replan


@dataclass
class ApplyReport:
    """What apply did."""

    written: list[str] = field(default_factory=list)
    writes: dict[str, NodeWrite] = field(default_factory=dict)  # the write each took
    states: dict[str, NodeState] = field(default_factory=dict)  # each as the writer returned it
    # each node re-read after a 409 whose re-plan then wrote nothing: newer than the read
    # the plan was made from, so the next plan starts from it (not from a stale cache)
    reread: dict[str, NodeState] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    conflicts_retried: int = 0
    deleted: list[str] = field(default_factory=list)  # by the deletion protocol
    kept: dict[str, str] = field(default_factory=dict)  # deletions not done, and why
    retry_after: float = 0.0  # seconds: the longest Retry-After a failed write was told

    @property
    def ok(self) -> bool:
        """True when every node converged."""
        return not self.failed


class StalePlanError(Exception):
    """A saved plan no longer matches the cluster it was made from."""


def check_fresh(plan: Plan, live: Sequence[NodeState]) -> None:
    """Refuse a saved plan once the state it was computed from has moved.

    Every node the plan writes must be at the same uid and resourceVersion, and no node
    may have been replaced, added or removed (membership and leader predictions depend on
    the whole set). Other nodes' resourceVersions are not compared: Kilo rewrites every
    node's ``last-seen`` each 30 s, which would make any saved plan stale at once.
    """
    now = {n.name: (n.uid, n.resource_version) for n in live}
    moved = []
    for name, (uid, _version) in sorted(plan.observed.items()):
        if name not in now:
            moved.append(f"{name} is gone")
        elif now[name][0] != uid:
            moved.append(f"{name} was replaced (uid {uid} -> {now[name][0]})")
    moved += [f"{name} is new" for name in sorted(set(now) - set(plan.observed))]
    for node in plan.writes:
        current = now.get(node.node)
        if current is not None and current[1] != node.resource_version:
            moved.append(
                f"{node.node} moved (resourceVersion {node.resource_version} -> {current[1]})"
            )
    if moved:
        raise StalePlanError(
            "the cluster changed since the plan was made: "
            + "; ".join(moved[:10])
            + ("; ..." if len(moved) > 10 else "")
            + " - run plan again"
        )


def apply_plan(
    plan: Plan,
    live: Mapping[str, NodeState],
    reader: ClusterReader,
    writer: ClusterWriter,
    replan: Replan | None = None,
    parallel: int = 4,
    hold: Hold | None = None,
) -> ApplyReport:
    """Write every node plan against the ``live`` nodes it was computed from; with
    ``replan``, resolve 409s by recomputing that node; with ``hold``, each node plan
    (and each re-plan) passes it just before it is written."""
    report = ApplyReport()
    lock = threading.Lock()

    def one(node_plan: NodePlan) -> None:
        try:
            outcome, retried, took, seen = _apply_node(
                node_plan, live[node_plan.node], reader, writer, replan, hold
            )
        except ThrottledError as err:
            outcome, retried, took, seen = str(err), 0, None, None
            with lock:
                report.retry_after = max(report.retry_after, err.retry_after)
        with lock:
            report.conflicts_retried += retried
            if took is None and seen is not None:
                report.reread[node_plan.node] = seen
            if took is not None:
                report.written.append(node_plan.node)
                report.writes[node_plan.node], report.states[node_plan.node] = took
            elif outcome == "":
                report.unchanged.append(node_plan.node)
            else:
                report.failed[node_plan.node] = outcome

    todo = list(plan.writes)
    if parallel <= 1 or len(todo) <= 1:
        for node_plan in todo:
            one(node_plan)
    else:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="apply") as pool:
            list(pool.map(one, todo))
    writer.commit()
    report.written.sort()
    return report


def _apply_node(
    node_plan: NodePlan,
    live: NodeState,
    reader: ClusterReader,
    writer: ClusterWriter,
    replan: Replan | None,
    hold: Hold | None = None,
) -> tuple[str, int, tuple[NodeWrite, NodeState] | None, NodeState | None]:
    """The failure ("" when none), the conflicts retried, the write that was taken with
    the node as written (None when nothing was left to write, or it failed), and the node
    as last re-read after a 409 (None: never re-read)."""
    current: NodePlan | None = node_plan
    retried = 0
    seen: NodeState | None = None
    while current is not None:
        if hold is not None:
            current = hold(current, live)
        if not current.writes:
            break
        write = node_write(live, current)
        try:
            return "", retried, (write, writer.write_node(write)), None
        except ConflictError as err:
            if replan is None:
                # Applied exactly, never re-planned. The conflict may be this very write,
                # landed with its answer lost (the retry meets the version it bumped): if
                # the node already holds every change, nothing is left to do.
                if _holds_now(current, reader):
                    return "", retried, None, seen
                why = f"conflict: {err} (a saved plan is applied exactly; plan again)"
                return why, retried, None, seen
            if retried >= MAX_CONFLICT_RETRIES:
                return f"still conflicting after {retried} retries: {err}", retried, None, seen
            retried += 1
            try:
                fresh = reader.get_node(current.node)
            except NotFoundError:
                return "the node was deleted meanwhile", retried, None, None
            except BackendError as read_err:
                return f"re-reading after a conflict failed: {read_err}", retried, None, seen
            if only_heartbeat(live, fresh):
                # Only what the planner does not read moved (Kilo's last-seen heartbeat):
                # the same write, under the new resourceVersion; no re-plan.
                current = msgspec.structs.replace(current, resource_version=fresh.resource_version)
            else:
                current = replan(fresh)
            live = seen = fresh
        except NotFoundError:
            return "the node was deleted meanwhile", retried, None, None
        except ThrottledError:
            raise  # its Retry-After goes to the report
        except BackendError as err:
            return str(err), retried, None, seen
    return "", retried, None, seen


def _holds_now(node_plan: NodePlan, reader: ClusterReader) -> bool:
    """Whether the node, read again, is the same object and carries every write."""
    try:
        return holds(reader.get_node(node_plan.node), node_plan)
    except BackendError:
        return False
