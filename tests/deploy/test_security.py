"""Security scans: checkov over the rendered manifests and the Dockerfile, hadolint over
the Dockerfile. Every checkov finding must be justified in deploy/checkov-skips.yaml.

checkov pins dozens of packages that would fight the project's own, so it lives in its
own virtualenv (.venv-checkov, a pinned version), which the first run creates from PyPI
(about a minute); later runs take a few seconds.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import DEPLOY, EXAMPLE, REPO, render_text

CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = REPO / ".venv-checkov"
SKIPS = yaml.safe_load((DEPLOY / "checkov-skips.yaml").read_text())
DOCKERFILE = REPO / "Dockerfile"


def _run(*args: str | Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, timeout=timeout
    )


@pytest.fixture(scope="session")
def checkov() -> Path:
    """The pinned checkov, installed into its own virtualenv on first use."""
    binary, stamp = CHECKOV_VENV / "bin" / "checkov", CHECKOV_VENV / ".installed"
    with open(REPO / ".venv-checkov.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs at once install it once
        if not (stamp.exists() and stamp.read_text() == CHECKOV_VERSION):
            venv.create(CHECKOV_VENV, with_pip=True, clear=True)
            pip = CHECKOV_VENV / "bin" / "pip"
            result = _run(pip, "install", "--quiet", f"checkov=={CHECKOV_VERSION}")
            assert result.returncode == 0, f"installing checkov failed:\n{result.stderr}"
            stamp.write_text(CHECKOV_VERSION)
    return binary


def findings(checkov: Path, target: Path, framework: str) -> set[tuple[str, str]]:
    """checkov's failed checks as (check id, resource)."""
    result = _run(checkov, "--file", target, "--framework", framework, "--output", "json",
                  "--quiet", "--compact", "--skip-download")  # fmt: skip
    assert result.returncode in (0, 1), result.stderr  # 1: there are findings
    reports: Any = json.loads(result.stdout)
    failed = set()
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        assert report["summary"]["passed"] > 0, report["summary"]
        for check in report["results"]["failed_checks"]:
            resource = check["resource"].removesuffix(".")  # a Dockerfile's is "PATH."
            failed.add(
                (check["check_id"], Path(resource).name if framework == "dockerfile" else resource)
            )
    return failed


def accepted(framework: str) -> set[tuple[str, str]]:
    entries = SKIPS[framework]
    assert all(entry["reason"].strip() for entry in entries)
    return {(entry["check"], resource) for entry in entries for resource in entry["resources"]}


def test_checkov_finds_nothing_unjustified_in_the_manifests(checkov: Path, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(render_text(EXAMPLE))
    found = findings(checkov, rendered, "kubernetes")
    assert sorted(found - accepted("kubernetes")) == [], "findings without a justification"
    assert sorted(accepted("kubernetes") - found) == [], "stale entries in checkov-skips.yaml"


def test_checkov_finds_nothing_unjustified_in_the_dockerfile(checkov: Path) -> None:
    found = findings(checkov, DOCKERFILE, "dockerfile")
    assert sorted(found - accepted("dockerfile")) == [], "findings without a justification"
    assert sorted(accepted("dockerfile") - found) == [], "stale entries in checkov-skips.yaml"


def test_checkov_does_catch_a_privileged_controller(checkov: Path, tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all(render_text(EXAMPLE)))
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {
        "privileged": True
    }
    rendered = tmp_path / "careless.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    found = {check for check, resource in findings(checkov, rendered, "kubernetes")
             if resource == "Deployment.topoctl-system.topoctl"}  # fmt: skip
    assert {"CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_28"} <= found


HADOLINT = Path(sys.executable).parent / "hadolint"


@pytest.mark.skipif(not HADOLINT.exists(), reason=f"hadolint is not next to {sys.executable}")
def test_hadolint_is_clean() -> None:
    result = _run(HADOLINT, "--no-color", DOCKERFILE)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_image_builds_a_wheel_and_runs_it_as_a_numeric_user() -> None:
    lines = [ln.strip() for ln in DOCKERFILE.read_text().splitlines() if ln.strip()]
    stages = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(stages) == 2 and stages[0].endswith(" AS builder")
    final = lines[lines.index(stages[1]) :]
    assert not any(ln.startswith(("COPY reconciler", "COPY pyproject")) for ln in final)
    assert "COPY --from=builder /dist/ /tmp/dist/" in final
    assert any("git openssh-client" in ln for ln in final)
    user = next(ln for ln in final if ln.startswith("USER "))
    assert all(part.isdigit() and int(part) > 0 for part in user[5:].split(":"))
    assert final[-1] == 'ENTRYPOINT ["topoctl"]'  # exec form: no shell
    assert not any(ln.startswith("HEALTHCHECK") for ln in lines)
