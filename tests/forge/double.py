"""A small HTTP double of the GitHub and GitLab comment APIs, on 127.0.0.1.

GitHub: the issue comments of a pull request (GET with ``per_page``/``page`` and a
``Link: <...>; rel="next"`` header, POST, PATCH by id), ``Authorization: Bearer``.
GitLab: the notes of a merge request (GET with ``X-Next-Page``, POST, PUT by id; system
notes listed too, as GitLab does), ``PRIVATE-TOKEN``. Pages are at most ``page_size``
long whatever ``per_page`` asks, so pagination shows with a few comments. Commit
statuses: GitHub's ``POST /repos/OWNER/NAME/statuses/SHA`` (``state`` one of error,
failure, pending, success; ``description`` at most 140 characters, else 422) and
GitLab's ``POST /projects/ID/statuses/SHA`` (pending, running, success, failed,
canceled, else 400), each kept in ``statuses`` for repositories in ``repos``. ``refuse``
makes a method answer a status once or always, as the forges do (403 with GitHub's
"Resource not accessible by integration"), and every request is logged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "t0ken"
MESSAGES = {
    401: "Bad credentials",
    403: "Resource not accessible by integration",
    404: "Not Found",
    502: "Bad Gateway",
}


class ForgeDouble(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, page_size: int = 100) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.page_size = page_size
        self.github: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.gitlab: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.refuse: dict[str, list[int]] = {}  # method -> statuses to answer, in turn
        self.refuse_always: dict[str, int] = {}
        self.log: list[tuple[str, str]] = []
        self.repos: set[str] = set()  # repositories and projects with commits to set statuses on
        self.statuses: list[dict[str, Any]] = []
        self.next_id = 1000
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def comment(self, where: dict[Any, list[dict[str, Any]]], key: Any, body: str,
                **extra: Any) -> dict[str, Any]:  # fmt: skip
        with self.lock:
            self.next_id += 1
            item = {"id": self.next_id, "body": body, **extra}
            where.setdefault(key, []).append(item)
            return item


class _Handler(BaseHTTPRequestHandler):
    server: ForgeDouble

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _refused(self) -> bool:
        server = self.server
        status = server.refuse_always.get(self.command)
        queued = server.refuse.get(self.command)
        if status is None and queued:
            status = queued.pop(0)
        if status is None:
            return False
        self._answer(status, {"message": MESSAGES.get(status, "refused")})
        return True

    def _json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return dict(json.loads(self.rfile.read(length)))

    def _body(self) -> str:
        return str(self._json()["body"])

    def _status(self, forge: str, repo: str, sha: str, states: set[str], invalid: int) -> None:
        if repo not in self.server.repos or len(sha) != 40:
            return self._answer(404, {"message": MESSAGES[404]})
        body = self._json()
        if body.get("state") not in states:
            return self._answer(invalid, {"message": f"state {body.get('state')!r} is invalid"})
        if forge == "github" and len(body.get("description") or "") > 140:
            return self._answer(422, {"message": "description is too long (maximum is 140)"})
        made = {"forge": forge, "repo": repo, "sha": sha, **body}
        with self.server.lock:
            self.server.statuses.append(made)
        return self._answer(201, made)

    def _handle(self) -> None:
        self.server.log.append((self.command, self.path))
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = parse_qs(url.query)
        if parts[:2] == ["api", "v4"]:
            if self.headers.get("PRIVATE-TOKEN") != TOKEN:
                return self._answer(401, {"message": "401 Unauthorized"})
            if not self._refused():
                self._gitlab(parts[2:], query)
            return None
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._answer(401, {"message": MESSAGES[401]})
        if not self._refused():
            self._github(parts, query)
        return None

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _page(
        self, items: list[dict[str, Any]], query: dict[str, list[str]]
    ) -> tuple[list[dict[str, Any]], int | None]:
        size = min(int(query.get("per_page", ["20"])[0]), self.server.page_size)
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * size : page * size]
        return chunk, page + 1 if page * size < len(items) else None

    def _github(self, parts: list[str], query: dict[str, list[str]]) -> None:
        # repos/OWNER/NAME/issues/N/comments  or  repos/OWNER/NAME/issues/comments/ID
        if len(parts) == 5 and parts[0] == "repos" and parts[3] == "statuses":
            states = {"error", "failure", "pending", "success"}
            return self._status("github", f"{parts[1]}/{parts[2]}", parts[4], states, 422)
        if len(parts) < 6 or parts[0] != "repos" or parts[3] != "issues":
            return self._answer(404, {"message": MESSAGES[404]})
        repo = f"{parts[1]}/{parts[2]}"
        if parts[4] == "comments" and self.command == "PATCH":
            for item in (c for (r, _), cs in self.server.github.items() if r == repo for c in cs):
                if item["id"] == int(parts[5]):
                    item["body"] = self._body()
                    return self._answer(200, item)
            return self._answer(404, {"message": MESSAGES[404]})
        key = (repo, int(parts[4]))
        if key not in self.server.github:  # no such pull request
            return self._answer(404, {"message": MESSAGES[404]})
        if self.command == "POST":
            made = self.server.comment(self.server.github, key, self._body(),
                                       user={"login": "github-actions[bot]"})  # fmt: skip
            return self._answer(201, made)
        chunk, following = self._page(self.server.github[key], query)
        headers = {}
        if following is not None:
            size = min(int(query.get("per_page", ["20"])[0]), self.server.page_size)
            link = f"{self.server.url}{urlsplit(self.path).path}?per_page={size}&page={following}"
            headers["Link"] = f'<{link}>; rel="next"'
        return self._answer(200, chunk, headers)

    def _gitlab(self, parts: list[str], query: dict[str, list[str]]) -> None:
        # projects/ID/merge_requests/IID/notes[/NOTE]  or  projects/ID/statuses/SHA
        if len(parts) == 4 and parts[0] == "projects" and parts[2] == "statuses":
            states = {"pending", "running", "success", "failed", "canceled"}
            return self._status("gitlab", parts[1], parts[3], states, 400)
        if len(parts) < 5 or parts[0] != "projects" or parts[2:5:2] != ["merge_requests", "notes"]:
            return self._answer(404, {"message": "404 Not found"})
        key = (parts[1], int(parts[3]))
        if key not in self.server.gitlab:
            return self._answer(404, {"message": "404 Not found"})
        notes = self.server.gitlab[key]
        if len(parts) == 6 and self.command == "PUT":
            for item in notes:
                if item["id"] == int(parts[5]):
                    item["body"] = self._body()
                    return self._answer(200, item)
            return self._answer(404, {"message": "404 Note Not Found"})
        if self.command == "POST":
            return self._answer(201, self.server.comment(self.server.gitlab, key, self._body(),
                                                         system=False))  # fmt: skip
        chunk, following = self._page(notes, query)
        return self._answer(200, chunk, {"X-Next-Page": str(following or "")})


@contextmanager
def serving(page_size: int = 100) -> Iterator[ForgeDouble]:
    server = ForgeDouble(page_size)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
