"""The action (action.yml) and the GitLab template run as a topology repository of one's
own runs them: in a temporary git repository holding only sites/ and a node snapshot,
not topoctl's, against the HTTP double of the forges' comment APIs.

A small runner plays GitHub's part for the composite action: it runs each ``run`` step
with ``bash -eo pipefail`` and the step's ``env`` (inputs substituted), the runner's
files (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY) and variables, stops at the first failing
step, and notes the ``uses`` steps (the artifact upload) instead of running them. The
install step is the one it does not run: the test's own topoctl stands in for the venv
it makes (the wheel and sdist are built and inspected in tests/test_packaging.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.core.rendering.comment import MARKER
from tests.forge.double import TOKEN, ForgeDouble, serving
from tests.rendering.support import GIT_ENV, git

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
GITLAB = ROOT / "ci" / "gitlab" / "topoctl.gitlab-ci.yml"
VENV = Path(sys.executable).parent.parent
REPO, PR = "acme/topology", 12
INPUT = re.compile(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}")


def load(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))


@pytest.fixture
def forge():
    with serving(page_size=3) as server:
        server.github[(REPO, PR)] = []
        server.gitlab[("42", 3)] = []
        yield server


def topology_repo(path: Path) -> str:
    """A repository of one's own: sites/ and cluster/nodes.yaml, one commit; its sha."""
    shutil.copytree(ROOT / "sites", path / "sites")
    (path / "cluster").mkdir()
    shutil.copy(ROOT / "cluster" / "nodes.yaml", path / "cluster" / "nodes.yaml")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "commit", "-qm", "the topology")
    return git(path, "rev-parse", "HEAD").strip()


def push(path: Path, old: str, new: str, message: str) -> str:
    """A commit of the pull request that replaces ``old`` with ``new`` in hetzner.yaml."""
    site = path / "sites" / "hetzner.yaml"
    text = site.read_text()
    assert old in text
    site.write_text(text.replace(old, new, 1))
    git(path, "commit", "-qam", message)
    return git(path, "rev-parse", "HEAD").strip()


@dataclass
class Run:
    """What a run of the action left: its steps' exit codes, output and files."""

    codes: list[tuple[str, int]] = field(default_factory=list)
    stdout: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    temp: Path = Path()

    @property
    def ok(self) -> bool:
        return all(code == 0 for _, code in self.codes)


def run_action(repo: Path, temp: Path, forge: ForgeDouble, sha: str, **inputs: str) -> Run:
    action = load(ACTION)
    values = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    values["github-token"] = TOKEN  # what ${{ github.token }} gives the job
    values.update(inputs)
    temp.mkdir(parents=True, exist_ok=True)
    venv = temp / "topoctl-venv"
    if not venv.exists():
        venv.symlink_to(VENV)  # what the install step makes
    files = {name: temp / name for name in ("output", "summary")}
    for path in files.values():
        path.write_text("")
    env = {
        **GIT_ENV,
        "HOME": str(temp),
        "RUNNER_TEMP": str(temp),
        "GITHUB_OUTPUT": str(files["output"]),
        "GITHUB_STEP_SUMMARY": str(files["summary"]),
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_API_URL": forge.url,
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_RUN_ID": "4711",
        "GITHUB_SHA": sha,
        "NO_COLOR": "1",
    }
    run = Run(temp=temp)
    for step in action["runs"]["steps"]:
        if "uses" in step:
            with_ = {k: INPUT.sub(lambda m: values[m.group(1)], str(v))
                     for k, v in step.get("with", {}).items()}  # fmt: skip
            run.uploads.append({"uses": step["uses"], **with_})
            continue
        if step["name"] == "Install topoctl":
            continue
        if "if" in step and values["comment"] != "true":
            continue  # the comment step's condition (a same-repository pull request here)
        step_env = {k: INPUT.sub(lambda m: values[m.group(1)], str(v))
                    for k, v in step.get("env", {}).items()}  # fmt: skip
        step_env = {k: v.replace("${{ github.event.pull_request.number }}", str(PR))
                    for k, v in step_env.items()}  # fmt: skip
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=repo, env={**env, **step_env}, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        run.stdout += result.stdout + result.stderr
        run.codes.append((step["name"], result.returncode))
        if result.returncode != 0:
            break
    for line in files["output"].read_text().splitlines():
        name, _, value = line.partition("=")
        run.outputs[name] = value
    return run


def test_the_action_posts_one_comment_and_updates_it_on_every_push(
    tmp_path: Path, forge: ForgeDouble
) -> None:
    repo = tmp_path / "topology"
    base = topology_repo(repo)
    head = push(repo, "persistentKeepalive: 25", "persistentKeepalive: 15", "keepalive 15")
    first = run_action(repo, tmp_path / "run1", forge, head, base=base)
    assert first.ok, first.stdout
    assert first.outputs == {"has-changes": "true", "planned": "true"}
    (comment,) = forge.github[(REPO, PR)]
    body = comment["body"]
    assert body.startswith(f"{MARKER}\n### topoctl plan: cluster ")
    change = body.index("#### What this pull request changes")
    assert change < body.index("#### The plan, by site")
    assert '`annotation kilo.squat.ai/persistent-keepalive: "25" -> "15"`' in body
    assert f"<sub>Planned against the snapshot `cluster/nodes.yaml` at {head}.</sub>" in body
    # The whole plan is uploaded, and the summary has the comment.
    (upload,) = first.uploads
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["name"] == "topology-plan"
    written = sorted(p.name for p in (first.temp / "topoctl-plan").iterdir())
    assert written == ["comment.md", "plan.json", "plan.md", "plan.txt", "status"]
    assert '"desired_changes": [' in (first.temp / "topoctl-plan" / "plan.json").read_text()
    assert (first.temp / "summary").read_text() == body.removeprefix(f"{MARKER}\n")

    forge.comment(forge.github, (REPO, PR), "a reviewer's note")
    again = push(repo, "persistentKeepalive: 15", "persistentKeepalive: 20", "keepalive 20")
    second = run_action(repo, tmp_path / "run2", forge, again, base=base)
    assert second.ok, second.stdout
    mine = [c for c in forge.github[(REPO, PR)] if c["body"].startswith(MARKER)]
    assert [c["id"] for c in mine] == [comment["id"]]  # the same comment, edited
    assert '"25" -> "20"' in mine[0]["body"] and '"25" -> "15"' not in mine[0]["body"]
    assert len(forge.github[(REPO, PR)]) == 2


