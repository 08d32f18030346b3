"""Helpers: write topology files, run `topoctl validate`, read what it reports."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from reconciler.cli import main

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
BIN = Path(sys.executable).parent
TOPOCTL = BIN / "topoctl"
REPO = Path(__file__).resolve().parents[2]
SITES = "sites"  # the topology directory the tests write, relative to the working directory

# A Site document as site() writes it: the body lines given to site() start on line 6.
SITE_HEADER = (
    "apiVersion: topoctl.io/v1alpha1",
    "kind: Site",
    "metadata:",
    "  name: {name}",
    "spec:",
)
FIRST_BODY_LINE = len(SITE_HEADER) + 1


def site(*body: str, name: str = "edge") -> str:
    """A Site document whose ``spec`` body is ``body``, one string per line, verbatim.

    Lines 1-5 are the header (``name`` is on line 4, its value at column 9); ``body[0]``
    is line 6. Columns in the expected positions are the columns as written here.
    """
    header = [line.format(name=name) for line in SITE_HEADER]
    return "\n".join([*header, *body]) + "\n"


def doc(*lines: str) -> str:
    """A document given line by line (line 1 is ``lines[0]``)."""
    return "\n".join(lines) + "\n"


CLUSTER = doc("apiVersion: topoctl.io/v1alpha1", "kind: Cluster", "metadata:", "  name: prod")


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write ``files`` (paths relative to ``root``) and return ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def invoke(*args: str) -> Result:
    """Run ``topoctl <args>`` in-process; fail the test on any unexpected exception."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    assert_no_crash(result)
    return result


def assert_no_crash(result: Result) -> None:
    """Bad input is reported, never a traceback."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"topoctl crashed: {result.exception!r}\n{result.output}")
    assert "Traceback" not in result.output


@dataclass(frozen=True)
class Report:
    """The parsed ``--format json`` report and the exit code that came with it."""

    exit_code: int
    data: dict[str, Any]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.data["errors"])

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return list(self.data["warnings"])


def validate_json(*args: str) -> Report:
    """``topoctl validate <args> --format json``, parsed."""
    result = invoke("validate", *args, "--format", "json")
    assert result.exit_code in (EXIT_VALID, EXIT_INVALID), result.output
    return Report(result.exit_code, json.loads(result.stdout))


@dataclass(frozen=True)
class Expect:
    """One diagnostic a case must produce: where, on which field, and part of the message."""

    line: int
    col: int
    path: str
    fragment: str
    file: str = "a.yaml"
    severity: str = "error"

    @property
    def where(self) -> tuple[str, int, int, str]:
        return (f"{SITES}/{self.file}", self.line, self.col, self.path)

    def text_prefix(self) -> str:
        """How the text format starts this diagnostic's line."""
        where = f"{self.path}: " if self.path else ""
        file, line, col, _ = self.where
        return f"{file}:{line}:{col}: {self.severity}: {where}"


def E(line: int, col: int, path: str, fragment: str, file: str = "a.yaml") -> Expect:
    """An expected error."""
    return Expect(line, col, path, fragment, file, "error")


def W(line: int, col: int, path: str, fragment: str, file: str = "a.yaml") -> Expect:
    """An expected warning."""
    return Expect(line, col, path, fragment, file, "warning")


def _where(item: Mapping[str, Any]) -> tuple[str, int, int, str]:
    return (item["file"], item["line"], item["column"], item["path"])


def assert_reported(
    found: Sequence[Mapping[str, Any]], expected: Sequence[Expect], what: str
) -> None:
    """``found`` holds exactly the ``expected`` positions, each with its message fragment."""
    got = {_where(item): item["message"] for item in found}
    assert sorted(got) == sorted(e.where for e in expected), (
        f"{what}: expected {[e.where for e in expected]}, got {json.dumps(list(found), indent=1)}"
    )
    for e in expected:
        assert e.fragment in got[e.where], f"{what} at {e.where}: {got[e.where]!r}"


def check_case(root: Path, files: Mapping[str, str], expected: Sequence[Expect]) -> None:
    """Write ``files`` under ``root/sites``, validate, and compare with ``expected``.

    Errors must match exactly. Warnings must match exactly when the case expects any
    warning or no error at all (a valid case); an invalid case may warn about other things.
    """
    write_tree(root / SITES, files)
    errors = [e for e in expected if e.severity == "error"]
    warnings = [e for e in expected if e.severity == "warning"]
    report = validate_json(SITES)
    assert_reported(report.errors, errors, "errors")
    if warnings or not errors:
        assert_reported(report.warnings, warnings, "warnings")
    assert report.exit_code == (EXIT_INVALID if errors else EXIT_VALID)
    assert report.data["valid"] is (not errors)

    text = invoke("validate", SITES)
    assert text.exit_code == report.exit_code
    lines = text.stdout.splitlines()
    for e in expected:
        assert any(line.startswith(e.text_prefix()) and e.fragment in line for line in lines), (
            f"no line starting {e.text_prefix()!r} with {e.fragment!r} in:\n{text.stdout}"
        )
