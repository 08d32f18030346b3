"""Nodes with identical changes are shown once, in the terminal plan as in the comment;
nodes whose changes differ in any line a plan shows are not put together."""

from __future__ import annotations

from pathlib import Path

from reconciler.core.planning.plan import Action, Change, DesiredDelta, NodePlan, Reason
from reconciler.core.rendering.groups import delta_groups, plan_groups, short_key, some
from tests.rendering.support import changed_cluster, plan_output


def change(node: str, key: str, after: str | None, action: Action = Action.PUT) -> Change:
    return Change(node, "fsn1", "annotation", key, action, Reason.DECLARED, None, after)


def node(name: str, *changes: Change) -> NodePlan:
    return NodePlan(name, "fsn1", "uid", "1", changes)


def test_identical_changes_in_one_pool_form_one_group_with_a_row_in_words() -> None:
    location = "kilo.squat.ai/location"
    keepalive = "kilo.squat.ai/persistent-keepalive"
    nodes = [
        node(f"w-{i}", change(f"w-{i}", location, "fsn1"), change(f"w-{i}", keepalive, "25"))
        for i in range(14)
    ]
    nodes.append(node("w-odd", change("w-odd", location, "fsn1"), change("w-odd", keepalive, "5")))
    nodes.append(node("gw-1", change("gw-1", location, "fsn1")))
    nodes.append(node("idle"))
    pools = {n.node: "workers" for n in nodes if n.node.startswith("w-")}
    groups = plan_groups(nodes, pools)
    assert [(g.label, g.shape) for g in groups] == [
        ("14 nodes of pool fsn1/workers", "+location, +keepalive"),
        ("node w-odd", "+location, +keepalive"),  # another value: another group
        ("node gw-1", "+location"),
    ]
    assert groups[0].lines == (
        '+ annotation kilo.squat.ai/location = "fsn1"',
        '+ annotation kilo.squat.ai/persistent-keepalive = "25"',
    )


def test_the_same_changes_in_another_pool_or_site_are_another_group() -> None:
    a = node("a", change("a", "k", "v"))
    b = node("b", change("b", "k", "v"))
    assert len(plan_groups([a, b], {"a": "workers", "b": "gpu"})) == 2
    assert len(plan_groups([a, b], {})) == 1  # both listed by name
    assert plan_groups([a, b], {})[0].label == "2 listed nodes of fsn1"


def test_deltas_group_by_the_site_and_pool_the_node_has_at_the_head() -> None:
    deltas = [
        DesiredDelta(n, "annotation", "kilo.squat.ai/persistent-keepalive", "25", "10")
        for n in ("w-1", "w-2", "gone")
    ]
    groups = delta_groups(deltas, {"w-1": "fsn1", "w-2": "fsn1"}, {"w-1": "w", "w-2": "w"})
    assert [(g.label, g.shape) for g in groups] == [
        ("2 nodes of pool fsn1/w", "~keepalive"),
        ("node gone", "~keepalive"),
    ]


def test_words_for_keys_and_long_lists() -> None:
    assert short_key("annotation", "kilo.squat.ai/persistent-keepalive") == "keepalive"
    assert short_key("label", "topology.kubernetes.io/zone") == "label zone"
    assert short_key("taint", "dedicated:NoSchedule") == "taint dedicated"
    assert some(["a", "b", "c"], 2) == "a, b, c"  # "and 1 more" is no shorter
    assert some([str(i) for i in range(14)], 3) == "0, 1, 2 and 11 more"


def test_the_terminal_plan_of_a_large_pool_shows_each_group_once(tmp_path: Path) -> None:
    changed_cluster(tmp_path, nodes=400, sites=4, changed=0)
    code, text = plan_output(tmp_path)
    assert code == 0
    # Per site: the two gateways, the workers and the GPU nodes: four groups, not 100 nodes.
    assert text.count("  ~ ") == 16
    assert "  ~ 79 nodes of pool site-000/workers: site-000-worker-11, " in text
    assert len(text.splitlines()) < 200
