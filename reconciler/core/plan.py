"""Diff desired against live nodes into a :class:`Plan`: changes as data, like terraform's.

A change is (node, kind, key, action, before, after); its reason is for display only.
Ownership (TOPOLOGY.md "Ownership"): keys others set are never touched, a key leaving
git is removed only when topoctl owns it, a key with another value is adopted, and on
member nodes the six user-set Kilo keys are fully declared by git. Keys Talos manages
are reported as conflicts and left alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from json.encoder import encode_basestring_ascii as _quote
from typing import Any, Literal

from reconciler.core.desired import DesiredNode, LeaderPrediction, SiteDesire, desire_site
from reconciler.core.kilo import kilo_location, newest_check_in
from reconciler.core.load import Topology
from reconciler.core.membership import Member, Membership, assign
from reconciler.model import keys
from reconciler.model.state import NodeState, NodeWrite, TaintValue

PLAN_FORMAT_VERSION = 1
Kind = Literal["annotation", "label", "taint"]
Action = Literal["set", "update", "adopt", "remove", "remove-mirror", "conflict"]
WRITES: frozenset[str] = frozenset({"set", "update", "adopt", "remove", "remove-mirror"})


@dataclass(frozen=True, slots=True)
class Change:
    """One key on one node. ``before``/``after`` are None where the key is absent."""

    node: str
    site: str
    kind: Kind
    key: str
    action: Action
    before: str | None
    after: str | None
    reason: str = ""


@dataclass(frozen=True)
class NodePlan:
    """The changes to one node, and the version of the node they were computed against."""

    node: str
    site: str
    uid: str
    resource_version: str
    changes: tuple[Change, ...]
    taints_after: tuple[TaintValue, ...] | None = None  # the full list, when taints change

    @cached_property
    def writes(self) -> tuple[Change, ...]:
        """The changes that are written (conflicts are only reported)."""
        return tuple(c for c in self.changes if c.action in WRITES)


@dataclass(frozen=True)
class Plan:
    """Everything ``topoctl plan`` shows and ``topoctl apply`` does."""

    cluster: str
    nodes: tuple[NodePlan, ...]
    leaders: tuple[LeaderPrediction, ...]
    conflicts: tuple[Change, ...] = ()
    claimed_twice: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pending: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unassigned: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    observed: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (uid, rv)
    sites: tuple[str, ...] = ()
    members: Mapping[str, str] = field(default_factory=dict)  # node -> site

    @property
    def writes(self) -> tuple[NodePlan, ...]:
        """Node plans that write something."""
        return tuple(n for n in self.nodes if n.writes)

    @property
    def has_changes(self) -> bool:
        """True when applying would write anything."""
        return bool(self.writes)


def owned_record(annotations: Mapping[str, str]) -> dict[str, set[str]]:
    """Parse ``topoctl.io/owned``; an unreadable record counts as owning nothing."""
    empty: dict[str, set[str]] = {"annotations": set(), "labels": set(), "taints": set()}
    raw = annotations.get(keys.TOPOCTL_OWNED)
    if not raw:
        return empty
    try:
        data = json.loads(raw)
        return {k: {str(x) for x in data.get(k, [])} for k in empty}
    except (ValueError, AttributeError, TypeError):
        return empty


def render_owned(record: Mapping[str, Iterable[str]]) -> str:
    """Canonical compact JSON of an ownership record."""
    data = {k: sorted(v) for k, v in sorted(record.items())}
    try:  # once per node: join the C string encoder's output instead of a json.dumps
        return (
            "{"
            + ",".join(f"{_quote(k)}:[{','.join([_quote(x) for x in v])}]" for k, v in data.items())
            + "}"
        )
    except TypeError:  # not text: let json say how it is written
        return json.dumps(data, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class DesiredDelta:
    """What a pull request changes in the desired state of one node (``--base``)."""

    node: str
    kind: str
    key: str
    base: str | None
    head: str | None


def desired_nodes(topology: Topology, nodes: Iterable[NodeState]) -> dict[str, DesiredNode]:
    """Every member node's desired state under ``topology``."""
    states = list(nodes)
    membership = assign(topology.sites, states)
    out: dict[str, DesiredNode] = {}
    for _members, desire in _site_desires(topology, states, membership):
        for desired in desire.nodes:
            out[desired.name] = desired
    return out


