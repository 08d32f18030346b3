"""``topoctl graph`` and ``status --graph``: goldens, and every diagram checked by real
parsers: Mermaid's own (mermaid.parse under Node.js with jsdom, tests/mermaid/) and,
for DOT, pydot and Graphviz's ``dot -Tsvg``. Each check is skipped, saying why, where
its tool is missing (`make tools` installs the npm packages; .ci/run installs
Graphviz)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pydot
import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.core.rendering import graphs, mesh
from reconciler.usecases.statusmap import DOC_KEY, STATUS_NAME
from tests.apiserver.server import ApiServer
from tests.controller.loop_support import seed_examples
from tests.rendering.support import changed_cluster

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "graph"
MERMAID = ROOT / "tests" / "mermaid"
SCENARIOS = ROOT / "tests" / "scenarios"
NODE = shutil.which("node")
DOT = shutil.which("dot")

needs_mermaid = pytest.mark.skipif(
    NODE is None or not (MERMAID / "node_modules" / "mermaid").is_dir(),
    reason="Mermaid's parser is not installed: needs node and `make tools` (npm ci in "
    "tests/mermaid)",
)
needs_graphviz = pytest.mark.skipif(
    DOT is None, reason="Graphviz's dot is not installed (.ci/run installs it with apt)"
)


def graph(*args: str) -> str:
    result = CliRunner(env={"NO_COLOR": "1"}).invoke(main, ["graph", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def example(fmt: str) -> str:
    return graph(str(ROOT / "sites"), "--cluster", str(ROOT / "examples" / "nodes.yaml"),
                 "--format", fmt)  # fmt: skip


def scenario(name: str, fmt: str) -> str:
    case = SCENARIOS / name
    return graph(str(case / "sites"), "--cluster", str(case / "nodes.yaml"), "--format", fmt)


CASES = {
    "example": example,
    "granularity_full": lambda fmt: scenario("granularity_full_every_node_leads", fmt),
    "granularity_cross": lambda fmt: scenario("granularity_cross_every_node_leads", fmt),
    "leader_change": lambda fmt: scenario("leader_change_is_loud", fmt),
}


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_graphs_match_their_goldens(name: str, fmt: str) -> None:
    text = CASES[name](fmt)
    golden = GOLDEN / f"{name}.{'mmd' if fmt == 'mermaid' else 'dot'}"
    if os.environ.get("TOPOCTL_UPDATE_GOLDEN"):  # then review the diff by eye
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()


def test_the_example_shows_leaders_tunnels_ips_and_the_leader_changes_in_red() -> None:
    text = example("mermaid")
    assert 'subgraph s_hetzner_fsn1_4da74b["hetzner-fsn1 · 10.10.0.0/16 · leader ' in text
    assert '(["fsn1-gw-1 (leader)"])' in text  # the leader: a stadium, thick border
    leaders = ("n_azure_weu_weu_gw_1_", "n_hetzner_fsn1_fsn1_gw_1_", "n_onprem_ams1_ams1_gw_1_")
    tunnels = [line for line in text.splitlines() if "<-->" in line]
    assert len(tunnels) == 3  # location granularity: leader to leader, each pair once
    assert all(sum(leader in t for leader in leaders) == 2 for t in tunnels)
    (red,) = [line for line in text.splitlines() if line.endswith(" leaderchange")]
    assert "fsn1_worker_7kq2p" in red and "weu_gpu_000001" in red  # who stops leading too
    dot = example("dot")
    assert 'label="fsn1-gw-1 (leader)", penwidth=3, color=red' in dot


def test_a_large_pool_is_a_count_and_many_leaders_meet_at_a_hub(tmp_path: Path) -> None:
    changed_cluster(tmp_path, nodes=400, sites=10, changed=0)
    text = graph(str(tmp_path / "sites"), "--cluster", str(tmp_path / "nodes.json"))
    assert '["pool workers: 31 nodes, 31 to change"]' in text
    assert "site-000-worker-11" not in text  # collapsed
    assert '(("full mesh: 10 endpoints, 45 WireGuard tunnels"))' in text
    assert text.count("<-->") == 10  # one line per leader to the hub
    assert len(text) < 16 * 1024


def test_status_graph_draws_the_live_mesh_and_graph_names_the_live_leader(
    apiserver: ApiServer, kubeconfig_path: Path
) -> None:
    seed_examples(apiserver, last_seen=int(time.time()))  # Kilo checked in just now
    sites = {
        "hetzner-fsn1": {"members": {"count": 3, "items": []},
                         "leader": {"current": "fsn1-gw-1", "predicted": "fsn1-gw-1"}},
        "azure-weu": {"members": {"count": 2, "items": []},
                      "leader": {"current": "weu-gw-1", "predicted": "weu-gw-1"}},
    }  # fmt: skip
    apiserver.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "topoctl"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": STATUS_NAME, "namespace": "topoctl"},
            "data": {DOC_KEY: json.dumps({"formatVersion": 1, "sites": sites})},
        },
    )
    where = ["--kubeconfig", str(kubeconfig_path), "--lease-namespace", "topoctl"]
    live = CliRunner().invoke(main, ["status", *where, "--graph"])
    assert live.exit_code == 0, live.output
    assert '(["fsn1-gw-1 (leader)"])' in live.stdout and '["2 other members"]' in live.stdout
    planned = graph(str(ROOT / "sites"), *where)
    # Kilo's leader now (from the nodes) is fsn1-worker-7kq2p; the controller saw gw-1.
    assert "hetzner-fsn1 · 10.10.0.0/16 · leader fsn1-worker-7kq2p → fsn1-gw-1 · live leader " \
        "fsn1-gw-1" in planned  # fmt: skip
    as_dot = CliRunner().invoke(main, ["status", *where, "--graph", "dot"])
    assert as_dot.exit_code == 0 and as_dot.stdout.startswith('graph "mesh live" {')


def all_diagrams(tmp_path: Path) -> dict[str, str]:
    """Every golden, and the graphs of hostile names, by file name."""
    out = {p.name: p.read_text() for p in sorted(GOLDEN.iterdir())}
    box = mesh.Box('we"ird # <name> \\ ; -- end', 'we"ird # <name> \\ ; -- end', leader=True)
    loc = mesh.Location('s"ite <1> # end', (box,), ("10.0.0.0/8",), leader=box.key)
    odd = mesh.Picture('c"l', "location", (loc,), (), hub='h"ub ((x))', hub_ends=(box.key,))
    out["hostile.mmd"], out["hostile.dot"] = graphs.mermaid(odd), graphs.dot(odd)
    for name, text in out.items():
        (tmp_path / name).write_text(text)
    return out


@needs_mermaid
def test_every_mermaid_diagram_parses_with_mermaid_itself(tmp_path: Path) -> None:
    files = [tmp_path / n for n in all_diagrams(tmp_path) if n.endswith(".mmd")]
    assert NODE is not None
    result = subprocess.run(
        [NODE, str(MERMAID / "parse.mjs"), *map(str, files)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    verdicts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [v for v in verdicts if not v["ok"]] == []
    assert {v["type"] for v in verdicts} == {"flowchart-v2"} and len(verdicts) == len(files)
    # And the checker does fail on a broken diagram.
    (tmp_path / "broken.mmd").write_text("flowchart LR\n  a[x --> b\n  linkStyle 9 stroke:red\n")
    broken = subprocess.run([NODE, str(MERMAID / "parse.mjs"), str(tmp_path / "broken.mmd")],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert broken.returncode == 1 and '"ok":false' in broken.stdout


def test_every_dot_graph_parses_with_pydot(tmp_path: Path) -> None:
    for name, text in all_diagrams(tmp_path).items():
        if name.endswith(".dot"):
            parsed = pydot.graph_from_dot_data(text)
            assert parsed is not None and len(parsed) == 1, name
            assert parsed[0].get_subgraph_list(), name
    assert pydot.graph_from_dot_data('graph { a -- "b }') is None  # it does refuse


@needs_graphviz
def test_every_dot_graph_renders_with_graphviz(tmp_path: Path) -> None:
    assert DOT is not None
    for name, text in all_diagrams(tmp_path).items():
        if name.endswith(".dot"):
            result = subprocess.run([DOT, "-Tsvg"], input=text, capture_output=True, text=True,
                                    timeout=60, check=False)  # fmt: skip
            assert result.returncode == 0 and result.stderr == "", (name, result.stderr)
            assert "<svg" in result.stdout
    bad = subprocess.run([DOT, "-Tsvg"], input="graph { a -- }", capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert bad.returncode != 0
