"""Golden scenarios: ``--update-golden`` (or TOPOCTL_UPDATE_GOLDEN=1) rewrites the goldens.

The option is registered here, so pass it with this directory on the command line:
``pytest tests/scenarios --update-golden``. The environment variable works from anywhere.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/scenarios/*/plan.txt and plan.json from the current output",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the goldens are to be rewritten instead of compared."""
    option = bool(request.config.getoption("--update-golden", default=False))
    return option or os.environ.get("TOPOCTL_UPDATE_GOLDEN") == "1"
