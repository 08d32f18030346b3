"""Plan values: what apply does to which node, and why. Data only, like terraform's.

A change is (node, kind, key, action, before, after) plus a reason. The action is what
apply does (put a key, delete it, or nothing: a reported conflict); the reason says why
and is for display. Everything else a plan shows (conflicts, the taint list a write
sends, the words ``set``/``adopt``/``remove``...) is derived from these, never stored
twice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import msgspec

from reconciler.core.kilo.freshness import NO_TIME, Reference
from reconciler.model import keys
from reconciler.model.state import TaintValue

PLAN_FORMAT_VERSION = 1
Kind = Literal["annotation", "label", "taint"]


class Action(enum.Enum):
    """What apply does with one key (a node deletion joins these with lifecycle)."""

    PUT = "put"
    DELETE = "delete"
    NONE = "none"  # reported only: apply leaves the key alone


class Reason(enum.Enum):
    """Why a change is in the plan."""

    DECLARED = "declared"  # git declares the key (new, or a value topoctl owns)
    ADOPTED = "adopted"  # someone else set another value: git wins, topoctl owns it now
    NO_LONGER_DECLARED = "no-longer-declared"  # topoctl set it and git dropped it
    UNDECLARED_KILO = "undeclared-kilo"  # a Kilo key git does not declare: Kilo acts on it
    KILO_MIRROR = "kilo-mirror"  # Kilo's copy of a removed force-* key
    TALOS_CONFLICT = "talos-conflict"  # Talos manages the key and would put it back
    CLAIMED_TWICE = "claimed-twice"  # two sites claim the node: nothing is changed
    OWNERSHIP = "ownership"  # topoctl's record of what it set


# The words people read in a plan, by (action, reason, was the key there before).
Verb = Literal["set", "update", "adopt", "remove", "remove-mirror", "conflict"]

# The members the per-change code tests, as module globals (import these on hot paths):
# an enum member looked up through its class costs ten times a global, and a plan
# builds and reads ~80k changes.
PUT, DELETE, NONE = Action.PUT, Action.DELETE, Action.NONE
DECLARED, ADOPTED, TALOS_CONFLICT = Reason.DECLARED, Reason.ADOPTED, Reason.TALOS_CONFLICT
UNDECLARED_KILO, KILO_MIRROR = Reason.UNDECLARED_KILO, Reason.KILO_MIRROR


class Change(msgspec.Struct, frozen=True):
    """One key on one node. ``before``/``after`` are None where the key is absent; for
    taints the key is ``key:effect`` and the values are ``key=value:effect``."""

    node: str
    site: str
    kind: Kind
    key: str
    action: Action
    reason: Reason
    before: str | None
    after: str | None
    taint: TaintValue | None = None  # the taint a PUT sets

    @property
    def writes(self) -> bool:
        """True when apply writes this change."""
        return self.action is not NONE

    @property
    def verb(self) -> Verb:
        """How the plan names the change."""
        action = self.action
        if action is PUT:
            if self.before is None:
                return "set"
            return "adopt" if self.reason is ADOPTED else "update"
        if action is DELETE:
            return "remove-mirror" if self.reason is KILO_MIRROR else "remove"
        return "conflict"

    @property
    def why(self) -> str:
        """The reason in words."""
        reason = self.reason
        if reason is DECLARED:  # most changes: first
            return f"declared by site {self.site}"
        if reason is TALOS_CONFLICT:
            if self.after is None:
                return "Talos sets this Kilo key but git does not declare it"
            if self.kind == "taint":
                return f"Talos manages this taint ({keys.TALOS_OWNED_TAINTS})"
            source = (
                keys.TALOS_OWNED_LABELS if self.kind == "label" else keys.TALOS_OWNED_ANNOTATIONS
            )
            return (
                f"Talos manages this {self.kind} ({source}) and would put it back; change "
                f"it in the machine config (`topoctl render talos --node {self.node}` prints "
                "the patch), or drop it from git"
            )
        if reason is UNDECLARED_KILO:
            if self.key == keys.KILO_LEADER:
                return "Kilo treats the key's presence as a leader candidate, whatever its value"
            return "Kilo acts on it, but git does not declare it"
        if reason is KILO_MIRROR:
            forced = next(k for k, v in keys.KILO_MIRRORS.items() if v == self.key)
            return (
                f"Kilo's copy of the removed {forced.removeprefix(keys.KILO)}; Kilo would "
                "keep using it until restarted"
            )
        return _WHY[reason]


_WHY = {
    Reason.ADOPTED: "set by someone else with another value; git wins and topoctl owns it "
    "from now on",
    Reason.NO_LONGER_DECLARED: "no longer declared in git (topoctl set it)",
    Reason.CLAIMED_TWICE: "claimed by several sites: left untouched",
    Reason.OWNERSHIP: "what topoctl set on this node",
}


class NodePlan(msgspec.Struct, frozen=True, dict=True):
    """The changes to one node, and the version of the node they were computed against."""

    node: str
    site: str
    uid: str
    resource_version: str
    changes: tuple[Change, ...]

    @cached_property
    def writes(self) -> tuple[Change, ...]:
        """The changes that are written (conflicts are only reported)."""
        return tuple(c for c in self.changes if c.writes)

    @property
    def conflicts(self) -> tuple[Change, ...]:
        """The changes apply leaves alone."""
        return tuple(c for c in self.changes if not c.writes)


@dataclass(frozen=True, slots=True)
class LeaderPrediction:
    """Kilo's leader for a site now and once the plan is applied.

    Under ``full`` and ``cross`` granularity every Ready node leads a segment of its
    own: there is no one leader of the location, and ``current``/``predicted`` are None.
    Where no leader can be predicted, ``unknown`` says why and ``not_ready`` names what
    keeps each of the location's nodes from leading; the routes via the leader then stand
    as last published (``held``: their gateways), and nothing is withdrawn.
    """

    site: str
    current: str | None
    predicted: str | None
    predicted_internal_ip: str | None
    granularity: str = "location"
    unknown: str = ""  # why no leader can be predicted ("" when one is)
    not_ready: tuple[str, ...] = ()  # "node: what Kilo lacks", when unknown
    silent_for: int | None = None  # seconds since Kilo was last heard here, when silent
    held: str = ""  # the gateways of the routes via the leader that stand meanwhile

    @property
    def changes(self) -> bool:
        """True when applying the plan moves leadership (tunnels drop: squat/kilo#39).
        Kilo falling silent is no move: both sides are unknown then."""
        return self.current != self.predicted


@dataclass(frozen=True)
class SitePlan:
    """One site's part of a plan: what :meth:`Planner.plan_site` answers."""

    site: str
    nodes: tuple[NodePlan, ...]
    leader: LeaderPrediction | None
    members: tuple[str, ...]
    pending: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # the site is held back
    node_errors: tuple[str, ...] = ()  # each holds back its node alone (left out of nodes)


@dataclass(frozen=True, slots=True)
class NodeDeletion:
    """A dead member node the plan deletes, and the object it judged (uid and
    resourceVersion: the DELETE's preconditions, so a node that moved is kept)."""

    node: str
    site: str
    uid: str
    resource_version: str
    text: str  # "would delete N: NotReady 14m, no answer from A, B"
    evidence: str  # the Event's message


@dataclass(frozen=True, slots=True)
class Withheld:
    """A NotReady member the plan keeps, or a guard rail that keeps a whole site
    (``node`` empty) or the whole cluster (``site`` empty too)."""

    node: str
    site: str
    reason: str  # the metric label (docs/lifecycle.md)
    text: str


@dataclass(frozen=True, slots=True)
class LifecyclePlan:
    """The lifecycle decisions of a plan, for the sites that delete unreachable nodes."""

    probed: bool  # False: candidates were not probed, so nothing can be deleted
    deletions: tuple[NodeDeletion, ...] = ()
    withheld: tuple[Withheld, ...] = ()

    @property
    def not_probed(self) -> tuple[Withheld, ...]:
        """Candidates that only lack probes (plan without ``--probe``)."""
        return tuple(w for w in self.withheld if w.reason == "probing" and not self.probed)


@dataclass(frozen=True)
class Plan:
    """Everything ``topoctl plan`` shows and ``topoctl apply`` does."""

    cluster: str
    nodes: tuple[NodePlan, ...]
    leaders: tuple[LeaderPrediction, ...]
    claimed_twice: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pending: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unassigned: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    observed: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (uid, rv)
    sites: tuple[str, ...] = ()
    members: Mapping[str, str] = field(default_factory=dict)  # node -> site
    # node -> pool, for members a pool claims and the site does not list by name
    pools: Mapping[str, str] = field(default_factory=dict)
    agent_problems: Mapping[str, str] = field(default_factory=dict)  # node -> condition text
    lifecycle: LifecyclePlan | None = None  # None: no site deletes unreachable nodes
    now: Reference = NO_TIME  # when Kilo's freshness was judged, and by what clock

    @property
    def writes(self) -> tuple[NodePlan, ...]:
        """Node plans that write something."""
        return tuple(n for n in self.nodes if n.writes)

    @property
    def conflicts(self) -> tuple[Change, ...]:
        """Every change apply leaves alone, in node order."""
        return tuple(c for n in self.nodes for c in n.conflicts)

    @property
    def has_changes(self) -> bool:
        """True when applying would write or delete anything."""
        return any(n.writes for n in self.nodes) or bool(self.deletions)

    @property
    def deletions(self) -> tuple[NodeDeletion, ...]:
        """The dead nodes apply deletes."""
        return self.lifecycle.deletions if self.lifecycle is not None else ()


@dataclass(frozen=True, slots=True)
class DesiredDelta:
    """What a pull request changes in the desired state of one node (``--base``)."""

    node: str
    kind: str
    key: str
    base: str | None
    head: str | None


_VALUES = (
    Plan,
    NodePlan,
    Change,
    LeaderPrediction,
    TaintValue,
    LifecyclePlan,
    NodeDeletion,
    Withheld,
    Reference,
)


def as_data(value: Any) -> Any:
    """Plain JSON-able data of plan values (for saved plans)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _VALUES):
        return {f: as_data(getattr(value, f)) for f in _fields(value)}
    if isinstance(value, Mapping):
        return {k: as_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_data(v) for v in value]
    return value


def _fields(value: Any) -> tuple[str, ...]:
    struct_fields: tuple[str, ...] | None = getattr(value, "__struct_fields__", None)
    return struct_fields if struct_fields is not None else tuple(value.__dataclass_fields__)
