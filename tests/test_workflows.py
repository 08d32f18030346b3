"""The GitHub workflows and the action (action.yml): clean under actionlint and zizmor,
and doing what they should. tests/forge/test_action.py runs the action itself."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
CI, TOPOLOGY = WORKFLOWS / "ci.yml", WORKFLOWS / "topology.yml"
SNAPSHOT = WORKFLOWS / "snapshot.yml"
RELEASE = WORKFLOWS / "release.yml"
ALL = [CI, TOPOLOGY, SNAPSHOT, RELEASE]
ACTION = REPO / "action.yml"
BIN = Path(sys.executable).parent
ACTIONLINT, ZIZMOR = BIN / "actionlint", BIN / "zizmor"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")

needs_actionlint = pytest.mark.skipif(
    not ACTIONLINT.exists(), reason=f"actionlint is not installed next to {sys.executable}"
)
needs_zizmor = pytest.mark.skipif(
    not ZIZMOR.exists(), reason=f"zizmor is not installed next to {sys.executable}"
)


def run(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


def steps(workflow: Any, job: str | None = None) -> list[dict[str, Any]]:
    jobs = [workflow["jobs"][job]] if job else workflow["jobs"].values()
    return [step for j in jobs for step in j["steps"]]


def zizmor_findings(target: Path) -> list[dict[str, Any]]:
    result = run(ZIZMOR, "--offline", "--pedantic", "--no-config", "--format", "json", target)
    assert result.returncode in (0, 10, 11, 12, 13, 14), result.stderr  # 1x: findings
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


@needs_actionlint
def test_actionlint_is_clean() -> None:
    assert sorted(WORKFLOWS.glob("*.yml")) == sorted(ALL)
    result = run(ACTIONLINT, "-no-color", *ALL)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_zizmor
@pytest.mark.parametrize("target", [WORKFLOWS, ACTION], ids=["workflows", "action"])
def test_zizmor_is_clean_even_pedantic(target: Path) -> None:
    assert zizmor_findings(target) == []


@needs_actionlint
def test_actionlint_checks_the_local_action_s_inputs(tmp_path: Path) -> None:
    """topology.yml's `uses: ./` is checked against action.yml: a wrong input fails."""
    shutil.copy(ACTION, tmp_path / "action.yml")
    (tmp_path / ".git").mkdir()  # actionlint finds the repository's root, and ./, by it
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    text = TOPOLOGY.read_text(encoding="utf-8")
    (workflows / "topology.yml").write_text(text)
    assert run(ACTIONLINT, "-no-color", workflows / "topology.yml", cwd=tmp_path).returncode == 0
    (workflows / "topology.yml").write_text(text.replace("comment: ", "commment: "))
    result = run(ACTIONLINT, "-no-color", workflows / "topology.yml", cwd=tmp_path)
    assert result.returncode != 0 and 'input "commment" is not defined' in result.stdout


@needs_actionlint
@needs_zizmor
def test_the_linters_do_catch_a_careless_workflow(tmp_path: Path) -> None:
    careless = tmp_path / ".github" / "workflows" / "careless.yml"
    careless.parent.mkdir(parents=True)
    careless.write_text(
        "on: pull_request_target\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "        with: {ref: '${{ github.event.pull_request.head.sha }}'}\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
        "      - run: echo ${{ matrix.nope }}\n"
    )
    assert run(ACTIONLINT, "-no-color", careless, cwd=tmp_path).returncode != 0
    audits = {finding["ident"] for finding in zizmor_findings(careless)}
    assert {"unpinned-uses", "dangerous-triggers", "template-injection"} <= audits


def uses_of(path: Path) -> list[dict[str, Any]]:
    """The steps with ``uses`` of a workflow or of the composite action."""
    doc = load(path)
    found = doc["runs"]["steps"] if path == ACTION else steps(doc)
    return [step for step in found if "uses" in step]


