"""Golden plans: each directory here is a case (sites/, nodes.yaml) with its expected
``topoctl plan`` output as text (plain, as on a non-terminal) and as JSON.

Every golden was reviewed by eye against docs/topology.md and docs/domain.md: a diff here means the
plan changed, and the new output must be checked just as carefully before updating it
(``pytest tests/scenarios --update-golden`` or ``TOPOCTL_UPDATE_GOLDEN=1``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main

HERE = Path(__file__).parent
CASES = sorted(p.name for p in HERE.iterdir() if (p / "nodes.yaml").is_file())
# Rich must not colour or resize the text output, whatever the caller's environment says.
PLAIN_ENV: dict[str, str | None] = {
    "FORCE_COLOR": None,
    "TTY_COMPATIBLE": None,
    "TTY_INTERACTIVE": None,
    "COLUMNS": None,
    "NO_COLOR": "1",
}


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str


def run_plan(fmt: str) -> Outcome:
    """``topoctl plan sites --cluster nodes.yaml --format FMT`` in the current directory."""
    result = CliRunner(env=PLAIN_ENV).invoke(
        main, ["plan", "sites", "--cluster", "nodes.yaml", "--format", fmt]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return Outcome(result.exit_code, result.stdout)


def test_every_case_has_its_goldens() -> None:
    assert len(CASES) >= 20
    for name in CASES:
        assert list((HERE / name / "sites").glob("*.yaml")), name


@pytest.mark.parametrize("name", CASES)
def test_plan_matches_golden(
    name: str, update_golden: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = HERE / name
    monkeypatch.chdir(case)  # file names in warnings are as the user typed them
    text, as_json = run_plan("text"), run_plan("json")
    if update_golden:
        (case / "plan.txt").write_text(text.stdout)
        (case / "plan.json").write_text(as_json.stdout)
    assert text.stdout == (case / "plan.txt").read_text()
    assert as_json.stdout == (case / "plan.json").read_text()
    # Exit status: 1 when the plan has errors (apply would refuse it), else 0.
    expected_exit = 1 if json.loads(as_json.stdout)["errors"] else 0
    assert (text.exit_code, as_json.exit_code) == (expected_exit, expected_exit)
