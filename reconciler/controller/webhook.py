"""Verify a git host's push notification (``POST /hooks/git``); pure, no I/O.

GitHub signs the raw body: ``X-Hub-Signature-256: sha256=<HMAC-SHA256(secret, body)>``.
GitLab sends the secret itself in ``X-Gitlab-Token``. Both are compared in constant
time. A request with neither, or with one that does not match, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path

MAX_BODY = 1 << 20  # bytes: GitHub caps payloads at 25 MB, but a push event is far smaller
GITHUB = "X-Hub-Signature-256"
GITLAB = "X-Gitlab-Token"

Headers = Callable[[str], str | None]  # case-insensitive header lookup


class WebhookSecretError(ValueError):
    """The secret file is missing or empty."""


def read_secret(path: Path) -> bytes:
    """The secret in ``path``, without surrounding whitespace (Secrets often end in \\n)."""
    try:
        secret = path.read_bytes().strip()
    except OSError as err:
        raise WebhookSecretError(f"--webhook-secret-file {path}: {err.strerror}") from None
    if not secret:
        raise WebhookSecretError(f"--webhook-secret-file {path}: empty")
    return secret


def github_signature(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, header: Headers, body: bytes) -> bool:
    """Whether the request carries a valid GitHub signature or GitLab token.

    A GitHub signature, when present, decides alone (a GitLab token beside it is ignored)."""
    if not secret:
        return False
    signature = header(GITHUB)
    if signature is not None:
        expected = github_signature(secret, body).encode()
        return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))
    token = header(GITLAB)
    if token is not None:
        return hmac.compare_digest(secret, token.strip().encode("utf-8", "replace"))
    return False