def _site_desires(
    topology: Topology, states: list[NodeState], membership: Membership
) -> Iterator[tuple[list[Member], SiteDesire]]:
    """Each site's desire, with the other live nodes Kilo places in the same location."""
    reference = newest_check_in(states)
    by_location: dict[str, list[NodeState]] = {}
    for node in states:
        by_location.setdefault(kilo_location(node), []).append(node)
    for site in topology.sites:
        members = membership.by_site.get(site.name, [])
        outsiders: list[NodeState] = []
        leaving: list[NodeState] = []
        for node in by_location.get(site.name, ()):
            owner = membership.members.get(node.name)
            if owner is None:
                outsiders.append(node)
            elif owner.site.name != site.name:
                leaving.append(node)
        desire = desire_site(site, members, topology.cluster, reference, outsiders, leaving)
        yield members, desire


def desired_changes(
    base: Topology, head: Topology, nodes: Iterable[NodeState]
) -> list[DesiredDelta]:
    """Per node and key: desired at the base revision vs desired at the head."""
    states = list(nodes)
    before, after = desired_nodes(base, states), desired_nodes(head, states)
    out: list[DesiredDelta] = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        for kind, get in (("annotation", _annotations), ("label", _labels), ("taint", _taints)):
            old, new = get(b), get(a)
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    out.append(DesiredDelta(name, kind, key, old.get(key), new.get(key)))
    return out


def _annotations(d: DesiredNode | None) -> Mapping[str, str]:
    return d.annotations if d else {}


def _labels(d: DesiredNode | None) -> Mapping[str, str]:
    return d.labels if d else {}


def _taints(d: DesiredNode | None) -> Mapping[str, str]:
    return {k: _taint_text(t) or "" for k, t in d.taints.items()} if d else {}


def replan_node(
    topology: Topology, nodes: Iterable[NodeState], fresh: NodeState
) -> NodePlan | None:
    """The plan for one node after re-reading it (the 409 path of apply)."""
    return Replanner(topology, nodes)(fresh)


class Replanner:
    """Re-plans single nodes against the cluster a plan was built from (apply's 409 path).

    With Kilo rewriting every node's last-seen each 30 s, conflicts are routine during a
    large apply, and re-planning the whole cluster for each one made a 1,000-node apply
    take minutes. Membership is assigned once here; a re-plan assigns only the fresh node
    (claims depend on the node alone) and desires only its site. Safe to share between
    threads: calls read the shared state and never change it.
    """

    def __init__(self, topology: Topology, nodes: Iterable[NodeState]) -> None:
        self.topology = topology
        self.states = list(nodes)

    @cached_property
    def membership(self) -> Membership:
        """Assigned at the first conflict: an apply without one never pays for it (two
        threads meeting their first conflict at once may both compute it, harmlessly)."""
        return assign(self.topology.sites, self.states)

    def __call__(self, fresh: NodeState) -> NodePlan | None:
        """The plan for ``fresh`` as re-read; None when no site alone claims it any more."""
        member = assign(self.topology.sites, [fresh]).members.get(fresh.name)
        if member is None:
            return None
        site = member.site.name
        peers = [m for m in self.membership.by_site.get(site, ()) if m.node.name != fresh.name]
        membership = replace(
            self.membership,
            members={**self.membership.members, fresh.name: member},
            by_site={site: sorted([*peers, member], key=lambda m: m.node.name)},
        )
        states = [fresh if n.name == fresh.name else n for n in self.states]
        own_site = replace(self.topology, sites=(member.site,))
        for _members, desire in _site_desires(own_site, states, membership):
            for desired in desire.nodes:
                if desired.name == fresh.name:
                    return diff_node(desired, fresh)
        return None


