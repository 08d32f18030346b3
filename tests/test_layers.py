"""Import contracts (pyproject.toml, import-linter): the core stays pure, the layers hold."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PURE = "The pure core and the models do no I/O"
LAYERS = "Layers: entry points, runtimes, use cases, adapters, ports, core, models"
CONCERNS = "Core concerns: rendering, lifecycle, planning, loading, the rest"

pytestmark = pytest.mark.skipif(
    not LINT_IMPORTS.exists(), reason=f"lint-imports is not installed next to {sys.executable}"
)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the ``reconciler`` package found in ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_the_contracts_forbid_io_in_the_core() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    [pure] = [c for c in config["tool"]["importlinter"]["contracts"] if c["name"] == PURE]
    assert set(pure["source_modules"]) == {"reconciler.model", "reconciler.core"}
    assert {"reconciler.adapters", "kubernetes", "pyroute2", "git", "socket"} <= set(
        pure["forbidden_modules"]
    )


def test_the_contracts_are_kept() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{PURE} KEPT" in result.stdout
    assert f"{LAYERS} KEPT" in result.stdout
    assert f"{CONCERNS} KEPT" in result.stdout
    assert "0 broken" in result.stdout


def test_a_core_module_doing_io_breaks_the_contracts(tmp_path: Path) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(
        REPO / "reconciler", tmp_path / "reconciler", ignore=shutil.ignore_patterns("__pycache__")
    )
    module = tmp_path / "reconciler" / "core" / "loading" / "yamlerrors.py"
    module.write_text(
        module.read_text(encoding="utf-8")
        + "\nimport socket\nfrom reconciler.adapters import files\n",
        encoding="utf-8",
    )
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert f"{PURE} BROKEN" in result.stdout
    assert f"{LAYERS} BROKEN" in result.stdout
    assert "reconciler.core.loading.yamlerrors -> socket" in result.stdout


ENTRY = "Only entry points import adapters: the rest receives ports"


def with_line(tmp_path: Path, module: str, line: str) -> Path:
    """A copy of the package where ``module`` (a path under reconciler/) gains ``line``."""
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(
        REPO / "reconciler", tmp_path / "reconciler", ignore=shutil.ignore_patterns("__pycache__")
    )
    path = tmp_path / "reconciler" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return tmp_path


def test_a_use_case_importing_an_adapter_breaks_the_entry_point_contract(tmp_path: Path) -> None:
    root = with_line(tmp_path, "usecases/plan.py", "from reconciler.adapters import snapshot")
    assert f"{ENTRY} KEPT" in lint_imports(REPO).stdout
    result = lint_imports(root)
    assert result.returncode != 0
    assert f"{ENTRY} BROKEN" in result.stdout
    assert "reconciler.usecases.plan -> reconciler.adapters.snapshot" in result.stdout


def test_only_the_controllers_wiring_imports_adapters(tmp_path: Path) -> None:
    wiring = (REPO / "reconciler" / "controller" / "wiring.py").read_text(encoding="utf-8")
    assert "from reconciler.adapters." in wiring  # allowed there, and only there
    root = with_line(tmp_path, "controller/loop.py", "from reconciler.adapters import snapshot")
    result = lint_imports(root)
    assert f"{ENTRY} BROKEN" in result.stdout
    assert "reconciler.controller.loop -> reconciler.adapters.snapshot" in result.stdout


def test_planning_reaching_up_to_rendering_breaks_the_core_concerns(tmp_path: Path) -> None:
    root = with_line(
        tmp_path, "core/planning/planner.py", "from reconciler.core.rendering import plans"
    )
    result = lint_imports(root)
    assert f"{CONCERNS} BROKEN" in result.stdout
    assert "reconciler.core.planning.planner -> reconciler.core.rendering.plans" in result.stdout


def test_adoption_reaching_up_to_rendering_breaks_the_core_concerns(tmp_path: Path) -> None:
    root = with_line(
        tmp_path, "core/adoption/adopt.py", "from reconciler.core.rendering import imported"
    )
    result = lint_imports(root)
    assert f"{CONCERNS} BROKEN" in result.stdout
    assert "reconciler.core.adoption.adopt -> reconciler.core.rendering.imported" in result.stdout
