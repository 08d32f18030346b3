"""Fixtures the controller loop's tests share: the example topology, the API double
seeded with the example nodes, and a wall clock just after their check-ins."""

from __future__ import annotations

import pytest

from reconciler.model.topology import Topology
from tests.apiserver import ApiServer
from tests.controller.loop_support import (
    EXAMPLE_SEEN,
    WallClock,
    example_topology,
    seed_examples,
)


@pytest.fixture(scope="module")
def topology() -> Topology:
    return example_topology()


@pytest.fixture
def cluster(apiserver: ApiServer) -> ApiServer:
    seed_examples(apiserver)
    return apiserver


@pytest.fixture
def clock() -> WallClock:
    return WallClock(EXAMPLE_SEEN + 5.0)
