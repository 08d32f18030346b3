"""The plan core: Kilo's leader election and address rules, ownership in ``diff_node``,
the write ``project``/``node_write`` derive from a plan, and properties of the planner
over generated clusters.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.adapters.patches import node_patch as write_patch
from reconciler.adapters.snapshot import merge_patch
from reconciler.core.kilo.freshness import NO_TIME, reference
from reconciler.core.kilo.leader import find_leader
from reconciler.core.kilo.node import KiloNode, is_public, kilo_location, kilo_node
from reconciler.core.planning.desired import DesiredNode
from reconciler.core.planning.diff import diff_node, with_agent
from reconciler.core.planning.membership import ClaimIndex, claims_of, selects
from reconciler.core.planning.owned import owned_record, render_owned
from reconciler.core.planning.plan import Change, NodePlan, Plan
from reconciler.core.planning.planner import Planner
from reconciler.core.planning.project import node_write, project
from reconciler.core.rendering import plans
from reconciler.model import keys
from reconciler.model.state import NodeState, TaintValue
from reconciler.model.topology import Cluster, Site, Topology

SEEN = 1_795_683_600

# --- builders ------------------------------------------------------------------------


def kilo(
    name: str,
    *,
    leader: bool = False,
    endpoint: str | None = "10.0.0.1",
    internal_ip: str | None = "10.0.0.1",
    ready: bool = True,
) -> KiloNode:
    return KiloNode(name, leader, endpoint, internal_ip, ready)


def node_object(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] = (),
    internal_ip: str | None = "10.0.0.1",
    ready: str = "True",
    resource_version: str = "7",
    pod_cidr: str = "10.244.0.0/24",
) -> dict[str, Any]:
    """A Node as ``kubectl get node -o json`` prints it (only what matters here)."""
    addresses = [{"type": "InternalIP", "address": internal_ip}] if internal_ip else []
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": resource_version,
            "labels": dict(labels or {}),
            "annotations": dict(annotations or {}),
        },
        "spec": {"podCIDR": pod_cidr, "taints": [dict(t) for t in taints]},
        "status": {
            "addresses": addresses,
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def state(name: str = "n1", **kwargs: Any) -> NodeState:
    return NodeState.from_object(node_object(name, **kwargs))


def desired(
    name: str = "n1",
    *,
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[TaintValue] = (),
    kilo_keys: Mapping[str, str] | None = None,
) -> DesiredNode:
    """A desired node; ``kilo_keys`` are also part of its annotations, as in desire_site."""
    kilo_keys = dict(kilo_keys if kilo_keys is not None else {keys.KILO_LOCATION: "s"})
    return DesiredNode(
        name=name,
        site="s",
        annotations={**(annotations or {}), **kilo_keys},
        labels=dict(labels or {}),
        taints={t.ident: t for t in taints},
        kilo=kilo_keys,
    )


def owned(annotations: Sequence[str] = (), labels: Sequence[str] = (), taints: Sequence[str] = ()):
    return render_owned({"annotations": annotations, "labels": labels, "taints": taints})


def node_patch(plan: NodePlan, live: NodeState) -> dict[str, Any]:
    """The merge patch apply sends for ``plan`` against ``live``."""
    return write_patch(node_write(live, plan))


def changes(plan: NodePlan) -> dict[tuple[str, str], Change]:
    """The plan's changes by (kind, key), without the ownership record."""
    return {(c.kind, c.key): c for c in plan.changes if c.key != keys.TOPOCTL_OWNED}


