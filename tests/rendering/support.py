"""What the rendering tests share: a synthetic cluster in a git repository whose last
commit changes some sites (``plan --base HEAD~1``), and the plan CLI run against it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from click.testing import CliRunner

from bench.nodegen import site_name, write_cluster
from reconciler.cli import main

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/bin:/bin",
}


def git(directory: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(directory), *args],
        check=True, capture_output=True, text=True, env=GIT_ENV, timeout=60,
    ).stdout  # fmt: skip


def changed_cluster(directory: Path, nodes: int, sites: int, changed: int) -> Path:
    """nodegen's cluster committed, then a second commit that lowers the keepalive of the
    first ``changed`` sites (a pull request's head, its base HEAD~1); the snapshot path."""
    sites_dir, snapshot = write_cluster(directory, nodes, sites)
    git(directory, "init", "-q", "-b", "main")
    git(directory, "add", "sites")
    git(directory, "commit", "-qm", "the topology")
    for index in range(changed):
        path = sites_dir / f"{site_name(index)}.yaml"
        text = path.read_text().replace("persistentKeepalive: 25", "persistentKeepalive: 10")
        path.write_text(text)
    if changed:
        git(directory, "commit", "-qam", "a shorter keepalive")
    return snapshot


def plan_output(directory: Path, *args: str) -> tuple[int, str]:
    """``topoctl plan sites --cluster nodes.json ARGS`` in ``directory``."""
    result = CliRunner(env={"NO_COLOR": "1", "COLUMNS": None}).invoke(
        main,
        ["plan", str(directory / "sites"), "--cluster", str(directory / "nodes.json"), *args],
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout
