"""Git credentials: files in, through git's environment only; never in any text we emit."""

from __future__ import annotations

import base64
import logging
import shlex
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.gitauth import Credentials, CredentialsError, is_ssh, redact
from reconciler.adapters.gitsource import GitRemote
from reconciler.controller.source import Outcome, Source
from reconciler.ports import SourceUnavailableError
from tests.controller.gitrepos import CLUSTER, EAST, Remote

HTTP_BACKEND = Path("/usr/lib/git-core/git-http-backend")

TOKEN = "tok-4f1c9e-very-secret"
PASSWORD = "pw-77aa-in-the-url"


class AuthRecorder(BaseHTTPRequestHandler):
    """A git host that demands Basic auth and records what it is sent (then says no)."""

    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def host() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (AuthRecorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/org/repo.git", seen
    server.shutdown()
    server.server_close()


class SmartHttp(BaseHTTPRequestHandler):
    """A git host over smart HTTP (git's own ``git-http-backend`` as CGI) behind Basic auth."""

    project_root: Path
    password: str

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        wanted = "Basic " + base64.b64encode(f"x-access-token:{self.password}".encode()).decode()
        if self.headers.get("Authorization") != wanted:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        env = {
            "GIT_PROJECT_ROOT": str(self.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
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

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.skipif(not HTTP_BACKEND.exists(), reason="git-http-backend is not installed")
def test_a_token_fetches_from_a_real_smart_http_host(tmp_path: Path) -> None:
    remote = Remote(tmp_path)
    sha = remote.push({"sites/cluster.yaml": CLUSTER, "sites/east.yaml": EAST})
    handler = type("Handler", (SmartHttp,), {"project_root": tmp_path, "password": TOKEN})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/remote.git"
        token_file = tmp_path / "token"
        token_file.write_text("not the token\n")
        port = GitRemote(url, tmp_path / "cache", credentials=Credentials(token_file=token_file))
        source = Source(port, SystemClock())
        assert source.sync() is Outcome.UNAVAILABLE
        assert source.state.error is not None and "not the token" not in source.state.error
        token_file.write_text(TOKEN + "\n")  # the Secret was rotated: read at each fetch
        assert source.sync() is Outcome.NEW
        assert source.good is not None and source.good.revision == sha
    finally:
        server.shutdown()
        server.server_close()


def basic(header: str) -> str:
    assert header.startswith("Basic ")
    return base64.b64decode(header.removeprefix("Basic ")).decode()


def test_the_token_file_reaches_the_host_and_no_text_we_emit(
    host: tuple[str, list[str]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, seen = host
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    credentials = Credentials(token_file=token_file)
    assert TOKEN not in repr(credentials.environment(url))
    port = GitRemote(url, tmp_path / "cache", credentials=credentials)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceUnavailableError) as raised:
        port.fetch()
    assert f"x-access-token:{TOKEN}" in [basic(h) for h in seen if h]
    source = Source(port, SystemClock())
    assert source.sync() is Outcome.UNAVAILABLE
    texts = [str(raised.value), repr(raised.value), str(source.state), caplog.text]
    assert all(TOKEN not in text for text in texts)
    assert TOKEN not in (tmp_path / "cache" / "git" / "config").read_text()


def test_a_password_in_the_url_is_sent_but_never_shown(
    host: tuple[str, list[str]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, seen = host
    with_userinfo = url.replace("http://", f"http://deploy:{PASSWORD}@")
    port = GitRemote(with_userinfo, tmp_path / "cache")
    caplog.set_level(logging.DEBUG)
    source = Source(port, SystemClock())
    assert source.sync() is Outcome.UNAVAILABLE
    assert f"deploy:{PASSWORD}" in [basic(h) for h in seen if h]
    state = source.state
    assert state.error is not None and "http://***@127.0.0.1" in state.error
    texts = [str(state), port.describe(), caplog.text]
    assert all(PASSWORD not in text for text in texts)
    assert PASSWORD not in (tmp_path / "cache" / "git" / "config").read_text()


def test_a_user_name_in_the_url_goes_with_the_token(
    host: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, seen = host
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    port = GitRemote(
        url.replace("http://", "http://oauth2@"),
        tmp_path / "cache",
        credentials=Credentials(token_file=token_file),
    )
    with pytest.raises(SourceUnavailableError):
        port.fetch()
    assert f"oauth2:{TOKEN}" in [basic(h) for h in seen if h]


def test_ssh_takes_the_key_and_pinned_known_hosts(tmp_path: Path) -> None:
    key, known = tmp_path / "id_ed25519", tmp_path / "known_hosts"
    key.write_text("not a real key\n")
    known.write_text("")
    url = "git@git.example.com:org/topology.git"
    assert is_ssh(url) and is_ssh("ssh://git@host/x.git") and not is_ssh("/srv/x.git")
    credentials = Credentials(ssh_key_file=key, known_hosts_file=known)
    credentials.check(url)
    command = shlex.split(credentials.environment(url)["GIT_SSH_COMMAND"])
    assert command[command.index("-i") + 1] == str(key)
    assert f"UserKnownHostsFile={known}" in command
    assert "StrictHostKeyChecking=yes" in command
    with pytest.raises(CredentialsError, match="known-hosts"):
        Credentials(ssh_key_file=key).check(url)
    with pytest.raises(CredentialsError, match="ssh URL"):
        Credentials(ssh_key_file=key, known_hosts_file=known).check("https://h/x.git")
    with pytest.raises(CredentialsError, match="https"):
        Credentials(token_file=key, ssh_key_file=key, known_hosts_file=known).check(url)
    with pytest.raises(CredentialsError, match="no such file"):
        Credentials(token_file=tmp_path / "absent").check("https://h/x.git")


def test_redact_removes_every_userinfo() -> None:
    text = "fatal: https://a:b@h/x and ssh://git@h/y, kept: /srv/x.git"
    assert redact(text) == "fatal: https://***@h/x and ssh://***@h/y, kept: /srv/x.git"
