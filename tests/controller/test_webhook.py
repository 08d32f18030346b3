"""Webhook verification: GitHub's HMAC signature and GitLab's token, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from reconciler.controller.webhook import (
    GITHUB,
    GITLAB,
    MAX_ID,
    Deliveries,
    WebhookSecretError,
    delivery_keys,
    github_signature,
    read_secret,
    verify,
)

SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"


def headers(**given: str):
    lowered = {k.lower().replace("_", "-"): v for k, v in given.items()}
    return lambda name: lowered.get(name.lower())


def test_githubs_documented_example_signature() -> None:
    # The example in GitHub's "Validating webhook deliveries".
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert github_signature(SECRET, BODY) == expected
    assert verify(SECRET, headers(**{GITHUB: expected}), BODY)


def test_wrong_missing_or_replayed_signatures_are_refused() -> None:
    good = github_signature(SECRET, BODY)
    assert not verify(SECRET, headers(), BODY)
    assert not verify(SECRET, headers(**{GITHUB: good}), BODY + b" ")  # replayed, body changed
    assert not verify(SECRET, headers(**{GITHUB: github_signature(b"other", BODY)}), BODY)
    sha1 = "sha1=" + hmac.new(SECRET, BODY, hashlib.sha1).hexdigest()
    assert not verify(SECRET, headers(**{GITHUB: sha1}), BODY)
    assert not verify(SECRET, headers(**{GITHUB: "sha256=é"}), BODY)
    # A signature present decides alone: a right token beside a wrong one does not help.
    assert not verify(SECRET, headers(**{GITHUB: "sha256=00", GITLAB: SECRET.decode()}), BODY)
    assert not verify(b"", headers(**{GITLAB: ""}), BODY)


def test_gitlab_token() -> None:
    assert verify(SECRET, headers(**{GITLAB: SECRET.decode()}), b"{}")
    assert not verify(SECRET, headers(**{GITLAB: "guess"}), b"{}")


def test_the_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(SECRET + b"\n")
    assert read_secret(path) == SECRET
    path.write_bytes(b" \n")
    with pytest.raises(WebhookSecretError, match="empty"):
        read_secret(path)
    with pytest.raises(WebhookSecretError):
        read_secret(tmp_path / "absent")


def test_a_delivery_is_known_by_its_id_and_by_its_body_within_a_bounded_memory() -> None:
    sent = {"X-GitHub-Delivery": "a-guid", "X-Gitlab-Event-UUID": ""}
    keys = delivery_keys(sent.get, b"push")
    assert keys == [f"body:{hashlib.sha256(b'push').hexdigest()}", "x-github-delivery:a-guid"]
    seen = Deliveries(size=4)
    assert seen.first(keys)
    assert not seen.first(keys)  # replayed
    assert not seen.first(delivery_keys({"X-GitHub-Delivery": "new"}.get, b"push"))  # same body
    assert not seen.first(delivery_keys({"X-GitHub-Delivery": "a-guid"}.get, b"other"))  # same id
    for body in (b"1", b"2", b"3", b"4"):  # the memory keeps the last four keys only
        assert seen.first(delivery_keys(headers(), body))
    assert seen.first(keys)  # forgotten: known again as new
    long = delivery_keys({"X-GitHub-Delivery": "x" * 1000}.get, b"5")
    assert long[1] == "x-github-delivery:" + "x" * MAX_ID  # a bounded key, however long
