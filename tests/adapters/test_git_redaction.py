"""Credentials inside a git URL never reach any text topoctl emits, even when echoed.

The remote is git's own ``git-http-backend`` (smart HTTP, as CGI) behind Basic auth. A
repository it does not have is refused in the git protocol's own way - an ``ERR`` line,
which git prints as ``fatal: remote error: ...`` - naming the credentials it was sent,
as a verbose (or hostile) host may. Whatever the password looks like (an ``@`` left
unencoded, percent-encoding the remote echoes decoded, a token given as the user name),
it must appear in no log record, no status value, no exception text, no ``describe()``.
"""

from __future__ import annotations

import base64
import logging
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import git
import pytest
from git.util import remove_password_if_present

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.gitauth import (
    Credentials,
    CredentialsError,
    Scrubber,
    redact,
    url_secrets,
)
from reconciler.adapters.gitsource import GitRemote
from reconciler.controller.source import Outcome, Source
from reconciler.ports import SourceUnavailableError
from tests.controller.gitrepos import CLUSTER, EAST, Remote

HTTP_BACKEND = Path("/usr/lib/git-core/git-http-backend")
pytestmark = pytest.mark.skipif(
    not HTTP_BACKEND.exists(), reason="git-http-backend is not installed (apt: git)"
)


def pkt_line(text: str) -> bytes:
    data = text.encode()
    return b"%04x" % (len(data) + 4) + data


