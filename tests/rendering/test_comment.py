"""The pull-request comment: leads with the pull request's change, groups nodes with
identical changes, and fits in one GitHub comment whatever the plan, cut only between
whole parts (checked with a real markdown parser, markdown-it-py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from reconciler.adapters.files import read_directory
from reconciler.adapters.snapshot import SnapshotBackend
from reconciler.core.kilo.freshness import Reference, TimeSource
from reconciler.core.loading.load import load
from reconciler.core.planning.plan import (
    Action,
    Change,
    DesiredDelta,
    LeaderPrediction,
    NodePlan,
    Plan,
    Reason,
)
from reconciler.core.rendering import graphs, mesh
from reconciler.core.rendering.comment import BUDGET, GITHUB_LIMIT, MARKER, MIN_LIMIT, comment
from reconciler.core.rendering.markdown import code, fence, size
from reconciler.usecases.plan import plan_once
from tests.rendering.support import changed_cluster, plan_output

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "comment"
SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "fresh_cluster_all_set"
PARSER = MarkdownIt("commonmark").enable("table")


def posted(body: str) -> str:
    """The comment as posted: the marker line, then the body."""
    return f"{MARKER}\n{body}"


def assert_whole(body: str) -> None:
    """Nothing cut inside a block: every fence closed, every <details> closed, and the
    closing lines outside any code block."""
    tokens = PARSER.parse(body)
    fences = [t for t in tokens if t.type == "fence"]
    assert all(t.info in ("diff", "mermaid") for t in fences), [t.info for t in fences]
    assert len(fences) == body.count("```diff") + body.count("```mermaid")
    for t in fences:  # a fence left open swallows the rest of the comment
        assert "</details>" not in t.content and "**Left out" not in t.content
    assert body.count("<details") == body.count("</details>")
    tables = [t for t in tokens if t.type == "table_open"]
    assert len(tables) == len(re.findall(r"^\|( ---:? \|)+$", body, re.M))  # each parsed


def test_a_200_node_cluster_with_3_sites_changed_fits_and_leads_with_the_change(
    tmp_path: Path,
) -> None:
    changed_cluster(tmp_path, nodes=200, sites=10, changed=3)
    code_, body = plan_output(tmp_path, "--base", "HEAD~1", "--format", "markdown")
    assert code_ == 0
    assert size(posted(body)) <= GITHUB_LIMIT
    assert "Left out" not in body  # 200 nodes fit whole
    change = body.index("#### What this pull request changes")
    assert change < body.index("#### The plan, by site") < body.index("<details>")
    # The change: the keepalive of the 60 nodes of the three sites, a row per group.
    section = body[change : body.index("#### The plan, by site")]
    assert "The desired state of 60 nodes" in section
    assert section.count('persistent-keepalive: "25" -> "10"') == 9  # 3 sites x 3 groups
    assert "| 15 nodes of pool `site-000/workers`<br>" in section
    assert "site-003" not in section
    assert_whole(body)


def test_a_plan_too_large_leaves_out_whole_sites_and_says_where_the_plan_is(
    tmp_path: Path,
) -> None:
    changed_cluster(tmp_path, nodes=1500, sites=60, changed=3)
    args = ["--base", "HEAD~1", "--format", "markdown"]
    artifact = "the artifact `topology-plan` of [this run](https://ci.example/run/1)"
    code_, body = plan_output(tmp_path, *args, "--full-plan", artifact, "--footer", "Planned.")
    assert code_ == 0
    assert GITHUB_LIMIT - 6 * 1024 < size(posted(body)) <= GITHUB_LIMIT  # filled, not over
    assert body.index("#### What this pull request changes") < body.index("<details>")
    left_out = re.search(r"\*\*Left out to fit in one comment\*\*: (.*)\n", body)
    assert left_out is not None and artifact in left_out.group(1)
    # Every site is shown (its table at least, its lines where there was room) or counted.
    shown = len(re.findall(r"^<details><summary><code>site-", body, re.M))
    cut = re.search(r"the details of (\d+) sites", left_out.group(1))
    assert shown + (int(cut.group(1)) if cut else 0) == 60
    short = re.search(r"the lines of each change in (\d+) sites \(tables only\)", body)
    assert short is not None and body.count("```diff") + int(short.group(1)) == shown
    assert body.rstrip().endswith("Planned.")
    assert_whole(body)


def test_the_markdown_of_a_small_plan_matches_its_golden(tmp_path: Path) -> None:
    head = load(*read_directory(SCENARIO / "sites")).topology
    for path in (SCENARIO / "sites").iterdir():
        text = path.read_text().replace("persistentKeepalive: 25", "persistentKeepalive: 20")
        (tmp_path / path.name).write_text(text)
    base = load(*read_directory(tmp_path)).topology
    assert head is not None and base is not None
    result = plan_once(head, SnapshotBackend(SCENARIO / "nodes.yaml", writable=False), base)
    graph = graphs.mermaid(mesh.from_plan(head, result.plan))
    body = comment(result.plan, result.deltas, graph=graph, footer="Planned against a snapshot.")
    assert f"```mermaid\n{graph}```" in body  # the diagram whole, GitHub renders it
    golden = GOLDEN / "fresh_cluster_all_set.md"
    if os.environ.get("TOPOCTL_UPDATE_GOLDEN"):  # then review the diff by eye
        golden.write_text(body)
    assert body == golden.read_text()
    assert_whole(body)


def test_without_a_base_the_section_is_left_out_and_with_one_it_always_says_something() -> None:
    plan = Plan(cluster="c", nodes=(), leaders=(), sites=("a",))
    assert "What this pull request changes" not in comment(plan)
    assert "Nothing in the desired state of any node." in comment(plan, ())
    assert "Nothing to do in 1 site: a." in comment(plan)


def test_a_limit_below_the_minimum_is_refused() -> None:
    plan = Plan(cluster="c", nodes=(), leaders=())
    try:
        comment(plan, limit=MIN_LIMIT - 1)
    except ValueError as err:
        assert str(MIN_LIMIT) in str(err)
    else:
        raise AssertionError("a limit below the minimum was accepted")


def test_code_spans_and_fences_hold_backticks_and_pipes() -> None:
    assert code("a|b") == "`a\\|b`"
    assert code("x `y` z") == "``x `y` z``"
    assert code("`edge") == "`` `edge ``"
    assert fence(["``` not the end"], "diff").startswith("````diff\n")
    tokens = PARSER.parse(f"| h |\n| --- |\n| {code('p|q `r`')} |\n")
    assert [t.type for t in tokens].count("td_open") == 1  # the pipe split no cell
    spans = [c for t in tokens for c in t.children or () if c.type == "code_inline"]
    assert [s.content for s in spans] == ["p|q `r`"]


# --- any plan fits -----------------------------------------------------------------

NASTY = st.text(alphabet=st.sampled_from("ab-.0123`|<>&*_#\n\\ é€😀"), min_size=1, max_size=40)
NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,30}", fullmatch=True)


@st.composite
def plans(draw: st.DrawFn) -> tuple[Plan, tuple[DesiredDelta, ...] | None]:
    sites = draw(st.lists(NAMES, min_size=1, max_size=30, unique=True))
    nodes = []
    pools: dict[str, str] = {}
    members: dict[str, str] = {}
    count = draw(st.integers(0, 200))
    keys = draw(st.lists(NASTY, min_size=1, max_size=12))
    values = draw(st.lists(st.one_of(st.none(), NASTY), min_size=1, max_size=6))
    for i in range(count):
        site = sites[i % len(sites)]
        name = f"{site}-n{i}"
        members[name] = site
        if draw(st.booleans()):
            pools[name] = draw(st.sampled_from(["workers", "gpu", "p|`x`"]))
        changes = tuple(
            Change(
                node=name,
                site=site,
                kind=draw(st.sampled_from(["annotation", "label", "taint"])),
                key=draw(st.sampled_from(keys)),
                action=draw(st.sampled_from(list(Action))),
                reason=draw(st.sampled_from([Reason.DECLARED, Reason.ADOPTED])),
                before=draw(st.sampled_from(values)),
                after=draw(st.sampled_from(values)),
            )
            for _ in range(draw(st.integers(0, 8)))
        )
        nodes.append(NodePlan(name, site, "uid", "1", changes))
    leaders = tuple(
        LeaderPrediction(s, draw(st.one_of(st.none(), NASTY)), draw(NASTY), None) for s in sites
    )
    plan = Plan(
        cluster=draw(NASTY),
        nodes=tuple(nodes),
        leaders=leaders,
        errors=tuple(draw(st.lists(NASTY.map(lambda t: t * 50), max_size=30))),
        warnings=tuple(draw(st.lists(NASTY.map(lambda t: t * 30), max_size=80))),
        sites=tuple(sites),
        members=members,
        pools=pools,
    )
    deltas = None
    if draw(st.booleans()):
        deltas = tuple(
            DesiredDelta(
                node=draw(st.sampled_from([*members, "gone"])) if members else "gone",
                kind="annotation",
                key=draw(st.sampled_from(keys)),
                base=draw(st.sampled_from(values)),
                head=draw(st.sampled_from(values)),
            )
            for _ in range(draw(st.integers(0, 100)))
        )
    return plan, deltas


# Shrinking these large examples takes minutes: the failing example is printed as it is.
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    plans(),
    st.one_of(st.none(), NASTY.map(lambda t: "flowchart LR\n" + t * 500)),
    st.integers(MIN_LIMIT, BUDGET),
    st.text("abc é😀", max_size=2000).map(lambda t: f"Planned against [{t}](https://x/)."),
)
def test_any_plan_renders_under_the_limit_cut_only_between_parts(
    case: tuple[Plan, tuple[DesiredDelta, ...] | None], graph: str | None, limit: int, footer: str
) -> None:
    plan, deltas = case
    body = comment(plan, deltas, graph=graph, limit=limit, footer=footer, full_plan=footer)
    assert size(body) <= limit
    assert size(posted(comment(plan, deltas, graph=graph))) <= GITHUB_LIMIT
    assert body.startswith("### topoctl plan: cluster ")
    assert "**Plan: " in body or "**No changes." in body
    assert body.count("<details") == body.count("</details>")
    tokens = PARSER.parse(body)
    for t in tokens:
        if t.type == "fence":
            assert t.info in ("diff", "mermaid")
            assert "</details>" not in t.content and "**Left out" not in t.content


SILENT = Path(__file__).resolve().parents[1] / "scenarios" / "kilo_silent_routes_stand"


def test_the_comment_says_when_it_judged_kilo_and_why_a_leader_is_unknown() -> None:
    """The head names the time Kilo's freshness was judged at and, for a site whose Kilo
    is silent, why its leader is unknown and which gateway stands; its row says so."""
    head = load(*read_directory(SILENT / "sites")).topology
    assert head is not None
    snapshot = SnapshotBackend(SILENT / "nodes.yaml", writable=False)
    assert snapshot.captured_at is not None
    now = Reference(snapshot.captured_at, TimeSource.CAPTURED)
    body = comment(plan_once(head, snapshot, now=now).plan)
    assert_whole(body)
    verdict, rest = body.split("\n\n> [!NOTE]\n", 1)
    assert verdict.endswith("<sub>now: 2026-11-26T09:01:35Z (the snapshot's capture time)</sub>")
    note = rest.split("\n\n", 1)[0].splitlines()
    assert note[0].startswith("> Site `rho`: leader unknown: Kilo is silent here")
    assert note[1:] == [
        "> - rho-gw-1: stale last-seen (95 s ago)",
        "> - rho-worker-1: stale last-seen (95 s ago)",
        "> - routes via the leader stand as last published: via 10.16.0.1 (rho-gw-1); "
        "nothing is withdrawn",
    ]
    (row,) = [line for line in body.splitlines() if line.startswith("| `rho` |")]
    assert row.endswith("| - | unknown |")


def test_leaders_unknown_in_many_sites_are_one_note_a_line_a_site() -> None:
    unknown = tuple(
        LeaderPrediction(f"s{i:02}", None, None, None, unknown=f"why {i}", not_ready=("x",))
        for i in range(12)
    )
    plan = Plan(cluster="c", nodes=(), leaders=unknown, sites=tuple(p.site for p in unknown))
    body = comment(plan)
    assert_whole(body)
    assert body.count("> [!NOTE]") == 1
    assert "> Kilo's leader is unknown in 12 sites: routes via the leader stand" in body
    assert "> - `s00`: why 0" in body and "> - `s09`: why 9" in body
    assert "`s10`: why" not in body and "> - … and 2 more sites" in body
