"""Post a pull request's topoctl plan as ONE comment, updated in place on every push.

    GITHUB_TOKEN=... python pr_comment.py --repo OWNER/NAME --pr N --body-file plan.md

The comment is found by a hidden marker line; it is edited (PATCH) when there, created
(POST) once when not. Bodies longer than GitHub's 65,536-character limit are cut, with a
note. Standard library only (urllib), so the workflow needs nothing installed for it and
the tests can aim it at a local fake of the REST API (--api-url).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.request
from pathlib import Path
from typing import Any

MARKER = "<!-- topoctl-plan -->"
LIMIT = 65_536  # GitHub's maximum comment body, in characters
NOTE = (
    "\n\n---\n**The plan is cut here**: it is longer than a comment may be. "
    "The job summary of this check run has it whole.\n"
)
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


def comment_body(markdown: str) -> str:
    """The marker, then the plan, cut to GitHub's limit with a note when too long."""
    body = f"{MARKER}\n{markdown}"
    if len(body) <= LIMIT:
        return body
    return body[: LIMIT - len(NOTE)] + NOTE


class GitHub:
    """The three REST calls this needs, over urllib."""

    def __init__(self, api_url: str, token: str) -> None:
        self.api_url, self.token = api_url.rstrip("/"), token

    def call(self, method: str, url: str, payload: Any = None) -> tuple[Any, str]:
        """One request; the decoded JSON answer and its Link header."""
        if not url.startswith(("http://", "https://")):
            url = self.api_url + url
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null"), response.headers.get("Link", "")

    def comments(self, repo: str, pr: int) -> list[dict[str, Any]]:
        """Every comment of the pull request, following the pagination links."""
        found: list[dict[str, Any]] = []
        url: str | None = f"/repos/{repo}/issues/{pr}/comments?per_page=100"
        while url:
            page, link = self.call("GET", url)
            found += page
            match = _NEXT.search(link)
            url = match.group(1) if match else None
        return found


def upsert(github: GitHub, repo: str, pr: int, markdown: str) -> tuple[str, int]:
    """Create or update the plan comment: ("created" | "updated", its id)."""
    body = comment_body(markdown)
    ours = [c for c in github.comments(repo, pr) if MARKER in (c.get("body") or "")]
    if ours:
        comment_id = int(ours[0]["id"])
        github.call("PATCH", f"/repos/{repo}/issues/comments/{comment_id}", {"body": body})
        return "updated", comment_id
    created, _ = github.call("POST", f"/repos/{repo}/issues/{pr}/comments", {"body": body})
    return "created", int(created["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True, help="OWNER/NAME")
    parser.add_argument("--pr", required=True, type=int, help="pull request number")
    parser.add_argument("--body-file", required=True, type=Path, help="the markdown plan")
    parser.add_argument(
        "--api-url", default=os.environ.get("GITHUB_API_URL", "https://api.github.com")
    )
    args = parser.parse_args(argv)
    token = os.environ.get("GITHUB_TOKEN", "")
    if not token:
        print("pr_comment: GITHUB_TOKEN is not set", file=sys.stderr)
        return 1
    markdown = args.body_file.read_text(encoding="utf-8")
    action, comment_id = upsert(GitHub(args.api_url, token), args.repo, args.pr, markdown)
    print(f"pr_comment: {action} comment {comment_id} on {args.repo}#{args.pr}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