class EchoingHost(BaseHTTPRequestHandler):
    """git-http-backend for the repositories under ``root``, for anyone who sends
    credentials; a repository it lacks is refused with an ERR naming the credentials."""

    root: Path

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        who = base64.b64decode(header.removeprefix("Basic ")).decode()
        path, _, query = self.path.partition("?")
        repository = path.split("/info/refs")[0].split("/git-upload-pack")[0]
        if not (self.root / repository.lstrip("/")).is_dir():
            self._refuse(f"ERR access denied or repository not exported: {repository} for {who}")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        env = {
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
        }
        out = subprocess.run(
            [str(HTTP_BACKEND)], input=body, env=env, capture_output=True, check=True
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        headers = [line.split(":", 1) for line in head.decode().split("\r\n") if ":" in line]
        status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
        self.send_response(status)
        for key, value in headers:
            if key.lower() != "status":
                self.send_header(key, value.strip())
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _refuse(self, line: str) -> None:
        payload = pkt_line("# service=git-upload-pack\n") + b"0000" + pkt_line(line + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-git-upload-pack-advertisement")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def host(tmp_path: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT``: ``/remote.git`` holds a topology, nothing else exists."""
    Remote(tmp_path).push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    handler = type("Handler", (EchoingHost,), {"root": tmp_path})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# (userinfo as written in the URL, the secrets it carries as the remote sees them)
USERINFO = [
    pytest.param("deploy:pw-77aa-in-the-url", ["pw-77aa-in-the-url"], id="password"),
    pytest.param(
        "deploy:s3cr%2Ft-%40-k1", ["s3cr%2Ft-%40-k1", "s3cr/t-@-k1"], id="percent-encoded"
    ),
    pytest.param("ghp_T0kenAsTheUserName42", ["ghp_T0kenAsTheUserName42"], id="token-as-user"),
    pytest.param("oauth2:glpat-Xy9-token", ["glpat-Xy9-token"], id="gitlab-token"),
]


@pytest.mark.parametrize(("userinfo", "secrets"), USERINFO)
def test_a_secret_in_the_url_that_the_remote_echoes_reaches_no_text(
    host: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    userinfo: str,
    secrets: list[str],
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, gitpython's command log among them
    port = GitRemote(f"http://{userinfo}@{host}/org/missing.git", tmp_path / "cache")
    source = Source(port, SystemClock())

    assert source.sync() is Outcome.UNAVAILABLE
    with pytest.raises(SourceUnavailableError) as raised:
        port.fetch()

    state = source.state
    assert state.error is not None and "remote error: access denied" in state.error
    assert "/org/missing.git" in state.error, "the rest of the remote's message is kept"
    texts = {
        "describe()": port.describe(),
        "status": str(state),
        "exception": f"{raised.value} {raised.value!r}",
        "log": caplog.text,
        "clone config": (tmp_path / "cache" / "git" / "config").read_text(),
    }
    for secret in secrets:
        leaked = [where for where, text in texts.items() if secret in text]
        assert leaked == [], f"{secret!r} found in {leaked}"


def test_the_same_url_fetches_the_repository_it_names(host: str, tmp_path: Path) -> None:
    port = GitRemote(f"http://deploy:s3cr%2Ft-%40-k1@{host}/remote.git", tmp_path / "cache")
    source = Source(port, SystemClock())
    assert source.sync() is Outcome.NEW
    assert port.describe() == f"http://***@{host}/remote.git (ref main, path sites)"


def test_a_bare_at_sign_in_the_password_is_refused_before_any_fetch(tmp_path: Path) -> None:
    url = "https://deploy:p@ss-w0rd-9f3e@git.example.com/org/topology.git"
    with pytest.raises(CredentialsError) as raised:
        GitRemote(url, tmp_path / "cache")
    assert "write it as %40" in str(raised.value)
    assert "w0rd" not in str(raised.value) and not (tmp_path / "cache").exists()
    assert redact(url) == "https://***@git.example.com/org/topology.git"


def test_redact_takes_the_userinfo_up_to_its_last_at_sign() -> None:
    text = "fatal: 'https://u:p@ss@h/x' and ssh://git@h/y and git@h:o/r, kept: /srv/x.git"
    assert redact(text) == (
        "fatal: 'https://***@h/x' and ssh://***@h/y and git@h:o/r, kept: /srv/x.git"
    )


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("https://deploy:s3cr%2Ft@h/x.git", ("s3cr%2Ft", "s3cr/t")),
        ("https://ghp_abc123@github.com/o/r.git", ("ghp_abc123",)),
        ("https://oauth2:glpat-x@gitlab.com/o/r.git", ("glpat-x",)),
        ("ssh://git@h/o/r.git", ()),  # a login, not a secret
        ("git@github.com:o/r.git", ()),
        ("file:///srv/topology.git", ()),
        ("https://h/o/r.git", ()),
    ],
)
def test_what_in_a_url_is_secret(url: str, secrets: tuple[str, ...]) -> None:
    assert url_secrets(url) == secrets
    assert unquote("s3cr%2Ft") == "s3cr/t"  # what the remote sees of an encoded password


def test_a_secret_is_scrubbed_before_the_message_is_cut(tmp_path: Path) -> None:
    """A message cut at a fixed length must not end in half a secret."""
    secret = "tok-0123456789abcdef"
    port = GitRemote(f"http://deploy:{secret}@h/x.git", tmp_path / "cache")
    for pad in range(470, 510):
        err = git.CommandError(["git", "fetch"], 128, f"fatal: {'x' * pad} {secret}".encode())
        text = port._explain("fetch", err)
        assert "tok-0" not in text and "0123" not in text, pad


@pytest.mark.parametrize(
    "url",
    [
        "https://deploy:s3cr%2Ft@h/x.git",
        "https://ghp_abc123@github.com/o/r.git",
        "ssh://git@h/o/r.git",
        "https://u:p@ss@h/x",
        "http://h:8080/o/r.git",
    ],
)
def test_redact_hides_what_gitpython_hides_in_a_url(url: str) -> None:
    """gitpython's own rule (argv only) and ours agree on URLs; ours also takes echoes."""
    theirs = remove_password_if_present([url])[0]
    assert redact(url) == re.sub(r"\*{5}(:\*{5})?@", "***@", theirs)
    echoed = "fatal: remote error: access denied for deploy:s3cr/t"
    assert remove_password_if_present([echoed]) == [echoed], "theirs leaves a bare echo"
    scrub = Scrubber("https://deploy:s3cr%2Ft@h/x.git", Credentials())
    assert scrub(echoed) == "fatal: remote error: access denied for deploy:***"
