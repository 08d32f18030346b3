"""Verify a git host's push notification (``POST /hooks/git``), and know it again.

GitHub signs the raw body: ``X-Hub-Signature-256: sha256=<HMAC-SHA256(secret, body)>``.
GitLab sends the secret itself in ``X-Gitlab-Token``. Both are compared in constant
time. A request with neither, or with one that does not match, is refused.

A verified delivery is known by its id (GitHub's ``X-GitHub-Delivery``, GitLab's
``X-Gitlab-Event-UUID``) and by the digest of its body: neither header is signed, so a
replay of a signed body under a new id is the same delivery too. :class:`Deliveries`
remembers the last :data:`REMEMBERED` of them; a delivery seen before triggers nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

MAX_BODY = 1 << 20  # bytes: GitHub caps payloads at 25 MB, but a push event is far smaller
GITHUB = "X-Hub-Signature-256"
GITLAB = "X-Gitlab-Token"
DELIVERY_IDS = ("X-GitHub-Delivery", "X-Gitlab-Event-UUID")
REMEMBERED = 4096  # delivery ids and body digests kept
MAX_ID = 128  # characters of a delivery id kept (a GUID is 36)

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


def delivery_keys(header: Headers, body: bytes) -> list[str]:
    """What a delivery is known by: its delivery id (if sent), and its body's digest."""
    keys = [f"body:{hashlib.sha256(body).hexdigest()}"]
    for name in DELIVERY_IDS:
        value = (header(name) or "").strip()
        if value:
            keys.append(f"{name.lower()}:{value[:MAX_ID]}")
    return keys


class Deliveries:
    """The deliveries seen lately (bounded; thread-safe)."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, keys: Iterable[str]) -> bool:
        """Record a verified delivery; False when any of its ``keys`` was seen before."""
        keys = list(keys)
        with self._lock:
            seen = any(key in self._seen for key in keys)
            for key in keys:
                self._seen[key] = None
                self._seen.move_to_end(key)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
        return not seen
