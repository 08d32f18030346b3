"""lifecycle settings: ``after`` long enough for a real verdict, and a warning when
``scope: all`` lets deletion reach a site's named gateways."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.validate.support import E, Expect, W, check_case, site

KEEPALIVE = "  persistentKeepalive: 25"
GATEWAY = ["  nodes:", "    - name: gw-1", "      endpoint: 203.0.113.1"]


def case(*body: str, expected: tuple[Expect, ...] = (), id: str) -> object:
    return pytest.param({"a.yaml": site(KEEPALIVE, *body)}, expected, id=id)


CASES = [
    case("  lifecycle:", "    after: 2m", id="two-minutes-is-enough"),
    case(
        "  lifecycle:",
        "    after: 90s",
        expected=(E(8, 12, "spec.lifecycle.after", "wait at least 2m"),),
        id="ninety-seconds-is-too-short",
    ),
    case(
        "  lifecycle:",
        "    after: 1m",
        expected=(E(8, 12, "spec.lifecycle.after", "50 s after its kubelet goes quiet"),),
        id="a-minute-is-too-short-and-says-why",
    ),
    case(
        *GATEWAY,
        "  lifecycle:",
        "    deleteUnreachable: true",
        "    scope: all",
        expected=(W(12, 12, "spec.lifecycle.scope", "named gateway and leader nodes (gw-1)"),),
        id="scope-all-with-a-named-gateway",
    ),
    case(
        "  leader: [gw-1]",
        "  nodes: [{name: gw-1}]",
        "  lifecycle: {deleteUnreachable: true, scope: all}",
        expected=(W(9, 47, "spec.lifecycle.scope", "(gw-1)"),),
        id="scope-all-with-a-pinned-leader",
    ),
    case(
        *GATEWAY,
        "  lifecycle:",
        "    deleteUnreachable: true",
        "    scope: pools",
        id="scope-pools-keeps-named-nodes-out",
    ),
    case(
        *GATEWAY,
        "  lifecycle:",
        "    deleteUnreachable: false",
        "    scope: all",
        id="no-deletion-no-warning",
    ),
    case(
        "  nodes: [{name: worker-1}]",
        "  lifecycle: {deleteUnreachable: true, scope: all}",
        id="named-nodes-without-endpoint-or-leader",
    ),
]


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_lifecycle_rules(
    workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]
) -> None:
    check_case(workdir, files, expected)
