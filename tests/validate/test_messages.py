"""What messages show: long values cut, long member lists summarised, help that is true."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.validate.support import (
    EXIT_INVALID,
    EXIT_VALID,
    REPO,
    SITES,
    invoke,
    site,
    validate_json,
    write_tree,
)

KEEPALIVE = "  persistentKeepalive: 25"
LONG = 200_000


@pytest.mark.parametrize(
    ("body", "name", "line", "col", "path"),
    [
        pytest.param((KEEPALIVE,), "a" * LONG, 4, 9, "metadata.name", id="site-name"),
        pytest.param(
            (KEEPALIVE, "  nodes:", "    - name: " + "n" * LONG),
            "edge",
            8,
            13,
            "spec.nodes[0].name",
            id="node-name",
        ),
        pytest.param(
            (KEEPALIVE, "  labels: {tier: " + "v" * LONG + "}"),
            "edge",
            7,
            18,
            "spec.labels.tier",
            id="label-value",
        ),
        pytest.param(
            (KEEPALIVE, "  nodes:", "    - {name: gw, endpoint: " + "h" * LONG + "}"),
            "edge",
            8,
            28,
            "spec.nodes[0].endpoint",
            id="endpoint",
        ),
        pytest.param(
            (KEEPALIVE, "  lifecycle: {after: " + "9" * LONG + "x}"),
            "edge",
            7,
            22,
            "spec.lifecycle.after",
            id="duration",
        ),
        pytest.param(
            (KEEPALIVE, "  ? " + "k" * LONG, "  : 1"),  # explicit: simple keys stop at 1024
            "edge",
            7,
            5,
            "spec." + "k" * 320 + f"…({LONG} chars)",
            id="unknown-field",
        ),
    ],
)
def test_long_values_are_cut_in_messages(
    workdir: Path, body: tuple[str, ...], name: str, line: int, col: int, path: str
) -> None:
    write_tree(workdir / SITES, {"a.yaml": site(*body, name=name)})
    report = validate_json(SITES)
    assert report.exit_code == EXIT_INVALID
    [error] = report.errors
    assert (error["line"], error["column"], error["path"]) == (line, col, path)
    assert f"…({LONG} chars)" in error["message"] or "chars)" in error["message"]
    assert len(error["message"]) < 600, error["message"][:700]
    text = invoke("validate", SITES)
    assert text.exit_code == EXIT_INVALID
    assert max(len(line) for line in text.stdout.splitlines()) < 2000


def test_a_long_value_keeps_its_start_and_says_its_length(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": site(KEEPALIVE, name="Ab" * 40_000)})
    [error] = validate_json(SITES).errors
    assert error["message"].startswith("'" + "Ab" * 32 + "'…(80000 chars) is not a DNS-1123")


def test_short_values_are_shown_whole(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": site(KEEPALIVE, name="x" * 64)})
    [error] = validate_json(SITES).errors
    assert error["message"].startswith("'" + "x" * 64 + "' is not a DNS-1123 label")


def members(count: int) -> str:
    nodes = [f"    - {{name: gw-{i:05d}, endpoint: 203.0.113.1}}" for i in range(count)]
    return site(KEEPALIVE, "  nodes:", *nodes)


@pytest.mark.parametrize(
    ("count", "more"), [(10, None), (11, "… and 1 more"), (1200, "… and 1,190 more")]
)
def test_the_summary_table_cuts_long_member_lists(
    workdir: Path, count: int, more: str | None
) -> None:
    write_tree(workdir / SITES, {"a.yaml": members(count)})
    result = invoke("validate", SITES)
    assert result.exit_code == EXIT_VALID, result.stdout
    shown = [n for n in range(count) if f"gw-{n:05d}" in result.stdout]
    assert shown == list(range(min(count, 10)))
    assert (more in result.stdout) if more else ("more" not in result.stdout)
    assert len(result.stdout.splitlines()) < 40
    assert f"valid: 1 site, {count} named node" in result.stdout
    report = validate_json(SITES)  # machines get every member
    assert len(report.data["sites"][0]["nodes"]) == count


def test_plan_help_says_what_it_writes() -> None:
    result = invoke("plan", "--help")
    assert result.exit_code == 0
    assert "Writes nothing" not in result.stdout
    assert "Changes nothing in the cluster" in result.stdout
    assert "--out" in result.stdout


def test_nodegen_is_the_same_in_every_process() -> None:
    """Synthetic clusters must not depend on the process's string-hash seed."""
    script = (
        "import json, sys; sys.path.insert(0, '.'); from bench import nodegen; "
        "print(json.dumps(nodegen.nodes(30, 3), sort_keys=True))"
    )
    digests = set()
    for seed in ("1", "2", "12345"):
        out = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        digests.add(hashlib.sha256(out.encode()).hexdigest())
    assert len(digests) == 1