@pytest.mark.parametrize("path", [*ALL, ACTION], ids=[p.stem for p in [*ALL, ACTION]])
def test_least_privilege_and_pinned_actions(path: Path) -> None:
    if path != ACTION:
        workflow = load(path)
        assert workflow["permissions"] == {"contents": "read"}
        assert "pull_request_target" not in workflow["on"]
    text = path.read_text(encoding="utf-8")
    for step in uses_of(path):
        if step["uses"] == "./":  # this repository's own action, at the commit under test
            continue
        assert PINNED.match(step["uses"]), f"{step['uses']} is not pinned to a commit SHA"
        assert re.search(rf"{re.escape(step['uses'])} # v\d+\.\d+\.\d+\n", text), (
            f"{step['uses']} has no version comment"
        )
        if step["uses"].startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_ci_runs_make_test_on_push_and_pull_request() -> None:
    workflow = load(CI)
    assert set(workflow["on"]) == {"push", "pull_request"}
    assert [step["run"] for step in steps(workflow) if "run" in step] == ["make test"]


def test_topology_check_runs_the_action_of_this_commit_with_a_read_only_token() -> None:
    workflow = load(TOPOLOGY)
    assert set(workflow["on"]) == {"pull_request"}
    assert {"sites/**", "cluster/**", "action.yml"} <= set(workflow["on"]["pull_request"]["paths"])
    job = workflow["jobs"]["validate"]
    assert "permissions" not in job  # the workflow's: contents read
    checkout, _python, action = job["steps"]
    assert checkout["with"]["fetch-depth"] == 0  # the base revision, for plan --base
    assert action["uses"] == "./"
    # Against the cluster when the secret is there (the action falls back to the
    # committed snapshot); the pull request's own code posts nothing.
    assert action["with"] == {
        "kubeconfig": "${{ secrets.TOPOCTL_KUBECONFIG }}",
        "comment": "false",
    }
    assert job["outputs"]["planned"] == "${{ steps.topoctl.outputs.planned }}"
    assert (REPO / "cluster" / "nodes.yaml").exists()


def test_the_action_validates_plans_and_uploads_with_inputs_only_in_env() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    names = [step["name"] for step in action["runs"]["steps"]]
    assert names == [
        "Install topoctl",
        "Validate",
        "Plan",
        "Upload the whole plan",
        "Post or update the plan comment",
        "Fail when the plan has errors",
    ]
    install = action["runs"]["steps"][0]["run"]
    assert '"$GITHUB_ACTION_PATH"' in install and "pip install ." not in install
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", "")  # inputs reach scripts through env only
    plan = action["runs"]["steps"][2]
    assert plan["env"]["KUBECONFIG_DATA"] == "${{ inputs.kubeconfig }}"
    assert 'rm -f "$RUNNER_TEMP/topoctl-kubeconfig"' in plan["run"]
    assert "--report" in plan["run"] and "--format markdown" in plan["run"]


def test_one_comment_job_installs_the_base_and_never_runs_for_forks() -> None:
    workflow = load(TOPOLOGY)
    job = workflow["jobs"]["comment"]
    assert job["needs"] == "validate"
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    checkout = job["steps"][0]
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    (post,) = [step for step in job["steps"] if "run" in step]
    assert "python3 -m pip install --quiet ." in post["run"]
    assert "topoctl comment --body-file" in post["run"]
    assert "${{" not in post["run"]
    assert post["env"]["GITHUB_TOKEN"] == "${{ github.token }}"
    assert not any("secrets." in str(step) for step in job["steps"])


def test_the_snapshot_refresh_is_scheduled_and_needs_the_secret() -> None:
    workflow = load(SNAPSHOT)
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "write", "pull-requests": "write"}
    read, publish = (step for step in job["steps"] if "run" in step)
    assert read["env"]["KUBECONFIG_DATA"] == "${{ secrets.TOPOCTL_KUBECONFIG }}"
    assert 'if [ -z "$KUBECONFIG_DATA" ]' in read["run"] and "topoctl snapshot" in read["run"]
    assert publish["if"] == "steps.snapshot.outputs.changed == 'true'"
    assert "gh pr create" in publish["run"]
    for step in job["steps"]:
        assert "${{" not in step.get("run", "")


def test_the_committed_snapshot_plans_the_example_sites() -> None:
    from click.testing import CliRunner

    from reconciler.cli import main

    args = ["plan", str(REPO / "sites"), "--cluster", str(REPO / "cluster" / "nodes.yaml")]
    result = CliRunner().invoke(main, [*args, "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("### topoctl plan")
