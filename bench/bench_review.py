"""How large the review of a change is: the markdown comment and the terminal plan.

Two synthetic clusters (bench/nodegen.py), fresh (Kilo runs, topoctl never did, so every
node changes), each in a git repository whose last commit lowers the keepalive of three
sites (``plan --base HEAD~1``): 200 nodes in 10 sites, and 5,000 nodes in 100 sites.
Prints the comment's size against GitHub's 65,536 and what it left out, and the lines
and bytes of the terminal plan. Run from the repository: `.venv/bin/python
bench/bench_review.py`. Figures only; the limits are asserted in tests/rendering.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.nodegen import site_name, write_cluster

TOPOCTL = Path(sys.executable).with_name("topoctl")
ENV = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com", "GIT_COMMITTER_NAME": "b",
       "GIT_COMMITTER_EMAIL": "b@example.com", "PATH": "/usr/bin:/bin"}  # fmt: skip


def cluster(directory: Path, nodes: int, sites: int) -> None:
    sites_dir, _ = write_cluster(directory, nodes, sites)

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(directory), *args], check=True, env=ENV)

    git("init", "-q", "-b", "main")
    git("add", "sites")
    git("commit", "-qm", "base")
    for index in range(3):
        path = sites_dir / f"{site_name(index)}.yaml"
        path.write_text(path.read_text().replace("Keepalive: 25", "Keepalive: 10"))
    git("commit", "-qam", "three sites change")


def plan(directory: Path, *args: str) -> str:
    argv = [str(TOPOCTL), "plan", str(directory / "sites"), "--cluster",
            str(directory / "nodes.json"), *args]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def main() -> None:
    for nodes, sites in ((200, 10), (5000, 100)):
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            cluster(directory, nodes, sites)
            body = plan(directory, "--base", "HEAD~1", "--format", "markdown")
            text = plan(directory)
            left = re.search(r"\*\*Left out to fit in one comment\*\*: (.*)", body)
            print(
                f"{nodes} nodes, {sites} sites, 3 changed: comment {len(body.encode()):,} "
                f"bytes of 65,536; left out: {left.group(1) if left else 'nothing'}"
            )
            print(
                f"{nodes} nodes: terminal plan {len(text.splitlines()):,} lines, "
                f"{len(text.encode()):,} bytes"
            )


if __name__ == "__main__":
    main()
