"""What the planner reads of a node, in one comparable value: the planning fingerprint.

Two states of a node with the same fingerprint and the same Kilo freshness give the
same plan (only the resourceVersion a write is guarded by differs), so a watch event
that leaves both alone - Kilo's ``last-seen`` heartbeat every 30 s, a kubelet status
update, new images - costs no re-plan and no write. Two things a heartbeat moves are
left out on purpose: how long ago a stale node checked in (words in the plan), and
whether a location's Kilo is silent (``core.kilo.freshness.silence``): the controller
re-plans a site whose Kilo is silent every few seconds until it is heard again.

The planner reads: the name and uid, every label (pool selectors, Kilo's region
fallback), every annotation but ``last-seen`` (declared keys, Kilo's, Talos' ownership
lists, topoctl's record), the taints, the pod CIDR (Kilo's readiness), and of the
conditions Ready (Kilo's readiness where Kilo never ran) and TopologyReady (the agents'
problems). ``last-seen`` itself counts only through its freshness
(:mod:`reconciler.core.kilo.freshness`).
"""

from __future__ import annotations

from collections.abc import Hashable

from reconciler.core.kilo.freshness import KILO_READY_SECONDS, last_seen
from reconciler.model import keys
from reconciler.model.state import NodeState

CONDITIONS_READ = ("Ready", keys.CONDITION_AGENT)

Fingerprint = Hashable


def fingerprint(node: NodeState) -> Fingerprint:
    """Everything the planner reads of ``node`` but ``last-seen`` (see the module)."""
    annotations = node.annotations
    conditions = []
    for kind in CONDITIONS_READ:
        cond = node.condition(kind)
        if cond is not None:
            conditions.append((kind, cond.status, cond.reason, cond.message))
    return (
        node.name,
        node.uid,
        frozenset(node.labels.items()),
        frozenset(i for i in annotations.items() if i[0] != keys.KILO_LAST_SEEN),
        frozenset(node.taints),
        node.pod_cidr,
        tuple(conditions),
    )


def only_heartbeat(before: NodeState, after: NodeState) -> bool:
    """Nothing the planner reads moved but ``last-seen``, and that only by a regular
    check-in (less than Kilo's freshness window): a node coming back after a silence
    may move the predicted leader, so that one is re-planned."""
    if fingerprint(before) != fingerprint(after):
        return False
    old, new = last_seen(before), last_seen(after)
    if old is None or new is None:
        return old == new
    return 0 <= new - old < KILO_READY_SECONDS
