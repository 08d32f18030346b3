"""Real git repositories for source tests: a bare remote and a working clone that pushes."""

from __future__ import annotations

from pathlib import Path

import git

CLUSTER = """\
apiVersion: topoctl.io/v1alpha1
kind: Cluster
metadata:
  name: test
spec:
  unassignedNodes: warn
"""

EAST = """\
apiVersion: topoctl.io/v1alpha1
kind: Site
metadata:
  name: east
spec:
  nodes:
    - name: east-gw-1
      endpoint: 203.0.113.91:51820
"""

BROKEN_EAST = """\
apiVersion: topoctl.io/v1alpha1
kind: Site
metadata:
  name: east
spec:
  nodes:
    - name: east-gw-1
      endpoint: 203.0.113.91:51820
      keepalive: often
"""


class Remote:
    """``remote.git`` (bare) and ``work`` (a clone that commits and pushes to it)."""

    def __init__(self, root: Path) -> None:
        self.path = root / "remote.git"
        git.Repo.init(self.path, bare=True, initial_branch="main")
        self.work = git.Repo.init(root / "work", initial_branch="main")
        with self.work.config_writer() as config:
            config.set_value("user", "name", "Test")
            config.set_value("user", "email", "test@example.com")
            config.set_value("commit", "gpgsign", "false")
        self.work.create_remote("origin", str(self.path))

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def push(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or, for None, delete) files, commit, push main; the new commit's sha."""
        root = Path(self.work.working_dir)
        for name, text in files.items():
            target = root / name
            if text is None:
                self.work.index.remove([name], working_tree=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            self.work.index.add([name])
        self.work.index.commit(message)
        self.work.git.push("origin", "HEAD:refs/heads/main")
        return self.work.head.commit.hexsha

    def tag(self, name: str) -> None:
        self.work.create_tag(name, message=f"release {name}")
        self.work.git.push("origin", f"refs/tags/{name}")
