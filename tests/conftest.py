"""Shared pytest fixtures and markers."""

import os

import pytest
from hypothesis import settings

# `make test` must give the same result on every run: fixed seeds, no example database
# replaying what an earlier run found. `make fuzz` (HYPOTHESIS_PROFILE=fuzz) explores.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(
    not IS_ROOT, reason="needs root: creates network namespaces and raw sockets (CI runs as root)"
)
pytest_plugins = ["tests.apiserver.fixtures", "tests.shipped_rbac"]
