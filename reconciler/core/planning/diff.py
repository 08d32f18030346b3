"""Diff one member node's desired state against the live node, honouring ownership.

docs/topology.md "Ownership": keys others set are never touched, a key leaving git is
removed only when topoctl owns it, a key with another value is adopted, and on member
nodes the six user-set Kilo keys are fully declared by git. Keys Talos manages are
reported as conflicts and left alone. Removing a ``force-*`` key also removes Kilo's
mirror of it.
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.core.planning.desired import DesiredNode
from reconciler.core.planning.owned import empty_record, owned_record, render_owned
from reconciler.core.planning.plan import (
    ADOPTED,
    DECLARED,
    DELETE,
    NONE,
    PUT,
    TALOS_CONFLICT,
    Action,
    Change,
    Kind,
    NodePlan,
    Reason,
)
from reconciler.model import keys
from reconciler.model.state import NodeState, TaintValue


def diff_node(desired: DesiredNode, live: NodeState) -> NodePlan:
    """The changes that make ``live`` what git declares (the agent settings apart: they
    depend on the leader, which depends on this diff; see :func:`with_agent`)."""
    differ = _Differ(desired, live)
    owned = owned_record(live.annotations)
    new_owned = empty_record()
    wanted = {k: v for k, v in desired.annotations.items() if k != keys.TOPOCTL_AGENT}
    new_owned["annotations"] = differ.keyed(
        "annotation", wanted, live.annotations, owned["annotations"]
    )
    new_owned["labels"] = differ.keyed("label", desired.labels, live.labels, owned["labels"])
    differ.undeclared_kilo(owned["annotations"])
    new_owned["taints"] = differ.taints(owned["taints"])
    record = render_owned(new_owned)
    before = live.annotations.get(keys.TOPOCTL_OWNED)
    if record != before:
        differ.add("annotation", keys.TOPOCTL_OWNED, PUT, Reason.OWNERSHIP, before, record)
    return NodePlan(desired.name, desired.site, live.uid, live.resource_version, differ.out)


def with_agent(plan: NodePlan, live: NodeState, agent: str | None) -> NodePlan:
    """The plan with the ``topoctl.io/agent`` change, placed before the ownership record."""
    current = live.annotations.get(keys.TOPOCTL_AGENT)
    if agent is None or current == agent:
        return plan
    if keys.TOPOCTL_AGENT in live.talos_owned("annotation"):
        action, reason = NONE, TALOS_CONFLICT
    else:
        action, reason = PUT, DECLARED
    change = Change(
        plan.node, plan.site, "annotation", keys.TOPOCTL_AGENT, action, reason, current, agent
    )
    changes = plan.changes
    split = len(changes) - (1 if changes and changes[-1].key == keys.TOPOCTL_OWNED else 0)
    return NodePlan(
        plan.node,
        plan.site,
        plan.uid,
        plan.resource_version,
        (*changes[:split], change, *changes[split:]),
    )


class _Differ:
    """Collects one node's changes."""

    def __init__(self, desired: DesiredNode, live: NodeState) -> None:
        self.desired = desired
        self.live = live
        self.changes: list[Change] = []

    @property
    def out(self) -> tuple[Change, ...]:
        return tuple(self.changes)

    def add(
        self,
        kind: Kind,
        key: str,
        action: Action,
        reason: Reason,
        before: str | None,
        after: str | None,
        taint: TaintValue | None = None,
    ) -> None:
        self.changes.append(
            Change(
                self.desired.name,
                self.desired.site,
                kind,
                key,
                action,
                reason,
                before,
                after,
                taint,
            )
        )

    def keyed(
        self, kind: Kind, wanted: Mapping[str, str], live: Mapping[str, str], owned: set[str]
    ) -> set[str]:
        """Diff a key/value kind (annotations or labels); return the new owned set."""
        talos = self.live.talos_owned(kind)
        new_owned: set[str] = set()
        for key in sorted(wanted):
            value, current = wanted[key], live.get(key)
            if current == value:
                new_owned.add(key)
            elif current is not None and key in talos:
                self.add(kind, key, NONE, TALOS_CONFLICT, current, value)
            elif current is None or key in owned or key.startswith(keys.TOPOCTL):
                # topoctl.io/* keys are topoctl's own, recorded as owned or not.
                new_owned.add(key)
                self.add(kind, key, PUT, DECLARED, current, value)
            else:
                new_owned.add(key)
                self.add(kind, key, PUT, ADOPTED, current, value)
        for key in sorted(owned - set(wanted)):
            if key in live and key not in talos and not key.startswith(keys.TOPOCTL):
                self.add(kind, key, DELETE, Reason.NO_LONGER_DECLARED, live[key], None)
                self._mirror(key)
        return new_owned

    def undeclared_kilo(self, owned: set[str]) -> None:
        """Remove Kilo user keys git does not declare: Kilo would act on them."""
        talos = self.live.talos_owned("annotation")
        for key in sorted(keys.KILO_USER_KEYS - set(self.desired.kilo) - owned):
            current = self.live.annotations.get(key)
            if current is None:
                continue
            if key in talos:
                self.add("annotation", key, NONE, TALOS_CONFLICT, current, None)
                continue
            self.add("annotation", key, DELETE, Reason.UNDECLARED_KILO, current, None)
            self._mirror(key)

    def _mirror(self, key: str) -> None:
        mirror = keys.KILO_MIRRORS.get(key)
        if mirror and mirror in self.live.annotations:
            before = self.live.annotations[mirror]
            self.add("annotation", mirror, DELETE, Reason.KILO_MIRROR, before, None)

    def taints(self, owned: set[str]) -> set[str]:
        """Diff taints by (key, effect); return the new owned set."""
        talos = self.live.talos_owned("taint")
        wanted = self.desired.taints
        live = {t.ident: t for t in self.live.taints}
        new_owned: set[str] = set()
        for ident in sorted(wanted):
            want, current = wanted[ident], live.get(ident)
            if current == want:
                new_owned.add(ident)
                continue
            before = taint_text(current)
            if current is not None and want.key in talos:
                self.add("taint", ident, NONE, TALOS_CONFLICT, before, taint_text(want))
                continue
            reason = DECLARED if current is None or ident in owned else ADOPTED
            self.add("taint", ident, PUT, reason, before, taint_text(want), want)
            new_owned.add(ident)
        for ident in sorted(owned - set(wanted)):
            current = live.get(ident)
            if current is not None and current.key not in talos:
                reason = Reason.NO_LONGER_DECLARED
                self.add("taint", ident, DELETE, reason, taint_text(current), None)
        return new_owned


def taint_text(taint: TaintValue | None) -> str | None:
    """How a plan shows a taint: ``key=value:effect``, or ``key:effect`` without value."""
    if taint is None:
        return None
    return f"{taint.key}={taint.value}:{taint.effect}" if taint.value else taint.ident