def build_plan(topology: Topology, nodes: Iterable[NodeState]) -> Plan:
    """The whole plan: membership, desired state, leader predictions, per-node diffs."""
    states = list(nodes)
    cluster = topology.cluster
    membership = assign(topology.sites, states)
    node_plans: list[NodePlan] = []
    leaders: list[LeaderPrediction] = []
    warnings: list[str] = [d.brief for d in topology.warnings]
    errors: list[str] = []
    conflicts: list[Change] = []
    for members, desire in _site_desires(topology, states, membership):
        if desire.leader is not None and members:
            leaders.append(desire.leader)
        warnings += desire.warnings
        errors += desire.errors
        live = {m.node.name: m.node for m in members}
        for desired in desire.nodes:
            plan = diff_node(desired, live[desired.name])
            conflicts += [c for c in plan.changes if c.action == "conflict"]
            node_plans.append(plan)
    for node, pools in sorted(membership.pool_overlaps.items()):
        warnings.append(f"{node}: selected by several pools ({', '.join(pools)}); the first wins")
    errors += membership_drift(topology, states, membership, node_plans)
    unassigned = tuple(n.name for n in membership.unassigned)
    policy = cluster.spec.unassigned_nodes
    if unassigned and policy != "ignore":
        message = (
            f"{len(unassigned)} live node(s) claimed by no site: "
            f"{', '.join(unassigned[:10])}{' ...' if len(unassigned) > 10 else ''}"
        )
        (errors if policy == "error" else warnings).append(message)
    return Plan(
        cluster=cluster.metadata.name,
        nodes=tuple(node_plans),
        leaders=tuple(leaders),
        conflicts=tuple(conflicts),
        claimed_twice=membership.conflicts,
        pending=membership.pending,
        unassigned=unassigned,
        warnings=tuple(warnings),
        errors=tuple(errors),
        observed={n.name: (n.uid, n.resource_version) for n in states},
        members={name: m.site.name for name, m in membership.members.items()},
        sites=tuple(sorted(s.name for s in topology.sites)),
    )


def membership_drift(
    topology: Topology,
    states: Iterable[NodeState],
    membership: Membership,
    node_plans: Iterable[NodePlan],
) -> list[str]:
    """Nodes whose label writes would change which site or pool selects them.

    A pool selects by labels and sites write labels: when the two disagree (a pool sets a
    label its own selector reads, or one that another site's pool selects), the node
    changes hands after apply and the next plan undoes this one - it never converges.
    """
    selector_keys = {
        k for s in topology.sites for p in s.spec.pools for k in p.selector.match_labels
    }
    if not selector_keys:
        return []
    live = {n.name: n for n in states}
    relabelled: dict[str, NodeState] = {}
    for node_plan in node_plans:
        writes = {
            c.key: c.after for c in node_plan.writes if c.kind == "label" and c.key in selector_keys
        }
        if writes:
            labels = {**live[node_plan.node].labels, **writes}
            kept = {k: v for k, v in labels.items() if v is not None}
            relabelled[node_plan.node] = replace(live[node_plan.node], labels=kept)
    if not relabelled:
        return []
    after = assign(topology.sites, [relabelled.get(name, n) for name, n in live.items()])
    out = []
    for name in sorted(relabelled):
        before, now = _claim(membership, name), _claim(after, name)
        if before != now:
            out.append(
                f"{name}: the labels this plan writes would move it from {before} to {now}, "
                "and the next plan would undo this one - make the pool selectors and the "
                "labels sites and pools set agree"
            )
    return out


def _claim(membership: Membership, name: str) -> str:
    member = membership.members.get(name)
    if member is not None:
        return f"site {member.site.name}" + (f" pool {member.pool.name}" if member.pool else "")
    if name in membership.conflicts:
        return f"sites {', '.join(membership.conflicts[name])} (claimed twice)"
    return "no site"


