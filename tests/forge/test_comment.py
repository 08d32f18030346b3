"""``topoctl comment`` against an HTTP double of GitHub's and GitLab's comment APIs: one
comment, created once and then edited in place, found past the first page; refusals
reported with what to fix; nothing posted twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.core.rendering.comment import GITHUB_LIMIT, MARKER
from tests.forge.double import TOKEN, ForgeDouble, serving

TOPOCTL = Path(sys.executable).with_name("topoctl")
REPO, PR = "acme/topology", 7
PROJECT, MR = "42", 3


@pytest.fixture
def forge() -> Iterator[ForgeDouble]:
    with serving(page_size=2) as server:
        server.github[(REPO, PR)] = []
        server.gitlab[(PROJECT, MR)] = []
        yield server


def comment(forge: ForgeDouble, body: Path, *where: str, token: str = TOKEN):
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "TOPOCTL_GITLAB_TOKEN")}
    env.update({"GITHUB_TOKEN": token, "TOPOCTL_GITLAB_TOKEN": token})
    api = forge.url if where[0] == "--github" else f"{forge.url}/api/v4"
    return subprocess.run(
        [str(TOPOCTL), "comment", "--body-file", str(body), *where, "--api-url", api],
        capture_output=True, text=True, check=False, timeout=120, env=env,
    )  # fmt: skip


def ours(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in items if c["body"].startswith(MARKER)]


def test_github_one_comment_created_then_updated_past_the_first_page(
    forge: ForgeDouble, tmp_path: Path
) -> None:
    for i in range(5):  # three pages of people's comments before ours
        forge.comment(forge.github, (REPO, PR), f"LGTM {i} {MARKER}")  # quoting it: not ours
    plan = tmp_path / "plan.md"
    plan.write_text("### plan one\n")
    first = comment(forge, plan, "--github", f"{REPO}#{PR}")
    assert first.returncode == 0, first.stderr
    (created,) = ours(forge.github[(REPO, PR)])
    assert created["body"] == f"{MARKER}\n### plan one\n"
    assert f"created comment {created['id']} on {REPO}#{PR}" in first.stdout
    for i in range(3):  # more comments after ours
        forge.comment(forge.github, (REPO, PR), f"later {i}")
    plan.write_text(f"{MARKER}\n### plan two\n")  # a marker already there is not doubled
    forge.log.clear()
    second = comment(forge, plan, "--github", f"{REPO}#{PR}")
    assert second.returncode == 0, second.stderr
    assert ours(forge.github[(REPO, PR)]) == [{**created, "body": f"{MARKER}\n### plan two\n"}]
    assert len(forge.github[(REPO, PR)]) == 9
    # Five pages of two, then the one PATCH: never a second comment.
    assert [m for m, _ in forge.log] == ["GET"] * 5 + ["PATCH"]
    assert f"updated comment {created['id']}" in second.stdout


def test_gitlab_one_note_created_then_updated_past_the_first_page(
    forge: ForgeDouble, tmp_path: Path
) -> None:
    notes = forge.gitlab[(PROJECT, MR)]
    forge.comment(forge.gitlab, (PROJECT, MR), f"{MARKER} added 1 commit", system=True)
    for i in range(3):
        forge.comment(forge.gitlab, (PROJECT, MR), f"note {i}", system=False)
    plan = tmp_path / "plan.md"
    plan.write_text("### plan one\n")
    first = comment(forge, plan, "--gitlab", f"{PROJECT}!{MR}")
    assert first.returncode == 0, first.stderr
    (created,) = [n for n in ours(notes) if not n["system"]]
    assert f"created comment {created['id']} on {PROJECT}!{MR}" in first.stdout
    plan.write_text("### plan two\n")
    forge.log.clear()
    second = comment(forge, plan, "--gitlab", f"{PROJECT}!{MR}")
    assert second.returncode == 0, second.stderr
    assert [n["body"] for n in ours(notes) if not n["system"]] == [f"{MARKER}\n### plan two\n"]
    assert [m for m, _ in forge.log] == ["GET", "GET", "GET", "PUT"]  # 5 notes, pages of 2
    assert all("per_page=100" in path for m, path in forge.log if m == "GET")


def test_github_refusing_the_write_says_which_permission_is_missing(
    forge: ForgeDouble, tmp_path: Path
) -> None:
    forge.refuse_always["POST"] = 403
    plan = tmp_path / "plan.md"
    plan.write_text("plan")
    result = comment(forge, plan, "--github", f"{REPO}#{PR}")
    assert result.returncode == 1
    assert "403 Resource not accessible by integration" in result.stderr
    assert "permissions: pull-requests: write" in result.stderr
    assert forge.github[(REPO, PR)] == []


def test_gitlab_refusing_the_write_says_which_token_is_needed(
    forge: ForgeDouble, tmp_path: Path
) -> None:
    forge.refuse_always["POST"] = 403
    plan = tmp_path / "plan.md"
    plan.write_text("plan")
    result = comment(forge, plan, "--gitlab", f"{PROJECT}!{MR}")
    assert result.returncode == 1
    assert "the `api` scope" in result.stderr and "CI_JOB_TOKEN cannot" in result.stderr


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (("--github", f"{REPO}#99"), f"no pull request #99 in {REPO}"),
        (("--github", f"acme/other#{PR}"), f"no pull request #{PR} in acme/other"),
        (("--gitlab", f"{PROJECT}!99"), f"no merge request !99 in project {PROJECT}"),
    ],
)
def test_an_unknown_pull_request_is_a_clear_404(
    forge: ForgeDouble, tmp_path: Path, where: tuple[str, str], expected: str
) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("plan")
    result = comment(forge, plan, *where)
    assert result.returncode == 1 and "404" in result.stderr and expected in result.stderr
    assert not any(m in ("POST", "PATCH", "PUT") for m, _ in forge.log)


def test_a_bad_token_or_none_is_reported(forge: ForgeDouble, tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("plan")
    bad = comment(forge, plan, "--github", f"{REPO}#{PR}", token="wrong")
    assert bad.returncode == 1 and "401 Bad credentials" in bad.stderr
    assert "the token is not valid" in bad.stderr
    none = comment(forge, plan, "--gitlab", f"{PROJECT}!{MR}", token="")
    assert none.returncode == 2 and "no token: set TOPOCTL_GITLAB_TOKEN" in none.stderr
    assert forge.github[(REPO, PR)] == [] and forge.gitlab[(PROJECT, MR)] == []


def test_a_server_error_is_retried(forge: ForgeDouble, tmp_path: Path) -> None:
    forge.refuse["GET"] = [502]
    plan = tmp_path / "plan.md"
    plan.write_text("plan")
    result = comment(forge, plan, "--github", f"{REPO}#{PR}")
    assert result.returncode == 0, result.stderr
    assert [m for m, _ in forge.log] == ["GET", "GET", "POST"]


def test_a_body_over_the_limit_is_refused_before_anything_is_sent(
    forge: ForgeDouble, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("x" * GITHUB_LIMIT)
    result = comment(forge, plan, "--github", f"{REPO}#{PR}")
    assert result.returncode == 1
    assert "over the 65,536" in result.stderr and "topoctl plan --format markdown" in result.stderr
    assert forge.log == []


def test_usage_errors_name_the_form_expected(forge: ForgeDouble, tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("plan")
    assert "OWNER/NAME#NUMBER" in comment(forge, plan, "--github", "acme").stderr
    assert "PROJECT!IID" in comment(forge, plan, "--gitlab", "acme#3").stderr