def site(name: str, **spec: Any) -> Site:
    return Site.model_validate(
        {
            "apiVersion": "topoctl.io/v1alpha1",
            "kind": "Site",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def topology(*sites: Site, **cluster_spec: Any) -> Topology:
    cluster = Cluster.model_validate(
        {"apiVersion": "topoctl.io/v1alpha1", "kind": "Cluster", "spec": cluster_spec}
    )
    return Topology(cluster=cluster, sites=sites)


def kilo_annotations(
    endpoint: str,
    internal_cidr: str,
    *,
    last_seen: int = SEEN,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What Kilo itself publishes on a node that runs it (plus ``extra``)."""
    return {
        keys.KILO_KEY: "c2NlbmFyaW8gdGVzdCBrZXkgLSBub3QgcmVhbCEhISE=",
        keys.KILO_LAST_SEEN: str(last_seen),
        keys.KILO_ENDPOINT: endpoint,
        keys.KILO_INTERNAL_IP: internal_cidr,
        **(extra or {}),
    }


# --- Kilo: isPublic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "public"),
    [
        ("10.0.0.1", False),
        ("10.255.255.255", False),
        ("172.16.0.1", False),
        ("172.31.255.255", False),
        ("172.15.255.255", True),
        ("172.32.0.1", True),
        ("192.168.0.1", False),
        ("192.169.0.1", True),
        ("100.64.0.1", True),  # CGNAT counts as public for Kilo
        ("100.127.255.254", True),
        ("203.0.113.10", True),
        ("127.0.0.1", True),  # Kilo only tests RFC 1918
        ("fd00::1", False),
        ("fd00:ffff::1", False),
        ("fd01::1", True),  # Kilo tests two bytes: only fd00::/16 is private
        ("fd12:3456::1", True),
        ("fc00::1", True),
        ("2001:db8::1", True),
        ("::ffff:10.1.2.3", False),  # Go's To4() reads a v4-mapped address as IPv4
        ("::ffff:8.8.8.8", True),
    ],
)
def test_is_public_matches_kilo(ip: str, public: bool) -> None:
    assert is_public(ip) is public


# --- Kilo: findLeader ----------------------------------------------------------------

LEADER_CASES: list[tuple[str, list[KiloNode], str | None]] = [
    (
        "annotated with a public endpoint beats an earlier annotated private one",
        [kilo("a", leader=True), kilo("b", leader=True, endpoint="203.0.113.2")],
        "b",
    ),
    (
        "annotated beats public",
        [kilo("a", endpoint="203.0.113.1"), kilo("b", leader=True)],
        "b",
    ),
    (
        "first annotated in name order among private ones",
        [kilo("c", leader=True), kilo("b", leader=True), kilo("a")],
        "b",
    ),
    (
        "public beats private without annotations",
        [kilo("a"), kilo("b", endpoint="203.0.113.2"), kilo("c", endpoint="203.0.113.3")],
        "b",
    ),
    ("CGNAT is public", [kilo("a"), kilo("b", endpoint="100.64.0.2")], "b"),
    (
        "fd00::/16 is private, fd12:: is not",
        [kilo("a", endpoint="fd00::1"), kilo("b", endpoint="fd12::1")],
        "b",
    ),
    ("a DNS endpoint counts as public", [kilo("a"), kilo("b", endpoint="gw.example.com")], "b"),
    ("no endpoint is not public", [kilo("a", endpoint=None), kilo("b")], "a"),
    ("else the first by name", [kilo("b"), kilo("a")], "a"),
    ("byte order: upper case sorts first", [kilo("a"), kilo("Z")], "Z"),
    ("byte order: node-10 before node-9", [kilo("node-9"), kilo("node-10")], "node-10"),
    (
        "not-Ready nodes are not in the segment",
        [kilo("a", leader=True, endpoint="203.0.113.1", ready=False), kilo("b")],
        "b",
    ),
    (
        "nodes without internal IP are segments of their own",
        [kilo("a", leader=True, endpoint="203.0.113.1", internal_ip=None), kilo("b")],
        "b",
    ),
    ("nobody Ready: no leader", [kilo("a", ready=False)], None),
    ("empty location: no leader", [], None),
]


@pytest.mark.parametrize(
    ("nodes", "expected"),
    [pytest.param(nodes, expected, id=why) for why, nodes, expected in LEADER_CASES],
)
def test_find_leader_follows_kilo(nodes: list[KiloNode], expected: str | None) -> None:
    leader = find_leader(nodes)
    assert (leader.name if leader else None) == expected
    assert find_leader(list(reversed(nodes))) == leader  # input order never matters


# --- Kilo: reading a node -------------------------------------------------------------


def test_force_endpoint_wins_over_kilos_own() -> None:
    node = state(annotations={keys.KILO_ENDPOINT: "10.0.0.1:51820"})
    seen = kilo_node(
        state(annotations={**node.annotations, keys.KILO_FORCE_ENDPOINT: "203.0.113.9:51820"}),
        None,
    )
    assert seen.endpoint_host == "203.0.113.9"
    assert seen.public_endpoint


def test_endpoint_without_port_is_ignored_like_kilo_does() -> None:
    seen = kilo_node(state(annotations={keys.KILO_FORCE_ENDPOINT: "203.0.113.9"}), None)
    assert seen.endpoint_host is None


@pytest.mark.parametrize(
    ("annotations", "internal_ip"),
    [
        ({keys.KILO_FORCE_INTERNAL_IP: "10.1.0.1/32"}, "10.1.0.1"),
        ({keys.KILO_INTERNAL_IP: "10.2.0.1/24"}, "10.2.0.1"),
        # A bare forced IP is ignored by Kilo, which falls back to its own.
        (
            {keys.KILO_FORCE_INTERNAL_IP: "10.1.0.1", keys.KILO_INTERNAL_IP: "10.2.0.1/24"},
            "10.2.0.1",
        ),
        # "" and "-" mean: no internal IP at all (a segment of its own).
        ({keys.KILO_FORCE_INTERNAL_IP: "", keys.KILO_INTERNAL_IP: "10.2.0.1/24"}, None),
        ({keys.KILO_FORCE_INTERNAL_IP: "-", keys.KILO_INTERNAL_IP: "10.2.0.1/24"}, None),
    ],
)
def test_internal_ip_as_kilo_reads_it(annotations: dict[str, str], internal_ip: str | None) -> None:
    assert kilo_node(state(annotations=annotations), None).internal_ip == internal_ip


def test_leader_is_the_keys_presence_whatever_its_value() -> None:
    for value in ("true", "false", ""):
        assert kilo_node(state(annotations={keys.KILO_LEADER: value}), None).leader


@pytest.mark.parametrize(
    ("change", "ready"),
    [
        ({}, True),
        ({keys.KILO_LAST_SEEN: str(SEEN - 59)}, True),
        ({keys.KILO_LAST_SEEN: str(SEEN - 60)}, False),  # missed two check-ins
        ({keys.KILO_KEY: ""}, False),
        ({keys.KILO_ENDPOINT: ""}, False),
    ],
)
def test_ready_for_kilo(change: dict[str, str], ready: bool) -> None:
    annotations = {**kilo_annotations("10.0.0.1:51820", "10.0.0.1/24"), **change}
    node = state(annotations=annotations)
    assert kilo_node(node, SEEN).ready is ready


def test_ready_needs_a_pod_cidr() -> None:
    node = state(annotations=kilo_annotations("10.0.0.1:51820", "10.0.0.1/24"), pod_cidr="")
    assert not kilo_node(node, SEEN).ready


def test_without_kilo_data_the_ready_condition_stands_in() -> None:
    assert reference([state(), state("n2")], None) == NO_TIME
    assert kilo_node(state(ready="True"), None).ready
    assert not kilo_node(state(ready="Unknown"), None).ready


def test_location_annotation_wins_even_empty_over_region_label() -> None:
    region = {"topology.kubernetes.io/region": "eu"}
    assert kilo_location(state(labels=region)) == "eu"
    assert kilo_location(state(labels=region, annotations={keys.KILO_LOCATION: ""})) == ""
    assert kilo_location(state(labels=region, annotations={keys.KILO_LOCATION: "fsn1"})) == "fsn1"


def test_projection_keeps_talos_values_and_drops_removed_mirrors() -> None:
    node = state(
        annotations={
            keys.KILO_LOCATION: "talos-says",
            keys.TALOS_OWNED_ANNOTATIONS: keys.KILO_LOCATION,
            keys.KILO_FORCE_ENDPOINT: "203.0.113.1:51820",
            keys.KILO_ENDPOINT: "203.0.113.1:51820",
            keys.KILO_LEADER: "false",
        }
    )
    kilo_keys = {keys.KILO_LOCATION: "git-says", keys.KILO_PERSISTENT_KEEPALIVE: "5"}
    after = project(node, diff_node(desired(kilo_keys=kilo_keys), node)).annotations
    assert after[keys.KILO_LOCATION] == "talos-says"
    assert after[keys.KILO_PERSISTENT_KEEPALIVE] == "5"
    for gone in (keys.KILO_FORCE_ENDPOINT, keys.KILO_ENDPOINT, keys.KILO_LEADER):
        assert gone not in after


# --- diff_node: ownership --------------------------------------------------------------


def test_absent_key_is_set_and_owned() -> None:
    plan = diff_node(desired(labels={"team": "a"}), state())
    assert changes(plan)[("label", "team")].verb == "set"
    record = owned_record({keys.TOPOCTL_OWNED: plan.changes[-1].after or ""})
    assert record["labels"] == {"team"}
    assert record["annotations"] == {keys.KILO_LOCATION}


def test_owned_key_with_another_value_is_updated() -> None:
    live = state(labels={"team": "b"}, annotations={keys.TOPOCTL_OWNED: owned(labels=["team"])})
    change = changes(diff_node(desired(labels={"team": "a"}), live))[("label", "team")]
    assert (change.verb, change.before, change.after) == ("update", "b", "a")


def test_foreign_key_with_another_value_is_adopted_and_says_so() -> None:
    change = changes(diff_node(desired(labels={"team": "a"}), state(labels={"team": "b"})))[
        ("label", "team")
    ]
    assert change.verb == "adopt"
    assert "someone else" in change.why


def test_foreign_keys_not_in_git_are_never_touched() -> None:
    live = state(
        labels={"example.com/x": "1"},
        annotations={"example.com/y": "2", keys.KILO_KEY: "k", keys.KILO_ENDPOINT: "1.2.3.4:5"},
        taints=[{"key": "example.com/z", "effect": "NoSchedule"}],
    )
    plan = diff_node(desired(), live)
    assert {c.key for c in plan.changes} == {keys.KILO_LOCATION, keys.TOPOCTL_OWNED}
    assert node_write(live, plan).taints is None


def test_owned_key_dropped_from_git_is_removed() -> None:
    live = state(
        labels={"team": "a"},
        annotations={"note": "x", keys.TOPOCTL_OWNED: owned(["note"], ["team"], ["t:NoSchedule"])},
        taints=[{"key": "t", "effect": "NoSchedule"}, {"key": "other", "effect": "NoExecute"}],
    )
    plan = diff_node(desired(kilo_keys={}), live)
    found = changes(plan)
    assert found[("label", "team")].verb == "remove"
    assert found[("annotation", "note")].verb == "remove"
    assert found[("taint", "t:NoSchedule")].verb == "remove"
    assert node_write(live, plan).taints == (TaintValue("other", "NoExecute"),)


def test_owned_key_already_gone_is_just_forgotten() -> None:
    live = state(annotations={keys.TOPOCTL_OWNED: owned(labels=["team"])})
    plan = diff_node(desired(kilo_keys={}), live)
    assert [c.key for c in plan.changes] == [keys.TOPOCTL_OWNED]
    assert owned_record({keys.TOPOCTL_OWNED: plan.changes[0].after or ""})["labels"] == set()


def test_agent_annotation_is_updated_not_adopted_and_not_recorded() -> None:
    live = state(annotations={keys.TOPOCTL_AGENT: '{"v":1}', keys.TOPOCTL_OWNED: owned()})
    plan = with_agent(diff_node(desired(kilo_keys={}), live), live, '{"v":2}')
    assert changes(plan)[("annotation", keys.TOPOCTL_AGENT)].verb == "update"
    assert keys.TOPOCTL_OWNED not in {c.key for c in plan.changes}  # the record stays empty


@pytest.mark.parametrize("kind", ["label", "annotation"])
def test_talos_key_with_another_value_is_a_conflict_not_a_write(kind: str) -> None:
    talos = keys.TALOS_OWNED_LABELS if kind == "label" else keys.TALOS_OWNED_ANNOTATIONS
    live = state(
        labels={"zone": "rack-b"} if kind == "label" else {},
        annotations={talos: "zone", **({"zone": "rack-b"} if kind == "annotation" else {})},
    )
    want = desired(labels={"zone": "a"}) if kind == "label" else desired(annotations={"zone": "a"})
    plan = diff_node(want, live)
    conflict = changes(plan)[(kind, "zone")]
    assert conflict.verb == "conflict"
    assert conflict not in plan.writes
    assert "zone" not in json.dumps(node_patch(plan, live))


def test_talos_taint_conflicts_by_key() -> None:
    live = state(
        annotations={keys.TALOS_OWNED_TAINTS: "dedicated=storage:NoSchedule"},
        taints=[{"key": "dedicated", "value": "storage", "effect": "NoSchedule"}],
    )
    plan = diff_node(desired(taints=[TaintValue("dedicated", "NoSchedule", "gw")]), live)
    assert changes(plan)[("taint", "dedicated:NoSchedule")].verb == "conflict"
    assert node_write(live, plan).taints is None


def test_talos_key_is_not_removed_even_when_owned() -> None:
    live = state(
        labels={"zone": "a"},
        annotations={keys.TALOS_OWNED_LABELS: "zone", keys.TOPOCTL_OWNED: owned(labels=["zone"])},
    )
    assert ("label", "zone") not in changes(diff_node(desired(), live))


@pytest.mark.parametrize("value", ["false", "true", ""])
def test_undeclared_kilo_leader_is_removed_on_members_even_if_foreign(value: str) -> None:
    plan = diff_node(desired(), state(annotations={keys.KILO_LEADER: value}))
    change = changes(plan)[("annotation", keys.KILO_LEADER)]
    assert change.verb == "remove"
    assert "leader candidate" in change.why


def test_undeclared_kilo_key_set_by_talos_is_a_conflict() -> None:
    live = state(
        annotations={keys.KILO_LEADER: "true", keys.TALOS_OWNED_ANNOTATIONS: keys.KILO_LEADER}
    )
    assert changes(diff_node(desired(), live))[("annotation", keys.KILO_LEADER)].verb == "conflict"


@pytest.mark.parametrize(
    ("force", "mirror"),
    [
        (keys.KILO_FORCE_ENDPOINT, keys.KILO_ENDPOINT),
        (keys.KILO_FORCE_INTERNAL_IP, keys.KILO_INTERNAL_IP),
    ],
)
def test_removing_a_force_key_removes_kilos_mirror(force: str, mirror: str) -> None:
    live = state(annotations={force: "x", mirror: "x", keys.TOPOCTL_OWNED: owned([force])})
    found = changes(diff_node(desired(), live))
    assert found[("annotation", force)].verb == "remove"
    assert found[("annotation", mirror)].verb == "remove-mirror"


def test_mirror_stays_while_the_force_key_stays() -> None:
    live = state(annotations={keys.KILO_ENDPOINT: "10.0.0.1:51820"})
    assert ("annotation", keys.KILO_ENDPOINT) not in changes(diff_node(desired(), live))


def test_converged_node_has_no_changes() -> None:
    first = diff_node(desired(labels={"a": "1"}, taints=[TaintValue("t", "NoSchedule")]), state())
    obj = node_object("n1")
    merge_patch(obj, node_patch(first, state()))
    again = diff_node(
        desired(labels={"a": "1"}, taints=[TaintValue("t", "NoSchedule")]),
        NodeState.from_object(obj),
    )
    assert again.changes == ()


# --- node_write -----------------------------------------------------------------------


def test_patch_carries_only_changed_keys_and_the_resource_version() -> None:
    live = state(
        labels={"keep": "1", "same": "x"},
        annotations={"old": "v", keys.TOPOCTL_OWNED: owned(["old"], ["same"])},
        resource_version="42",
    )
    patch = node_patch(diff_node(desired(labels={"same": "x", "new": "y"}), live), live)
    assert patch["metadata"]["resourceVersion"] == "42"
    assert patch["metadata"]["labels"] == {"new": "y"}
    assert patch["metadata"]["annotations"]["old"] is None  # null deletes in a merge patch
    assert set(patch["metadata"]["annotations"]) == {"old", keys.KILO_LOCATION, keys.TOPOCTL_OWNED}
    assert "spec" not in patch


def test_patch_sends_the_whole_taint_list_when_taints_change() -> None:
    live = state(
        taints=[
            {"key": "foreign", "effect": "NoExecute"},
            {"key": "mine", "effect": "NoSchedule", "value": "old"},
        ],
        annotations={keys.TOPOCTL_OWNED: owned(taints=["mine:NoSchedule"])},
    )
    want = desired(
        taints=[TaintValue("mine", "NoSchedule", "new"), TaintValue("added", "NoExecute")]
    )
    patch = node_patch(diff_node(want, live), live)
    assert patch["spec"]["taints"] == [
        {"key": "foreign", "effect": "NoExecute"},
        {"key": "mine", "effect": "NoSchedule", "value": "new"},
        {"key": "added", "effect": "NoExecute"},
    ]


def test_removing_the_last_taint_sends_an_empty_list() -> None:
    live = state(
        taints=[{"key": "mine", "effect": "NoSchedule"}],
        annotations={keys.TOPOCTL_OWNED: owned(taints=["mine:NoSchedule"])},
    )
    assert node_patch(diff_node(desired(), live), live)["spec"] == {"taints": []}


def test_conflicts_are_not_in_the_patch() -> None:
    live = state(labels={"zone": "b"}, annotations={keys.TALOS_OWNED_LABELS: "zone"})
    patch = node_patch(diff_node(desired(labels={"zone": "a"}), live), live)
    assert "labels" not in patch["metadata"]


# --- build_plan: Kilo locations ------------------------------------------------------


def test_current_leader_is_kilos_leader_of_the_location_not_of_the_members() -> None:
    """Members not yet in the location are not led by anyone there: the location is new."""
    topo = topology(site("s", leader=["s-1"], nodes=[{"name": "s-1"}, {"name": "s-2"}]))
    nodes = [
        state("s-1", annotations=kilo_annotations("203.0.113.1:51820", "10.0.0.1/24")),
        state("s-2", annotations=kilo_annotations("203.0.113.2:51820", "10.0.0.2/24")),
    ]
    (leader,) = build_plan(topo, nodes).leaders
    assert (leader.current, leader.predicted) == (None, "s-1")


def test_untouched_node_in_the_location_stays_a_leader_candidate() -> None:
    """A node no site claims but that carries the location is in Kilo's election."""
    topo = topology(
        site(
            "s",
            nodes=[{"name": "s-1"}],
            routes=[{"to": "172.31.0.0/16", "via": "leader", "on": "non-leaders"}],
        )
    )
    stray = state(
        "other",
        internal_ip="10.0.0.9",
        annotations=kilo_annotations(
            "203.0.113.9:51820",
            "10.0.0.9/24",
            extra={keys.KILO_LOCATION: "s", keys.KILO_LEADER: "true"},
        ),
    )
    member = state("s-1", annotations=kilo_annotations("203.0.113.1:51820", "10.0.0.1/24"))
    plan = build_plan(topo, [member, stray])
    (leader,) = plan.leaders
    assert (leader.current, leader.predicted, leader.predicted_internal_ip) == (
        "other",
        "other",
        "10.0.0.9",
    )
    agent = next(c for c in plan.nodes[0].changes if c.key == keys.TOPOCTL_AGENT)
    assert json.loads(agent.after or "")["routes"][0]["via"] == "10.0.0.9"
    assert [n.node for n in plan.nodes] == ["s-1"]


def test_member_pinned_elsewhere_by_talos_is_not_predicted_to_lead() -> None:
    topo = topology(site("s", leader=["s-1"], nodes=[{"name": "s-1"}, {"name": "s-2"}]))
    pinned = kilo_annotations(
        "203.0.113.1:51820",
        "10.0.0.1/24",
        extra={keys.KILO_LOCATION: "elsewhere", keys.TALOS_OWNED_ANNOTATIONS: keys.KILO_LOCATION},
    )
    nodes = [
        state("s-1", annotations=pinned),
        state("s-2", annotations=kilo_annotations("203.0.113.2:51820", "10.0.0.2/24")),
    ]
    plan = build_plan(topo, nodes)
    assert plan.leaders[0].predicted == "s-2"
    assert [c.verb for c in plan.conflicts] == ["conflict"]


@pytest.mark.parametrize(
    ("pool_labels", "moves"),
    [
        ({"pool": "other"}, True),  # the pool un-selects its own node
        ({"pool": "gpu", "role": "x"}, False),
    ],
)
def test_labels_that_change_membership_are_a_plan_error(
    pool_labels: dict[str, str], moves: bool
) -> None:
    pool = {"name": "gpu", "selector": {"matchLabels": {"pool": "gpu"}}, "labels": pool_labels}
    topo = topology(site("s", pools=[pool]))
    plan = build_plan(topo, [state("n1", labels={"pool": "gpu"})])
    if moves:
        (error,) = plan.errors
        assert "n1" in error and "site s pool gpu to no site" in error
    else:
        assert plan.errors == ()


def test_labels_that_hand_a_node_to_another_site_are_a_plan_error() -> None:
    topo = topology(
        site("a", nodes=[{"name": "n1", "labels": {"pool": "b"}}]),
        site("b", pools=[{"name": "p", "selector": {"matchLabels": {"pool": "b"}}}]),
    )
    (error,) = build_plan(topo, [state("n1")]).errors
    assert "from site a to sites a, b (claimed twice)" in error


# --- properties over generated clusters ----------------------------------------------

NAMES = ("a-1", "a-2", "a-3", "b-1", "b-2", "c-1", "x-1")
LABEL_KEYS = ("example.com/role", "topology.kubernetes.io/zone", "pool")
ANNOTATION_KEYS = ("example.com/note", "example.com/owner")
TAINTS = (("t1", "NoSchedule"), ("t2", "NoExecute"), ("pool", "NoSchedule"))
ENDPOINTS = ("203.0.113.7", "10.9.0.1:51820", "[2001:db8::1]", "[fd00::1]:4500", "gw.example.com")
ROUTES = (
    {"to": "172.31.0.0/16", "via": "leader", "on": "non-leaders", "dev": "cilium_tunl"},
    {"to": "172.30.0.0/16", "via": "leader"},
    {"to": "192.168.200.0/24", "via": "10.0.0.254", "on": "leader"},
    {"to": "10.96.0.0/12", "dev": "cilium_host"},
)
KILO_VALUES: dict[str, tuple[str, ...]] = {
    keys.KILO_LOCATION: ("a", "b", "", "elsewhere"),
    keys.KILO_LEADER: ("true", "false"),
    keys.KILO_FORCE_ENDPOINT: ("203.0.113.50:51820", "nonsense", "10.0.0.5:51820"),
    keys.KILO_FORCE_INTERNAL_IP: ("10.0.0.5/32", "10.0.0.5", "-"),
    keys.KILO_PERSISTENT_KEEPALIVE: ("25", "20s"),
    keys.KILO_ALLOWED_LOCATION_IPS: ("192.168.9.0/24",),
}
OWNABLE = {
    "annotations": (*ANNOTATION_KEYS, *sorted(keys.KILO_USER_KEYS)),
    "labels": LABEL_KEYS,
    "taints": tuple(f"{k}:{e}" for k, e in TAINTS),
}

# Strategies are built once: building them inside draws costs more than the plans do.


@functools.cache
def pick(choices: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(choices)


@functools.cache
def subset(choices: tuple[Any, ...], min_size: int = 0) -> st.SearchStrategy[list[Any]]:
    return st.lists(pick(choices), unique=True, min_size=min_size, max_size=len(choices))


def mapping(keys_: tuple[str, ...], values: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(pick(keys_), pick(values), max_size=len(keys_))


BOOL = st.booleans()
GIT_LABELS = mapping(LABEL_KEYS, ("x", "y", ""))
LIVE_LABELS = mapping(LABEL_KEYS, ("a", "b", "x"))
GIT_ANNOTATIONS = mapping(ANNOTATION_KEYS, ("x", "y", ""))
ROUTE_LISTS = st.lists(st.sampled_from(ROUTES), unique_by=lambda r: str(r["to"]), max_size=3)
SELECTORS = ("name", "label", "suffix")


@st.composite
def taint_lists(draw: st.DrawFn) -> list[dict[str, str]]:
    chosen = draw(subset(TAINTS))
    return [{"key": k, "effect": e, "value": draw(pick(("", "v", "w")))} for k, e in chosen]


TAINT_LISTS = taint_lists()


@st.composite
def sites(draw: st.DrawFn, name: str) -> Site:
    named = draw(subset(tuple(n for n in NAMES if n.startswith(f"{name}-"))))
    nodes = []
    for node_name in named:
        entry: dict[str, Any] = {"name": node_name}
        if draw(BOOL):
            entry["endpoint"] = draw(pick(ENDPOINTS))
        if draw(BOOL):
            entry["internalIP"] = f"10.{ord(name)}.0.{NAMES.index(node_name) + 1}"
        if draw(BOOL):
            entry["labels"] = draw(GIT_LABELS)
        if draw(BOOL):
            entry["taints"] = draw(TAINT_LISTS)
        nodes.append(entry)
    pools = []
    if draw(BOOL):
        selector = {
            "name": {"namePattern": f"{name}-*"},
            "label": {"matchLabels": {"pool": name}},
            "suffix": {"namePattern": "*-1"},
        }[draw(pick(SELECTORS))]
        pools.append(
            {
                "name": "pool",
                "selector": selector,
                "labels": draw(GIT_LABELS),
                "annotations": draw(GIT_ANNOTATIONS),
                "taints": draw(TAINT_LISTS),
            }
        )
    spec: dict[str, Any] = {
        "nodes": nodes,
        "pools": pools,
        "leader": draw(subset(tuple(named))) if named else [],
        "labels": draw(GIT_LABELS),
        "annotations": draw(GIT_ANNOTATIONS),
        "taints": draw(TAINT_LISTS),
        "routes": draw(ROUTE_LISTS),
    }
    if draw(BOOL):
        spec["persistentKeepalive"] = draw(pick((1, 25, 60)))
    if draw(BOOL):
        spec["allowedLocationIPs"] = [f"192.168.{ord(name)}.0/24"]
    return site(name, **spec)


SITES = {name: sites(name) for name in ("a", "b", "c")}
TALOS_SOURCES = (
    (keys.TALOS_OWNED_LABELS, LABEL_KEYS),
    (keys.TALOS_OWNED_ANNOTATIONS, (*ANNOTATION_KEYS, keys.KILO_LOCATION, keys.KILO_LEADER)),
    (keys.TALOS_OWNED_TAINTS, ("t1",)),
)


@st.composite
def live_nodes(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(subset(NAMES, min_size=1))
    out = []
    for index, name in enumerate(names):
        annotations: dict[str, str] = {}
        if draw(BOOL):  # Kilo runs on it
            annotations.update(
                kilo_annotations(
                    f"{draw(pick(('203.0.113', '10.8.0')))}.{index + 1}:51820",
                    f"10.8.0.{index + 1}/24",
                    last_seen=SEEN - draw(pick((0, 10, 120))),
                )
            )
        for key, choices in KILO_VALUES.items():
            if draw(pick((True, False, False, False))):
                annotations[key] = draw(pick(choices))
        annotations.update(draw(GIT_ANNOTATIONS))
        if draw(BOOL):
            annotations[keys.TOPOCTL_OWNED] = render_owned(
                {kind: draw(subset(pool)) for kind, pool in OWNABLE.items()}
            )
        for source, pool in TALOS_SOURCES:
            if draw(pick((True, False, False, False, False))):
                annotations[source] = ",".join(draw(subset(pool, min_size=1)))
        out.append(
            node_object(
                name,
                labels=draw(LIVE_LABELS),
                annotations=annotations,
                taints=draw(TAINT_LISTS),
                internal_ip=f"10.8.0.{index + 1}",
                ready=draw(pick(("True", "False"))),
                resource_version=str(100 + index),
            )
        )
    return out


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    chosen = draw(subset(("a", "b", "c"), min_size=1))
    return topology(*(draw(SITES[name]) for name in sorted(chosen)))


def build_plan(topo: Topology, nodes: Iterable[NodeState]) -> Plan:
    return Planner(topo, nodes).plan_all()


def states_of(objects: Sequence[Mapping[str, Any]]) -> list[NodeState]:
    return [NodeState.from_object(o) for o in objects]


def apply_to_objects(plan: Plan, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a merge-patching backend does with the plan's patches."""
    out = copy.deepcopy(objects)
    by_name = {o["metadata"]["name"]: o for o in out}
    for node_plan in plan.writes:
        target = by_name[node_plan.node]
        patch = node_patch(node_plan, NodeState.from_object(target))
        assert patch["metadata"].pop("resourceVersion") == target["metadata"]["resourceVersion"]
        merge_patch(target, patch)
        target["metadata"]["resourceVersion"] += "1"
    return out


PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(topo=topologies(), objects=live_nodes(), seed=st.integers(0, 2**16))
def test_build_plan_is_deterministic_whatever_the_node_order(
    topo: Topology, objects: list[dict[str, Any]], seed: int
) -> None:
    shuffled = list(objects)
    random.Random(seed).shuffle(shuffled)
    first, again = build_plan(topo, states_of(objects)), build_plan(topo, states_of(shuffled))
    assert first == build_plan(topo, states_of(objects))
    assert plans.as_json(first) == plans.as_json(again)
    assert plans.text(first) == plans.text(again)


@PROPERTY_SETTINGS
@given(topo=topologies(), objects=live_nodes())
def test_plain_text_is_what_rich_prints_of_the_markup(
    topo: Topology, objects: list[dict[str, Any]]
) -> None:
    from rich.console import Console

    plan = build_plan(topo, states_of(objects))
    sink = io.StringIO()
    Console(file=sink, width=120, color_system=None, highlight=False).print(
        plans.text(plan), soft_wrap=True
    )
    assert sink.getvalue() == plans.text(plan, markup=False) + "\n"


@PROPERTY_SETTINGS
@given(topo=topologies(), objects=live_nodes())
def test_applying_a_plan_then_planning_again_writes_nothing(
    topo: Topology, objects: list[dict[str, Any]]
) -> None:
    plan = build_plan(topo, states_of(objects))
    if plan.errors:
        return  # apply refuses a plan with errors
    applied = apply_to_objects(plan, objects)
    again = build_plan(topo, states_of(applied))
    assert again.writes == (), [c for n in again.writes for c in n.writes]
    assert [p.predicted for p in again.leaders] == [p.predicted for p in plan.leaders]


@PROPERTY_SETTINGS
@given(topo=topologies(), objects=live_nodes())
def test_plans_touch_only_members_and_keys_topoctl_may_write(
    topo: Topology, objects: list[dict[str, Any]]
) -> None:
    states = {s.name: s for s in states_of(objects)}
    plan = build_plan(topo, states.values())
    allowed_nodes = set(plan.members)
    for node_plan in plan.writes:
        assert node_plan.node in allowed_nodes
        assert node_plan.node not in plan.claimed_twice and node_plan.node not in plan.unassigned
        live = states[node_plan.node]
        record = owned_record(live.annotations)
        for change in node_plan.writes:
            if change.verb in ("set", "update", "adopt"):
                continue  # git declares it
            kind = {"annotation": "annotations", "label": "labels", "taint": "taints"}[change.kind]
            assert (
                change.key in record[kind]
                or change.key in keys.KILO_USER_KEYS
                or (change.verb == "remove-mirror" and change.key in keys.KILO_MIRRORS.values())
            ), change


def claims_by_trying_every_pool(topo: Topology, states: Sequence[NodeState]) -> dict[str, Any]:
    """Membership the slow, obvious way: every site and pool against every node."""
    out: dict[str, Any] = {}
    for node in states:
        claims = []
        for candidate in topo.sites:
            listed = next((n for n in candidate.spec.nodes if n.name == node.name), None)
            pools = [p.name for p in candidate.spec.pools if selects(p, node)]
            if listed is not None or pools:
                claims.append((candidate.name, listed is not None, pools[:1]))
        out[node.name] = claims
    return out


@PROPERTY_SETTINGS
@given(topo=topologies(), objects=live_nodes())
def test_indexed_membership_equals_trying_every_pool(
    topo: Topology, objects: list[dict[str, Any]]
) -> None:
    states = states_of(objects)
    index = ClaimIndex(topo.sites)
    slow = claims_by_trying_every_pool(topo, states)
    for node in states:
        indexed = [
            (m.site.name, m.named is not None, [m.pool.name] if m.pool else [])
            for m in claims_of(index, node).members
        ]
        assert indexed == slow[node.name], node.name
