"""Shared pytest fixtures and markers."""

import os

import pytest

IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(
    not IS_ROOT, reason="needs root: creates network namespaces and raw sockets (CI runs as root)"
)
pytest_plugins = ["tests.apiserver.fixtures"]
