"""Fixtures for the validate tests."""

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory: the tests write their topology under ``sites/`` in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