def diff_node(desired: DesiredNode, live: NodeState) -> NodePlan:
    """Compare one member node with what git declares, honouring ownership."""
    owned = owned_record(live.annotations)
    changes: list[Change] = []
    new_owned: dict[str, set[str]] = {"annotations": set(), "labels": set(), "taints": set()}
    ctx = _Ctx(desired, live, changes)

    wanted = {k: v for k, v in desired.annotations.items() if k != keys.TOPOCTL_OWNED}
    new_owned["annotations"] = ctx.keyed(
        "annotation", wanted, live.annotations, owned["annotations"]
    )
    new_owned["labels"] = ctx.keyed("label", desired.labels, live.labels, owned["labels"])
    ctx.undeclared_kilo(owned["annotations"])
    taints_after, new_owned["taints"] = ctx.taints(owned["taints"])
    new_owned["annotations"].discard(keys.TOPOCTL_AGENT)
    record = render_owned(new_owned)
    before = live.annotations.get(keys.TOPOCTL_OWNED)
    if record != before:
        changes.append(
            Change(
                desired.name,
                desired.site,
                "annotation",
                keys.TOPOCTL_OWNED,
                "set" if before is None else "update",
                before,
                record,
                "what topoctl set on this node",
            )
        )
    return NodePlan(
        node=desired.name,
        site=desired.site,
        uid=live.uid,
        resource_version=live.resource_version,
        changes=tuple(changes),
        taints_after=taints_after,
    )


@dataclass
class _Ctx:
    desired: DesiredNode
    live: NodeState
    out: list[Change]

    def add(
        self,
        kind: Kind,
        key: str,
        action: Action,
        before: str | None,
        after: str | None,
        reason: str,
    ) -> None:
        self.out.append(
            Change(self.desired.name, self.desired.site, kind, key, action, before, after, reason)
        )

    def keyed(
        self, kind: Kind, wanted: Mapping[str, str], live: Mapping[str, str], owned: set[str]
    ) -> set[str]:
        """Diff a key/value kind (annotations or labels); return the new owned set."""
        talos = self.live.talos_owned(kind)
        new_owned: set[str] = set()
        name, site = self.desired.name, self.desired.site
        declared = f"declared by site {site}"
        append = self.out.append
        for key in sorted(wanted):
            value, current = wanted[key], live.get(key)
            if current == value:
                new_owned.add(key)
            elif current is None:  # the common case for a new node: inlined
                new_owned.add(key)
                append(Change(name, site, kind, key, "set", None, value, declared))
            elif key in talos:
                self.add(
                    kind,
                    key,
                    "conflict",
                    current,
                    value,
                    f"Talos manages this {kind} ({_TALOS[kind]}) and would put it back; "
                    "change it in the machine config, or drop it from git",
                )
            elif key in owned or key.startswith(keys.TOPOCTL):
                # topoctl.io/* keys are topoctl's own, recorded as owned or not.
                new_owned.add(key)
                self.add(kind, key, "update", current, value, declared)
            else:
                new_owned.add(key)
                self.add(kind, key, "adopt", current, value, _ADOPTED)
        for key in sorted(owned - set(wanted)):
            if key in live and key not in talos and not key.startswith(keys.TOPOCTL):
                self.add(
                    kind,
                    key,
                    "remove",
                    live[key],
                    None,
                    "no longer declared in git (topoctl set it)",
                )
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
                self.add(
                    "annotation",
                    key,
                    "conflict",
                    current,
                    None,
                    "Talos sets this Kilo key but git does not declare it",
                )
                continue
            why = (
                "Kilo treats the key's presence as a leader candidate, whatever its value"
                if key == keys.KILO_LEADER
                else "Kilo acts on it, but git does not declare it"
            )
            self.add("annotation", key, "remove", current, None, why)
            self._mirror(key)

    def _mirror(self, key: str) -> None:
        mirror = keys.KILO_MIRRORS.get(key)
        if mirror and mirror in self.live.annotations:
            self.add(
                "annotation",
                mirror,
                "remove-mirror",
                self.live.annotations[mirror],
                None,
                f"Kilo's copy of the removed {key.removeprefix(keys.KILO)}; Kilo would "
                "keep using it until restarted",
            )

    def taints(self, owned: set[str]) -> tuple[tuple[TaintValue, ...] | None, set[str]]:
        """Diff taints by (key, effect); return the full list after, if it changes."""
        talos = self.live.talos_owned("taint")
        wanted = self.desired.taints
        live = {t.ident: t for t in self.live.taints}
        after = dict(live)
        new_owned: set[str] = set()
        for ident in sorted(wanted):
            want, current = wanted[ident], live.get(ident)
            if current == want:
                new_owned.add(ident)
                continue
            shown = _taint_text(want)
            if current is not None and want.key in talos:
                self.add(
                    "taint",
                    ident,
                    "conflict",
                    _taint_text(current),
                    shown,
                    f"Talos manages this taint ({_TALOS['taint']})",
                )
                continue
            action: Action = "set" if current is None else "update" if ident in owned else "adopt"
            self.add(
                "taint",
                ident,
                action,
                _taint_text(current) if current else None,
                shown,
                _ADOPTED if action == "adopt" else f"declared by site {self.desired.site}",
            )
            after[ident] = want
            new_owned.add(ident)
        for ident in sorted(owned - set(wanted)):
            current = live.get(ident)
            if current is not None and current.key not in talos:
                self.add(
                    "taint",
                    ident,
                    "remove",
                    _taint_text(current),
                    None,
                    "no longer declared in git (topoctl set it)",
                )
                del after[ident]
        if after == live:
            return None, new_owned
        order = [t.ident for t in self.live.taints] + sorted(set(after) - set(live))
        return tuple(after[i] for i in order if i in after), new_owned


