"""Keys another field manager keeps writing (core/planning/contested.py), in the pure core:
``diff_node`` against nodes whose managedFields a small model of kube-apiserver's
Update semantics keeps (each write moves the keys it touches to its manager, stamped a
second after the last), through generated sequences of topoctl passes, other writers'
rewrites and git changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.planning.diff import diff_node
from reconciler.core.planning.owned import held_record
from reconciler.core.planning.plan import PUT, Reason
from reconciler.model import keys
from reconciler.model.state import NodeState
from reconciler.model.writers import FIELD_MANAGER, FieldWriters, ManagedEntry
from tests.core.test_plan import desired

KEY = keys.KILO_FORCE_ENDPOINT
GIT = [None, "203.0.113.10:51820", "203.0.113.11:51820"]  # None: git declares no endpoint
OTHERS = ["kilo-clustermesh-operator", "kubectl-annotate"]
THEIRS = ["198.51.100.20:51820", "198.51.100.21:51820", None]  # None: they remove it


@dataclass
class Node:
    """A Node's annotations and who wrote each, as kube-apiserver records them."""

    annotations: dict[str, str] = field(default_factory=lambda: {keys.KILO_LOCATION: "s"})
    owner: dict[str, str] = field(default_factory=dict)
    times: dict[str, int] = field(default_factory=lambda: {"kubelet": 0})  # it created it
    clock: int = 0

    def write(self, manager: str, values: dict[str, str | None]) -> None:
        self.clock += 1
        for key, value in values.items():
            if value is None:
                self.annotations.pop(key, None)
                self.owner.pop(key, None)
            else:
                self.annotations[key] = value
                self.owner[key] = manager
        self.times[manager] = self.clock

    def state(self) -> NodeState:
        entries = [
            ManagedEntry(
                manager,
                f"2026-12-07T10:{at // 60:02d}:{at % 60:02d}Z",
                tuple(k for k, m in self.owner.items() if m == manager),
            )
            for manager, at in self.times.items()
        ]
        return NodeState(
            "n1",
            uid="u1",
            resource_version=str(self.clock),
            annotations=MappingProxyType(dict(self.annotations)),
            writers=FieldWriters.of(entries),
        )


def want(endpoint: str | None) -> dict[str, str]:
    out = {keys.KILO_LOCATION: "s"}
    if endpoint is not None:
        out[KEY] = endpoint
    return out


def topoctl_pass(node: Node, endpoint: str | None) -> tuple[bool, str | None]:
    """One plan and apply: whether it wrote KEY, and the manager it held KEY against."""
    plan = diff_node(desired(kilo_keys=want(endpoint)), node.state())
    writes = {c.key: (c.after if c.action is PUT else None) for c in plan.writes}
    if writes:
        node.write(FIELD_MANAGER, writes)
    held = next((c.writer for c in plan.conflicts if c.key == KEY), None)
    if held is not None:
        assert next(c for c in plan.conflicts if c.key == KEY).reason is Reason.OTHER_WRITER
    return KEY in writes, held


def test_one_write_then_a_conflict_naming_the_writer_then_git_lifts_it() -> None:
    node = Node()
    assert topoctl_pass(node, GIT[1]) == (True, None)
    node.write(OTHERS[0], {KEY: THEIRS[0]})
    for _ in range(3):
        assert topoctl_pass(node, GIT[1]) == (False, OTHERS[0])
        node.write(OTHERS[0], {KEY: THEIRS[0]})
    assert node.annotations[KEY] == THEIRS[0]
    assert held_record(node.annotations) == {("annotation", KEY): (OTHERS[0], _digest(GIT[1]))}
    assert topoctl_pass(node, GIT[2]) == (True, None)  # git changed: written once
    node.write(OTHERS[0], {KEY: THEIRS[0]})
    assert topoctl_pass(node, GIT[2]) == (False, OTHERS[0])


def test_an_undeclared_kilo_key_an_operator_keeps_writing_is_removed_once() -> None:
    node = Node()
    node.write(OTHERS[0], {KEY: THEIRS[0]})
    assert topoctl_pass(node, None) == (True, None)  # git declares none: removed
    assert KEY not in node.annotations
    node.write(OTHERS[0], {KEY: THEIRS[0]})
    assert topoctl_pass(node, None) == (False, OTHERS[0])
    assert topoctl_pass(node, None) == (False, OTHERS[0])
    assert topoctl_pass(node, GIT[1]) == (True, None)  # git declares it now


def test_a_value_adopted_without_a_write_is_written_when_git_changes() -> None:
    node = Node()
    node.write(OTHERS[1], {KEY: GIT[1]})  # set by hand, as git says (an import)
    assert topoctl_pass(node, GIT[1]) == (False, None)
    assert topoctl_pass(node, GIT[2]) == (True, None)


def test_nodes_without_managed_fields_are_planned_as_before() -> None:
    live = NodeState("n1", uid="u1", annotations=MappingProxyType({KEY: "198.51.100.20:51820"}))
    plan = diff_node(desired(kilo_keys=want(GIT[1])), live)
    assert [c.key for c in plan.writes] == [KEY, keys.KILO_LOCATION, keys.TOPOCTL_OWNED]
    assert plan.writes[0].verb == "adopt"
    assert "written" not in (plan.writes[-1].after or "")  # no writer known: no record
    assert held_record({keys.TOPOCTL_OWNED: plan.writes[-1].after or ""}) == {}


def _digest(value: str | None) -> str:
    from reconciler.core.planning.contested import digest

    return digest(value)


EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("git"), st.sampled_from(range(len(GIT)))),
        st.tuples(
            st.just("other"),
            st.tuples(st.sampled_from(range(len(OTHERS))), st.sampled_from(range(len(THEIRS)))),
        ),
        st.tuples(st.just("topoctl"), st.just(0)),
    ),
    max_size=30,
)


@settings(derandomize=True, max_examples=300)
@given(st.sampled_from(range(len(GIT))), EVENTS)
def test_at_most_one_write_per_git_value_and_writer(
    start: int, events: list[tuple[str, Any]]
) -> None:
    """Whatever order git changes, other writers' rewrites and topoctl's passes come in:
    topoctl writes the key at most once between two changes of git's value or of the
    writer it wrote against (or a removal of the key), its first pass after such a change
    makes the key git's, and every held key names the manager
    that wrote the value left in place."""
    node = Node()
    git = GIT[start]
    against: str | None = None  # whom topoctl last wrote against or held the key for
    span, fresh, planned = 0, True, git  # planned: git's value at topoctl's last pass
    for kind, arg in [*events, ("topoctl", 0)]:
        if kind == "git":
            git = GIT[arg]
        elif kind == "other":
            who, value = OTHERS[arg[0]], THEIRS[arg[1]]
            node.write(who, {KEY: value})
        else:
            if git != planned:
                span, fresh, planned = 0, True, git  # a revision topoctl has not seen
            if KEY not in node.annotations:
                span, fresh = 0, True  # removed by its writer (or never there): set again
            owner = node.owner.get(KEY)
            other = owner if owner not in (None, FIELD_MANAGER) else None
            if other is not None and against not in (None, FIELD_MANAGER, other):
                span, fresh = 0, True  # another writer than the one held against
            wrote, held = topoctl_pass(node, git)
            span += wrote
            assert span <= 1
            if fresh:
                assert node.annotations.get(KEY) == git
            fresh = False
            if held is not None:
                assert held == other
                against = held
            elif wrote:
                against = other or FIELD_MANAGER
