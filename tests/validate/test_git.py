"""`topoctl validate --rev`: the topology as committed, read from a real git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.validate.support import (
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    SITES,
    E,
    assert_reported,
    invoke,
    site,
    validate_json,
    write_tree,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="the git command is missing")

GOOD = site(
    "  persistentKeepalive: 25", "  nodes:", "    - name: gw", "      endpoint: 203.0.113.1"
)
BAD = GOOD.replace("203.0.113.1", "127.0.0.1")  # line 9, column 17


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with no user or system configuration leaking in."""
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit(repo: Path, message: str, *paths: str) -> str:
    git(repo, "add", "--", *paths)
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(workdir: Path) -> Path:
    git(workdir, "init", "--quiet", "--initial-branch=main")
    git(workdir, "config", "user.name", "Topology Test")
    git(workdir, "config", "user.email", "topology-test@example.com")
    git(workdir, "config", "commit.gpgsign", "false")
    return workdir


def test_each_revision_is_validated_as_committed(repo: Path) -> None:
    write_tree(repo / SITES, {"edge.yaml": GOOD})
    good = commit(repo, "good", SITES)
    write_tree(repo / SITES, {"edge.yaml": BAD})
    bad = commit(repo, "bad", SITES)
    write_tree(repo / SITES, {"edge.yaml": GOOD})  # the working tree is fine again

    at_bad = validate_json(SITES, "--rev", bad)
    assert at_bad.exit_code == EXIT_INVALID
    assert_reported(
        at_bad.errors,
        [E(9, 17, "spec.nodes[0].endpoint", "127.0.0.1 is a loopback address", "edge.yaml")],
        "errors",
    )
    for rev in (good, "HEAD~1", "main~1"):
        at_good = validate_json(SITES, "--rev", rev)
        assert (at_good.exit_code, at_good.errors) == (EXIT_VALID, []), rev
    assert validate_json(SITES).exit_code == EXIT_VALID
    assert validate_json(SITES, "--rev", "HEAD").exit_code == EXIT_INVALID


def test_uncommitted_changes_are_not_read(repo: Path) -> None:
    write_tree(repo / SITES, {"edge.yaml": GOOD})
    commit(repo, "good", SITES)
    write_tree(repo / SITES, {"edge.yaml": BAD, "new.yaml": "not: [valid"})
    assert validate_json(SITES, "--rev", "HEAD").exit_code == EXIT_VALID
    assert validate_json(SITES).exit_code == EXIT_INVALID


def test_a_directory_missing_at_the_revision_is_a_usage_error(repo: Path) -> None:
    write_tree(repo / SITES, {"edge.yaml": GOOD})
    first = commit(repo, "sites", SITES)
    write_tree(repo / "staging", {"edge.yaml": GOOD})
    commit(repo, "staging", "staging")

    result = invoke("validate", "staging", "--rev", first)
    assert result.exit_code == EXIT_USAGE
    assert f"staging: does not exist at revision {first}" in result.stderr
    assert invoke("validate", "staging", "--rev", "HEAD").exit_code == EXIT_VALID


@pytest.mark.parametrize(
    "rev", ["no-such-branch", "HEAD~5", "0" * 40, "deadbeef", "--", "main..HEAD", "HEAD:sites"]
)
def test_a_bad_revision_is_a_usage_error(repo: Path, rev: str) -> None:
    write_tree(repo / SITES, {"edge.yaml": GOOD})
    commit(repo, "good", SITES)
    result = invoke("validate", SITES, f"--rev={rev}")
    assert result.exit_code == EXIT_USAGE, result.output
    assert f"topoctl: error: revision {rev!r}: no such revision" in result.stderr


def test_rev_outside_a_repository_is_a_usage_error(workdir: Path) -> None:
    write_tree(workdir / SITES, {"edge.yaml": GOOD})
    result = invoke("validate", SITES, "--rev", "HEAD")
    assert result.exit_code == EXIT_USAGE
    assert "not inside a git repository" in result.stderr


def test_committed_symlinks_leading_outside_are_not_followed(repo: Path) -> None:
    write_tree(repo, {f"{SITES}/edge.yaml": GOOD, "private/secret.yaml": "kind: [not, valid\n"})
    (repo / SITES / "secret.yaml").symlink_to(Path("..", "private", "secret.yaml"))
    (repo / SITES / "escape.yaml").symlink_to(Path("..", "..", "etc", "passwd.yaml"))
    (repo / SITES / "same.yaml").symlink_to(Path("edge.yaml"))  # inside: followed
    rev = commit(repo, "links", SITES, "private")
    assert git(repo, "ls-tree", rev, f"{SITES}/secret.yaml").startswith("120000 ")

    report = validate_json(SITES, "--rev", rev)
    assert sorted((w["file"], w["code"]) for w in report.warnings) == [
        (f"{SITES}/escape.yaml", "symlink-outside"),
        (f"{SITES}/secret.yaml", "symlink-outside"),
    ]
    # same.yaml is edge.yaml again: followed, so the site is defined twice.
    assert [(e["file"], e["code"]) for e in report.errors] == [
        (f"{SITES}/same.yaml", "site-unique")
    ]


def test_oversized_committed_file_is_refused(repo: Path) -> None:
    write_tree(repo / SITES, {"edge.yaml": GOOD + "# " + "x" * (1024 * 1024) + "\n"})
    rev = commit(repo, "big", SITES)
    report = validate_json(SITES, "--rev", rev)
    assert report.exit_code == EXIT_INVALID
    assert [(e["file"], e["line"], e["code"]) for e in report.errors] == [
        (f"{SITES}/edge.yaml", 0, "file-size")
    ]
    assert "at most 1048576 bytes (1 MiB)" in report.errors[0]["message"]