_ADOPTED = "set by someone else with another value; git wins and topoctl owns it from now on"
_TALOS = {
    "annotation": keys.TALOS_OWNED_ANNOTATIONS,
    "label": keys.TALOS_OWNED_LABELS,
    "taint": keys.TALOS_OWNED_TAINTS,
}


def _taint_text(taint: TaintValue | None) -> str | None:
    if taint is None:
        return None
    return f"{taint.key}={taint.value}:{taint.effect}" if taint.value else taint.ident


def node_write(plan: NodePlan) -> NodeWrite:
    """The write for one node: only the changed keys, guarded by the resourceVersion the
    plan was computed against."""
    annotations: dict[str, str | None] = {}
    labels: dict[str, str | None] = {}
    for change in plan.writes:
        if change.kind == "annotation":
            annotations[change.key] = change.after
        elif change.kind == "label":
            labels[change.key] = change.after
    return NodeWrite(plan.node, plan.resource_version, annotations, labels, plan.taints_after)


def node_patch(plan: NodePlan) -> dict[str, Any]:
    """The patch for one node: only changed keys, guarded by the resourceVersion it was
    computed against (the API answers 409 if the node moved since)."""
    metadata: dict[str, Any] = {"resourceVersion": plan.resource_version}
    patch: dict[str, Any] = {"metadata": metadata}
    for change in plan.writes:
        if change.kind == "taint":
            continue
        field_name = "annotations" if change.kind == "annotation" else "labels"
        metadata.setdefault(field_name, {})[change.key] = change.after
    if plan.taints_after is not None:
        patch["spec"] = {"taints": [t.as_dict() for t in plan.taints_after]}
    return patch


def as_data(value: Any) -> Any:
    """Plain JSON-able data of plan values (for saved plans and the json renderer)."""
    if isinstance(value, Plan | NodePlan | Change | LeaderPrediction | TaintValue):
        return {f: as_data(getattr(value, f)) for f in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {k: as_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_data(v) for v in value]
    return value
