"""Pull-request comments on GitHub and merge-request notes on GitLab, and commit statuses
on both, over their REST APIs.

Standard library HTTP (urllib): four calls each (list every page, create, update, post a
status) need no client library, and the same code runs wherever topoctl is installed. Transient
failures (5xx, 429, a reset connection) are retried with capped, jittered backoff
(tenacity); a refusal (401, 403, 404) is a :class:`ForgeError` that says what to fix.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from reconciler.ports import ForgeError

TIMEOUT = 30.0  # seconds for one request
DESCRIPTION_LIMIT = 140  # characters GitHub keeps of a status's description
GITLAB_STATES = {"pending": "pending", "success": "success", "failure": "failed"}
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class _TransientError(Exception):
    """Worth another try: a 5xx, a 429, a connection that failed."""


class _Http:
    """JSON over HTTP with the forge's headers; refusals turned into clear errors."""

    def __init__(self, api_url: str, headers: dict[str, str], hints: dict[int, str]) -> None:
        self.api_url = api_url.rstrip("/")
        self.headers = headers
        self.hints = hints

    def call(self, method: str, path: str, payload: Any = None) -> tuple[Any, dict[str, str]]:
        """The decoded answer and its headers; retried while the failure is transient."""
        try:
            return self._retried(method, path, payload)
        except _TransientError as err:
            raise ForgeError(f"{method} {self._url(path)}: {err} (after retries)") from None

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.api_url + path

    @retry(
        retry=retry_if_exception_type(_TransientError),
        stop=stop_after_attempt(4),
        wait=wait_exponential_jitter(initial=1, max=10),
        reraise=True,
    )
    def _retried(self, method: str, path: str, payload: Any) -> tuple[Any, dict[str, str]]:
        url = self._url(path)
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(url, data=data, method=method)
        for name, value in self.headers.items():
            request.add_header(name, value)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                body = response.read()
                return json.loads(body or b"null"), dict(response.headers.items())
        except urllib.error.HTTPError as err:
            status, message = err.code, _message(err)
            if status >= 500 or status == 429:
                raise _TransientError(f"{status} {message}") from None
            hint = self.hints.get(status, "")
            raise ForgeError(
                f"{method} {url}: {status} {message}" + (f": {hint}" if hint else "")
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            raise _TransientError(str(getattr(err, "reason", err))) from None
        except ValueError as err:  # an answer that is not JSON
            raise ForgeError(f"{method} {url}: the answer is not JSON ({err})") from None


def _message(err: urllib.error.HTTPError) -> str:
    """The forge's own word for a refusal (``message``), else the HTTP reason."""
    try:
        text = err.read().decode("utf-8", "replace")
        found = json.loads(text).get("message")
        return str(found) if found else str(err.reason)
    except (ValueError, AttributeError, OSError):
        return str(err.reason)


def _github_headers(token: str) -> dict[str, str]:
    """What GitHub's REST API asks of every request."""
    return {
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {token}",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "topoctl",
    }


def _gitlab_headers(token: str) -> dict[str, str]:
    """What GitLab's REST API asks of every request."""
    return {"PRIVATE-TOKEN": token, "User-Agent": "topoctl"}


class GitHubThread:
    """The issue comments of one pull request."""

    def __init__(self, api_url: str, token: str, repo: str, number: int) -> None:
        self.repo, self.number = repo, number
        self.http = _Http(
            api_url,
            _github_headers(token),
            {
                401: "the token is not valid (GITHUB_TOKEN, or the action's github-token input)",
                403: "the token may not write pull-request comments: give the job "
                "`permissions: pull-requests: write` (a fork's pull request only gets a "
                "read-only token; its plan is in the job summary)",
                404: f"no pull request #{number} in {repo} that this token can see "
                "(check the repository and number, and that the token may read it)",
            },
        )

    def describe(self) -> str:
        return f"{self.repo}#{self.number}"

    def comments(self) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        url: str | None = f"/repos/{self.repo}/issues/{self.number}/comments?per_page=100"
        while url:
            page, headers = self.http.call("GET", url)
            found += [(int(c["id"]), c.get("body") or "") for c in page]
            match = _NEXT.search(_header(headers, "Link"))
            url = match.group(1) if match else None
        return found

    def create(self, body: str) -> int:
        made, _ = self.http.call(
            "POST", f"/repos/{self.repo}/issues/{self.number}/comments", {"body": body}
        )
        return int(made["id"])

    def update(self, comment_id: int, body: str) -> None:
        self.http.call("PATCH", f"/repos/{self.repo}/issues/comments/{comment_id}", {"body": body})


class GitLabThread:
    """The notes of one merge request (system notes left out)."""

    def __init__(self, api_url: str, token: str, project: str, iid: int) -> None:
        self.project, self.iid = project, iid
        quoted = urllib.parse.quote(project, safe="")
        self.base = f"/projects/{quoted}/merge_requests/{iid}/notes"
        self.http = _Http(
            api_url,
            _gitlab_headers(token),
            {
                401: "the token is not valid (expired or revoked?): set TOPOCTL_GITLAB_TOKEN",
                403: "the token may not write notes on this merge request: use a project or "
                "group access token with the `api` scope and at least the Reporter role, "
                "in a masked CI/CD variable TOPOCTL_GITLAB_TOKEN (CI_JOB_TOKEN cannot "
                "write notes)",
                404: f"no merge request !{iid} in project {project} that this token can "
                "see (check the project and that the token's role reaches it)",
            },
        )

    def describe(self) -> str:
        return f"{self.project}!{self.iid}"

    def comments(self) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        page: str | None = "1"
        while page:
            notes, headers = self.http.call(
                "GET", f"{self.base}?per_page=100&sort=asc&order_by=created_at&page={page}"
            )
            found += [(int(n["id"]), n.get("body") or "") for n in notes if not n.get("system")]
            page = _header(headers, "X-Next-Page").strip() or None
        return found

    def create(self, body: str) -> int:
        made, _ = self.http.call("POST", self.base, {"body": body})
        return int(made["id"])

    def update(self, comment_id: int, body: str) -> None:
        self.http.call("PUT", f"{self.base}/{comment_id}", {"body": body})


def _header(headers: dict[str, str], name: str) -> str:
    """A header's value whatever the case of its name (empty when absent)."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), "")


class GitHubCommitStatuses:
    """``POST /repos/OWNER/NAME/statuses/SHA`` under one context."""

    def __init__(self, api_url: str, token: str, repo: str, context: str) -> None:
        self.repo, self.context = repo, context
        self.http = _Http(
            api_url,
            _github_headers(token),
            {
                401: "the token is not valid (--commit-status-token-file)",
                403: "the token may not set commit statuses: a fine-grained token needs "
                "'Commit statuses: write' on the repository, a classic one 'repo:status'",
                404: f"no repository {repo} or commit that this token can see "
                "(check --commit-status-repo)",
            },
        )

    def describe(self) -> str:
        return f"github {self.repo}"

    def post(self, sha: str, state: str, description: str) -> None:
        body = {
            "state": state,
            "context": self.context,
            "description": _clip(description, DESCRIPTION_LIMIT),
        }
        self.http.call("POST", f"/repos/{self.repo}/statuses/{sha}", body)


class GitLabCommitStatuses:
    """``POST /projects/ID/statuses/SHA`` under one name (GitLab's ``failed`` for
    ``failure``)."""

    def __init__(self, api_url: str, token: str, project: str, context: str) -> None:
        self.project, self.context = project, context
        self.base = f"/projects/{urllib.parse.quote(project, safe='')}/statuses"
        self.http = _Http(
            api_url,
            _gitlab_headers(token),
            {
                401: "the token is not valid (--commit-status-token-file)",
                403: "the token may not set commit statuses: use a project access token "
                "with the `api` scope and at least the Developer role",
                404: f"no project {project} or commit that this token can see "
                "(check --commit-status-repo)",
            },
        )

    def describe(self) -> str:
        return f"gitlab {self.project}"

    def post(self, sha: str, state: str, description: str) -> None:
        body = {
            "state": GITLAB_STATES[state],
            "name": self.context,
            "description": _clip(description, 255),
        }
        self.http.call("POST", f"{self.base}/{sha}", body)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_SCP = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>[^/].*)$")


def status_target(
    forge: str, git_url: str | None, repo: str | None = None, api_url: str | None = None
) -> tuple[str, str]:
    """The API URL and the repository (GitHub ``owner/name``, GitLab's project path) for
    commit statuses: derived from the git URL where not given. GitHub: api.github.com
    for github.com, ``https://HOST/api/v3`` for an Enterprise host; GitLab:
    ``https://HOST/api/v4``. ValueError says what to give when it cannot be derived."""
    host, path = _host_and_path(git_url or "")
    if repo is None:
        if not path:
            raise ValueError(
                f"--commit-status {forge}: cannot tell the repository from the git URL "
                f"{git_url!r}: give --commit-status-repo"
            )
        repo = path
    if api_url is None:
        if not host:
            raise ValueError(
                f"--commit-status {forge}: cannot tell the API from the git URL "
                f"{git_url!r}: give --commit-status-api-url"
            )
        if forge == "github":
            api_url = "https://api.github.com" if host == "github.com" else f"https://{host}/api/v3"
        else:
            api_url = f"https://{host}/api/v4"
    if forge == "github" and repo.count("/") != 1:
        raise ValueError(f"--commit-status github: {repo!r} is not OWNER/NAME")
    return api_url, repo


def _host_and_path(url: str) -> tuple[str, str]:
    """The host and the repository path of an https, ssh or scp-style git URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("https", "http", "ssh", "git") and parts.hostname:
        host, path = parts.hostname, parts.path
    elif (match := _SCP.match(url)) is not None and "://" not in url:
        host, path = match.group("host"), match.group("path")
    else:
        return "", ""
    path = path.strip("/")
    path = path[: -len(".git")] if path.endswith(".git") else path
    return host, path
