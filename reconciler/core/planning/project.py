"""What a node looks like once a node plan is applied: the ONE statement of what apply
does. The leader prediction, the membership-drift check, apply's post-write check, the
write sent to the cluster and the tests all ask this function, so they cannot drift.
"""

from __future__ import annotations

from types import MappingProxyType

from reconciler.core.planning.plan import DELETE, PUT, Change, NodePlan
from reconciler.model.state import NodeState, NodeWrite, TaintValue


def project(live: NodeState, plan: NodePlan) -> NodeState:
    """``live`` with every write of ``plan`` done; conflicts leave their key alone."""
    writes = plan.writes
    if not writes:
        return live
    annotations, labels = dict(live.annotations), dict(live.labels)
    taint_writes: list[Change] = []
    for change in writes:
        if change.kind == "taint":
            taint_writes.append(change)
            continue
        target = annotations if change.kind == "annotation" else labels
        if change.action is PUT and change.after is not None:
            target[change.key] = change.after
        else:
            target.pop(change.key, None)
    taints = _taints(live.taints, taint_writes) if taint_writes else live.taints
    return NodeState(
        name=live.name,
        uid=live.uid,
        resource_version=live.resource_version,
        labels=MappingProxyType(labels),
        annotations=MappingProxyType(annotations),
        taints=taints,
        conditions=live.conditions,
        addresses=live.addresses,
        pod_cidr=live.pod_cidr,
        pod_cidrs=live.pod_cidrs,
    )


def _taints(live: tuple[TaintValue, ...], writes: list[Change]) -> tuple[TaintValue, ...]:
    """Live order kept, a replaced taint in its place, new ones after in plan order."""
    put = {c.key: c.taint for c in writes if c.action is PUT and c.taint is not None}
    gone = {c.key for c in writes if c.action is DELETE}
    out = [put.pop(t.ident, t) for t in live if t.ident not in gone]
    return (*out, *put.values())


def node_write(live: NodeState, plan: NodePlan) -> NodeWrite:
    """The write that turns ``live`` into ``project(live, plan)``: only the keys that
    change, the whole taint list when a taint changes, guarded by the resourceVersion the
    plan was computed against."""
    annotations: dict[str, str | None] = {}
    labels: dict[str, str | None] = {}
    taints = False
    for change in plan.writes:
        if change.kind == "taint":
            taints = True
        else:
            value = change.after if change.action is PUT else None
            (annotations if change.kind == "annotation" else labels)[change.key] = value
    after = project(live, plan).taints if taints else None
    return NodeWrite(plan.node, plan.resource_version, annotations, labels, after)


def holds(node: NodeState, plan: NodePlan) -> bool:
    """Whether ``node`` already is what applying ``plan`` would make of it."""
    if node.uid != plan.uid:
        return False
    after = project(node, plan)
    return (
        after.annotations == node.annotations
        and after.labels == node.labels
        and set(after.taints) == set(node.taints)
    )
