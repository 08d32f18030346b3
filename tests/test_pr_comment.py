""".github/scripts/pr_comment.py against a local fake of GitHub's REST API (127.0.0.1):
one comment is created, then updated in place, never duplicated."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / ".github" / "scripts" / "pr_comment.py"
_spec = importlib.util.spec_from_file_location("pr_comment", SCRIPT)
assert _spec and _spec.loader
pr_comment = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pr_comment)

REPO, PR, TOKEN = "acme/topology", 7, "t0ken"


class FakeGitHub(ThreadingHTTPServer):
    """Issue comments of one repository, paginated as GitHub does (Link: rel="next")."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.log: list[tuple[str, str]] = []
        self.next_id = 1000

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, pr: int, body: str, user: str = "someone") -> dict[str, Any]:
        self.next_id += 1
        comment = {"id": self.next_id, "body": body, "user": {"login": user}}
        self.comments.setdefault(pr, []).append(comment)
        return comment


class Handler(BaseHTTPRequestHandler):
    server: FakeGitHub

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, payload: Any, link: str = "") -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if link:
            self.send_header("Link", link)
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[list[str], dict[str, list[str]]] | None:
        self.server.log.append((self.command, self.path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(401, {"message": "Bad credentials"})
            return None
        url = urlsplit(self.path)
        return url.path.strip("/").split("/"), parse_qs(url.query)

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        return body

    def do_GET(self) -> None:
        route = self._route()
        if route is None:
            return
        parts, query = route
        assert "/".join(parts) == f"repos/{REPO}/issues/{PR}/comments", parts
        per_page, page = int(query["per_page"][0]), int(query.get("page", ["1"])[0])
        everything = self.server.comments.get(PR, [])
        chunk = everything[(page - 1) * per_page : page * per_page]
        link = ""
        if page * per_page < len(everything):
            following = (
                f"{self.server.url}{url_path(self.path)}?per_page={per_page}&page={page + 1}"
            )
            link = f'<{following}>; rel="next"'
        self._answer(200, chunk, link)

    def do_POST(self) -> None:
        route = self._route()
        if route is None:
            return
        parts, _ = route
        assert parts[:4] == ["repos", *REPO.split("/"), "issues"] and parts[5] == "comments"
        comment = self.server.add(int(parts[4]), self._body()["body"], user="github-actions[bot]")
        self._answer(201, comment)

    def do_PATCH(self) -> None:
        route = self._route()
        if route is None:
            return
        parts, _ = route
        assert parts[:5] == ["repos", *REPO.split("/"), "issues", "comments"], parts
        wanted = int(parts[5])
        for comment in (c for cs in self.server.comments.values() for c in cs):
            if comment["id"] == wanted:
                comment["body"] = self._body()["body"]
                return self._answer(200, comment)
        self._answer(404, {"message": "Not Found"})


def url_path(path: str) -> str:
    return urlsplit(path).path


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    server = FakeGitHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def post(github: FakeGitHub, plan: Path, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    """The script as the workflow runs it."""
    env = {**os.environ, "GITHUB_TOKEN": token}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--repo", REPO, "--pr", str(PR), "--body-file", str(plan),
         "--api-url", github.url],
        capture_output=True, text=True, check=False, timeout=60, env=env,
    )  # fmt: skip


def ours(github: FakeGitHub) -> list[dict[str, Any]]:
    return [c for c in github.comments.get(PR, []) if pr_comment.MARKER in c["body"]]


def test_one_comment_created_then_updated_in_place(github: FakeGitHub, tmp_path: Path) -> None:
    github.add(PR, "LGTM")
    plan = tmp_path / "plan.md"
    plan.write_text("## Plan\n1 node changes\n")
    first = post(github, plan)
    assert first.returncode == 0, first.stderr
    assert "created comment" in first.stdout
    (created,) = ours(github)
    assert created["body"] == f"{pr_comment.MARKER}\n## Plan\n1 node changes\n"

    plan.write_text("## Plan\nnothing to do\n")
    second = post(github, plan)
    assert second.returncode == 0, second.stderr
    assert f"updated comment {created['id']}" in second.stdout
    assert ours(github) == [{**created, "body": f"{pr_comment.MARKER}\n## Plan\nnothing to do\n"}]
    assert len(github.comments[PR]) == 2  # the person's comment, and ours
    assert [m for m, _ in github.log] == ["GET", "POST", "GET", "PATCH"]


def test_the_comment_is_found_past_the_first_page(github: FakeGitHub, tmp_path: Path) -> None:
    for i in range(150):
        github.add(PR, f"comment {i}")
    mine = github.add(PR, f"{pr_comment.MARKER}\nold plan")
    plan = tmp_path / "plan.md"
    plan.write_text("new plan")
    result = post(github, plan)
    assert result.returncode == 0, result.stderr
    assert [c["id"] for c in ours(github)] == [mine["id"]]
    assert mine["body"].endswith("new plan")
    assert [m for m, _ in github.log] == ["GET", "GET", "PATCH"]


def test_a_plan_too_long_for_a_comment_is_cut_with_a_note(
    github: FakeGitHub, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("x" * 100_000)
    assert post(github, plan).returncode == 0
    (comment,) = ours(github)
    assert len(comment["body"]) == pr_comment.LIMIT
    assert comment["body"].endswith(pr_comment.NOTE)
    short = pr_comment.comment_body("y" * (pr_comment.LIMIT - len(pr_comment.MARKER) - 1))
    assert len(short) == pr_comment.LIMIT and "cut" not in short


def test_bad_credentials_fail_and_write_nothing(github: FakeGitHub, tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_text("plan")
    result = post(github, plan, token="wrong")
    assert result.returncode != 0 and "401" in result.stderr
    assert github.comments == {}
    assert post(github, plan, token="").returncode == 1
