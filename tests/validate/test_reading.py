"""Reading the tree: what is not a regular file, loops, I/O errors, limits - never a crash.

Each case runs the real ``topoctl`` (a subprocess where the crash handler, a hang or
the process's own output matter): a clear message naming the file, exit 1 for an
error, no traceback, no "internal error", and never a hang.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.adapters import files as files_adapter
from reconciler.core.loading.yamlstrict import MAX_FILE_BYTES
from tests.validate.support import (
    EXIT_INVALID,
    EXIT_VALID,
    SITES,
    TOPOCTL,
    invoke,
    site,
    validate_json,
    write_tree,
)

KEEPALIVE = "  persistentKeepalive: 25"
VALID = site(KEEPALIVE)


def run(*args: str, cwd: Path, user: int | None = None) -> subprocess.CompletedProcess[str]:
    """``topoctl <args>`` as a process, as ``user`` when given; it must end within 60 s."""
    command = [str(TOPOCTL), *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream and "internal error" not in stream, stream
    return result


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(os.mkfifo, id="fifo"),
        pytest.param(lambda p: socket.socket(socket.AF_UNIX).bind(str(p)), id="socket"),
        pytest.param(lambda p: os.symlink("/dev/null", p), id="symlink-to-a-device-outside"),
    ],
)
def test_non_regular_files_are_skipped_with_a_warning(workdir: Path, make: object) -> None:
    write_tree(workdir / SITES, {"a.yaml": VALID})
    special = workdir / SITES / "z.yaml"
    make(special)  # type: ignore[operator]
    result = run("validate", SITES, "--format", "json", cwd=workdir)  # a FIFO used to block here
    assert result.returncode == EXIT_VALID, result.stdout + result.stderr
    assert '"file": "sites/z.yaml"' in result.stdout
    assert "not followed" in result.stdout or "not a regular file: skipped" in result.stdout


def test_a_fifo_names_its_kind(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": VALID})
    os.mkfifo(workdir / SITES / "pipe.yml")
    report = validate_json(SITES)
    assert report.exit_code == EXIT_VALID
    assert [(w["file"], w["code"], w["message"]) for w in report.warnings] == [
        ("sites/pipe.yml", "not-a-file", "a FIFO, not a regular file: skipped")
    ]


def test_a_fifo_given_as_the_topology_is_skipped_too(workdir: Path) -> None:
    os.mkfifo(workdir / "only.yaml")
    result = run("validate", "only.yaml", cwd=workdir)
    assert "only.yaml: warning: a FIFO, not a regular file: skipped" in result.stdout


@pytest.mark.parametrize(
    ("links", "broken"),
    [
        pytest.param({"a.yaml": "a.yaml"}, ["a.yaml"], id="to-itself"),
        pytest.param({"a.yaml": "b.yaml", "b.yaml": "a.yaml"}, ["a.yaml", "b.yaml"], id="pair"),
        pytest.param(
            {"a.yaml": "b.yml", "b.yml": "c.yaml", "c.yaml": "a.yaml"},
            ["a.yaml", "b.yml", "c.yaml"],
            id="ring-of-three",
        ),
        pytest.param({"d/x.yaml": "../d/x.yaml"}, ["d/x.yaml"], id="in-a-subdirectory"),
    ],
)
def test_symlink_loops_are_errors_naming_the_file(
    workdir: Path, links: dict[str, str], broken: list[str]
) -> None:
    write_tree(workdir / SITES, {"ok.yaml": VALID})
    for name, target in links.items():
        (workdir / SITES / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / SITES / name).symlink_to(target)
    report = validate_json(SITES)
    assert report.exit_code == EXIT_INVALID
    assert [(e["file"], e["code"]) for e in report.errors] == [
        (f"{SITES}/{name}", "symlink-loop") for name in broken
    ]
    assert all("symlink loop" in e["message"] for e in report.errors)
    assert report.data["files"] == len(broken) + 1
    text = run("validate", SITES, cwd=workdir)
    assert text.returncode == EXIT_INVALID
    assert f"{SITES}/{broken[0]}: error: symlink loop" in text.stdout


def test_the_topology_argument_itself_a_symlink_loop(workdir: Path) -> None:
    (workdir / "loop.yaml").symlink_to("loop.yaml")
    result = run("validate", "loop.yaml", cwd=workdir)
    assert result.returncode == EXIT_INVALID
    assert "loop.yaml: error: symlink loop" in result.stdout


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="topoctl-io-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


NOBODY = 65534
needs_root_to_drop = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="runs topoctl as another user (needs root and setpriv)",
)


@needs_root_to_drop
def test_unreadable_files_and_directories_are_errors(shared_dir: Path) -> None:
    tree = write_tree(
        shared_dir / SITES,
        {"a.yaml": VALID, "secret.yaml": site(KEEPALIVE, name="core"), "locked/c.yaml": VALID},
    )
    for path in (tree, tree / "a.yaml", tree / "locked", tree / "locked" / "c.yaml"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (tree / "secret.yaml").chmod(0o600)
    (tree / "locked").chmod(0o700)
    result = run("validate", SITES, cwd=shared_dir, user=NOBODY)
    assert result.returncode == EXIT_INVALID, result.stdout + result.stderr
    assert f"{SITES}/secret.yaml: error: cannot read: Permission denied" in result.stdout
    assert f"{SITES}/locked: error: cannot read: Permission denied" in result.stdout
    assert "invalid: 2 errors in 3 file(s)" in result.stdout


def test_output_that_cannot_be_written_is_a_clear_error(workdir: Path) -> None:
    write_tree(workdir / SITES, {"a.yaml": VALID})
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [str(TOPOCTL), "validate", SITES],
            cwd=workdir,
            check=False,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert result.returncode == EXIT_INVALID
    assert result.stderr.strip() == "topoctl: error: writing the output: No space left on device"


def test_more_files_than_the_limit_is_invalid_input_exit_1(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files_adapter, "MAX_FILES", 3)
    write_tree(workdir / SITES, {f"s{i}.yaml": site(KEEPALIVE, name=f"s{i}") for i in range(4)})
    report = validate_json(SITES)
    assert report.exit_code == EXIT_INVALID
    assert [(e["file"], e["code"]) for e in report.errors] == [(SITES, "file-count")]
    assert "more than 3 topology files under sites" in report.errors[0]["message"]
    text = invoke("validate", SITES)
    assert text.exit_code == EXIT_INVALID
    (workdir / SITES / "s3.yaml").unlink()  # at the limit: read
    assert validate_json(SITES).exit_code == EXIT_VALID


def test_more_files_than_the_limit_at_the_real_limit(workdir: Path) -> None:
    tree = workdir / SITES
    tree.mkdir()
    for i in range(files_adapter.MAX_FILES + 1):
        (tree / f"{i:05d}.yaml").write_bytes(b"")
    result = run("validate", SITES, cwd=workdir)
    assert result.returncode == EXIT_INVALID
    assert f"{SITES}: error: more than 5000 topology files" in result.stdout


@pytest.mark.parametrize("count", [1, 2])
def test_an_oversized_file_is_counted(workdir: Path, count: int) -> None:
    big = {f"big{i}.yaml": "#" * (MAX_FILE_BYTES + 1) for i in range(count)}
    write_tree(workdir / SITES, {**big, "a.yaml": VALID})
    result = invoke("validate", SITES)
    assert result.exit_code == EXIT_INVALID
    plural = "s" * (count != 1)
    assert f"invalid: {count} error{plural} in {count + 1} file(s)" in result.stdout
    assert validate_json(SITES).data["files"] == count + 1