def test_an_invalid_value_is_annotated_on_its_line_and_nothing_is_posted(
    tmp_path: Path, forge: ForgeDouble
) -> None:
    repo = tmp_path / "topology"
    base = topology_repo(repo)
    head = push(repo, "persistentKeepalive: 25", "persistentKeepalive: 20s", "oops")
    run = run_action(repo, tmp_path / "run", forge, head, base=base)
    assert run.codes == [("Validate", 1)]
    line = next(
        n
        for n, text in enumerate((repo / "sites" / "hetzner.yaml").read_text().splitlines(), 1)
        if "persistentKeepalive: 20s" in text
    )
    assert re.search(rf"^::error file=sites/hetzner\.yaml,line={line},col=\d+", run.stdout, re.M)
    assert forge.github[(REPO, PR)] == []


def test_without_a_snapshot_or_kubeconfig_the_plan_says_what_to_give(
    tmp_path: Path, forge: ForgeDouble
) -> None:
    repo = tmp_path / "topology"
    base = topology_repo(repo)
    run = run_action(repo, tmp_path / "run", forge, base, base=base, snapshot="missing.yaml")
    assert run.codes[-1] == ("Plan", 1)
    assert "::error::no kubeconfig input and no snapshot at missing.yaml" in run.stdout


def test_comment_false_uploads_and_summarises_only(tmp_path: Path, forge: ForgeDouble) -> None:
    repo = tmp_path / "topology"
    base = topology_repo(repo)
    run = run_action(repo, tmp_path / "run", forge, base, base=base, comment="false")
    assert run.ok, run.stdout
    assert forge.log == [] and forge.github[(REPO, PR)] == []
    assert (run.temp / "summary").read_text().startswith("### topoctl plan")


def test_the_comment_step_runs_only_for_a_same_repository_pull_request() -> None:
    (step,) = [s for s in load(ACTION)["runs"]["steps"] if 'topoctl" comment' in s.get("run", "")]
    condition = " ".join(step["if"].split())
    assert "inputs.comment == 'true'" in condition
    assert "github.event.pull_request.head.repo.full_name == github.repository" in condition
    assert step["env"]["GITHUB_TOKEN"] == "${{ inputs.github-token }}"


def test_the_gitlab_template_posts_one_note_and_updates_it(
    tmp_path: Path, forge: ForgeDouble
) -> None:
    template = load(GITLAB)
    job = template["topoctl-plan"]
    assert job["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert job["artifacts"]["paths"] == ["topoctl-plan/"] and job["artifacts"]["when"] == "always"
    repo = tmp_path / "topology"
    base = topology_repo(repo)

    def pipeline(sha: str) -> subprocess.CompletedProcess[str]:
        env = {
            **GIT_ENV,
            **{k: str(v) for k, v in template["variables"].items()},
            "HOME": str(tmp_path),
            "PATH": f"{VENV / 'bin'}:{GIT_ENV['PATH']}",  # what before_script installs
            "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
            "CI_COMMIT_SHA": sha,
            "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_IID": "3",
            "CI_API_V4_URL": f"{forge.url}/api/v4",
            "CI_JOB_ID": "99",
            "CI_JOB_URL": "https://gitlab.example/acme/topology/-/jobs/99",
            "TOPOCTL_GITLAB_TOKEN": TOKEN,
            "NO_COLOR": "1",
        }
        script = "\n".join(job["script"])
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    head = push(repo, "persistentKeepalive: 25", "persistentKeepalive: 15", "keepalive 15")
    first = pipeline(head)
    assert first.returncode == 0, first.stdout + first.stderr
    (note,) = forge.gitlab[("42", 3)]
    assert note["body"].startswith(MARKER) and '"25" -> "15"' in note["body"]
    assert "[job 99](https://gitlab.example/acme/topology/-/jobs/99)" not in note["body"]  # fits
    assert (repo / "topoctl-plan" / "plan.json").is_file()
    again = push(repo, "persistentKeepalive: 15", "persistentKeepalive: 20", "keepalive 20")
    second = pipeline(again)
    assert second.returncode == 0, second.stdout + second.stderr
    (note,) = forge.gitlab[("42", 3)]
    assert '"25" -> "20"' in note["body"]
    assert [m for m, _ in forge.log].count("POST") == 1


def test_the_gitlab_template_refuses_to_run_without_a_pinned_package() -> None:
    job = load(GITLAB)["topoctl-plan"]
    check = job["before_script"][0]
    result = subprocess.run(
        ["bash", "-c", check], env={"TOPOCTL_PACKAGE": "", "PATH": os.environ["PATH"]},
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1 and "set TOPOCTL_PACKAGE" in result.stdout
