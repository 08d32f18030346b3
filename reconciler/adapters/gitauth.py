"""Git credentials from mounted files, handed to git through its environment only.

An SSH key goes in through ``GIT_SSH_COMMAND`` (with a pinned known_hosts file and strict
host key checking); a token through a credential helper that reads the token file when
git asks, so the token is in no argv, no environment variable and no config file.

A URL may carry credentials itself (``https://user:password@host/...``, a token as the
user name), and git, or the remote through git, may echo them back in any form - in a
URL, or bare in a ``remote error`` line, percent-decoded. So every text that may reach a
log, a status, an exception or a metric passes through :func:`redact` (any userinfo in
any URL) and :class:`Scrubber` (the secrets of this URL and of the token file, wherever
they appear). Written here rather than taken from gitpython: its
``remove_password_if_present`` knows URLs in argv only, not a secret echoed bare.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"]*@")
"""A scheme's ``//`` up to the last ``@`` before the path: a password may hold a bare
``@`` (git and curl then take the last one as the host's)."""
SCP_STYLE = re.compile(r"^[^/:@\s]+@[^/:\s]+:")  # git@host:org/repo.git
TOKEN_USER = "x-access-token"  # what GitHub expects; GitLab and Gitea take any user name


class CredentialsError(ValueError):
    """The credential settings do not fit the URL (or a file cannot be read)."""


def redact(text: str) -> str:
    """``https://user:secret@host/x`` -> ``https://***@host/x``, wherever it appears."""
    return USERINFO.sub(r"\g<scheme>***@", text)


def url_secrets(url: str) -> tuple[str, ...]:
    """What in ``url`` is secret, as written and percent-decoded: the password, and over
    http(s) a user name given without one (a token: ``https://ghp_...@github.com/``)."""
    if "://" not in url:
        return ()  # a path, or scp-style git@host:repo: the user is a login, not a secret
    userinfo, at, _ = urlsplit(url).netloc.rpartition("@")
    if not at:
        return ()
    user, colon, password = userinfo.partition(":")
    secret = password if colon else (user if is_http(url) else "")
    return tuple(dict.fromkeys(s for s in (secret, unquote(secret)) if s))


@dataclass(frozen=True)
class Credentials:
    """Paths of mounted credential files (none of them is read into a flag or a log)."""

    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    token_file: Path | None = None

    def check(self, url: str) -> None:
        """Refuse settings that cannot work for ``url``, before any fetch."""
        if "://" in url and urlsplit(url).netloc.count("@") > 1:
            raise CredentialsError(
                "the URL's user information holds a bare '@': write it as %40 (git and "
                "curl cannot tell where the password ends)"
            )
        if is_ssh(url):
            if self.token_file is not None:
                raise CredentialsError("--git-token-file is for https URLs; this one is ssh")
            if self.ssh_key_file is None or self.known_hosts_file is None:
                raise CredentialsError(
                    "an ssh URL needs --git-ssh-key-file and --git-known-hosts-file"
                )
        elif self.ssh_key_file is not None or self.known_hosts_file is not None:
            raise CredentialsError("--git-ssh-key-file and --git-known-hosts-file need an ssh URL")
        elif self.token_file is not None and not is_http(url):
            raise CredentialsError("--git-token-file needs an http(s) URL")
        for name, path in (
            ("--git-ssh-key-file", self.ssh_key_file),
            ("--git-known-hosts-file", self.known_hosts_file),
            ("--git-token-file", self.token_file),
        ):
            if path is not None and not path.is_file():
                raise CredentialsError(f"{name} {path}: no such file")

    def environment(self, url: str) -> dict[str, str]:
        """The variables to add to git's environment for one command against ``url``."""
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false"}
        if self.ssh_key_file is not None and self.known_hosts_file is not None:
            env["GIT_SSH_COMMAND"] = shlex.join(
                [
                    "ssh",
                    "-F",
                    "/dev/null",
                    "-i",
                    str(self.ssh_key_file),
                    "-o",
                    "IdentitiesOnly=yes",
                    "-o",
                    f"UserKnownHostsFile={self.known_hosts_file}",
                    "-o",
                    "StrictHostKeyChecking=yes",
                    "-o",
                    "BatchMode=yes",
                ]
            )
        if self.token_file is not None:
            user = "" if urlsplit(url).username else f"echo username={TOKEN_USER}; "
            token = shlex.quote(str(self.token_file))
            helper = (
                '!f() { test "$1" = get || exit 0; '
                f"{user}printf 'password=%s\\n' \"$(cat {token})\"; }}; f"
            )
            # An empty value first resets any helper configured elsewhere.
            env |= {
                "GIT_CONFIG_COUNT": "2",
                "GIT_CONFIG_KEY_0": "credential.helper",
                "GIT_CONFIG_VALUE_0": "",
                "GIT_CONFIG_KEY_1": "credential.helper",
                "GIT_CONFIG_VALUE_1": helper,
            }
        return env

    def scrub(self, text: str) -> str:
        """``text`` with the token's value (should git ever echo it) replaced."""
        if self.token_file is None:
            return text
        try:
            token = self.token_file.read_text().strip()
        except OSError:
            return text
        return text.replace(token, "***") if token else text


@dataclass(frozen=True)
class Scrubber:
    """Hides one remote's secrets in any text: its URL's and its token file's."""

    url: str
    credentials: Credentials

    def __call__(self, text: str) -> str:
        """``text`` with every URL's userinfo and each known secret replaced by ``***``."""
        text = redact(text)
        for secret in sorted(url_secrets(self.url), key=len, reverse=True):
            text = text.replace(secret, "***")
        return self.credentials.scrub(text)


def is_ssh(url: str) -> bool:
    """Whether git reaches ``url`` over SSH (``ssh://`` or scp-style ``user@host:path``)."""
    scheme = urlsplit(url).scheme.lower()
    return scheme in {"ssh", "git+ssh", "ssh+git"} or (
        "://" not in url and bool(SCP_STYLE.match(url))
    )


def is_http(url: str) -> bool:
    """Whether ``url`` is http(s)."""
    return urlsplit(url).scheme.lower() in {"http", "https"}
