"""The package builds as a wheel and an sdist (``python -m build``), versioned by its git
tag (setuptools-scm), with the JSON Schema inside; the wheel installs and reports that
version. Built from a copy of this tree in a fresh git repository tagged v9.8.7."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from reconciler.core.rendering.schema import topology_schema_text
from tests.rendering.support import git

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = "reconciler/data/topology.schema.json"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/ of a tagged copy of the tree (tracked and new files, as git lists them)."""
    tree = tmp_path_factory.mktemp("tree")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=60,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source, target = ROOT / name, tree / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(source.readlink())
        else:
            target.write_bytes(source.read_bytes())
    git(tree, "init", "-q", "-b", "main")
    git(tree, "add", ".")
    git(tree, "commit", "-qm", "release")
    git(tree, "tag", "v9.8.7")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tree / "dist"), "."],
        cwd=tree, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return tree / "dist"


def test_the_wheel_is_versioned_by_the_tag_and_holds_the_schema(built: Path) -> None:
    (wheel,) = built.glob("*.whl")
    assert wheel.name == "topoctl-9.8.7-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert SCHEMA in names and "reconciler/py.typed" in names
        assert archive.read(SCHEMA).decode() == topology_schema_text()  # the current one
        metadata = archive.read("topoctl-9.8.7.dist-info/METADATA").decode()
    assert "\nVersion: 9.8.7\n" in metadata
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_the_sdist_holds_the_schema_and_what_builds_the_wheel(built: Path) -> None:
    (sdist,) = built.glob("*.tar.gz")
    assert sdist.name == "topoctl-9.8.7.tar.gz"
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {"pyproject.toml", "schema/topology.schema.json", SCHEMA} <= names


def test_the_installed_wheel_reports_its_version(built: Path, tmp_path: Path) -> None:
    (wheel,) = built.glob("*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    # -S: not the editable install of this checkout, only what the wheel installed.
    probe = (
        f"import sys; sys.path.insert(0, {str(target)!r}); import importlib.resources as r; "
        "import reconciler; print(reconciler.__file__.startswith(sys.path[0])); "
        "print(reconciler.__version__); "
        "print(len((r.files('reconciler') / 'data/topology.schema.json').read_text()))"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        capture_output=True, text=True, check=True, timeout=60, cwd=tmp_path,
    ).stdout.split()  # fmt: skip
    assert out == ["True", "9.8.7", str(len(topology_schema_text()))]
