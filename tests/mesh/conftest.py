"""Mesh fixtures: a module shares one mesh (bring-up costs seconds), built by `build`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pytest

from tests.mesh.harness import Mesh, requirements
from tests.mesh.spec import LocationSpec


def build(
    locations: Sequence[LocationSpec], topology: Mapping[str, str], granularity: str = "location"
) -> Iterator[Mesh]:
    """Yield a started mesh (skip the module when this machine cannot run one)."""
    reason = requirements()
    if reason is not None:
        pytest.skip(reason)
    with Mesh(locations, topology=topology, granularity=granularity) as mesh:
        yield mesh
