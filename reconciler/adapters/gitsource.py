"""Read the topology at a git revision, from the object database, without a checkout.

``read_revision`` serves ``validate --rev`` in a working copy; :class:`GitRemote` is the
controller's :class:`~reconciler.ports.GitSource`: a bare clone in a cache directory,
fetched on demand, with credentials taken from files (see ``reconciler.adapters.gitauth``).
"""

from __future__ import annotations

import posixpath
import shutil
import threading
from pathlib import Path

import git

from reconciler.adapters.files import MAX_FILES, SUFFIXES, SourceError, too_many_files
from reconciler.adapters.gitauth import Credentials, Scrubber
from reconciler.core.loading.load import SourceFile
from reconciler.core.loading.yamlerrors import too_large
from reconciler.core.loading.yamlstrict import MAX_FILE_BYTES
from reconciler.model.diagnostics import Diagnostic
from reconciler.ports import SourceUnavailableError

SYMLINK_MODE = 0o120000
FETCHED = "refs/topoctl/fetched"  # where each fetch puts the commit --git-ref names
BOILERPLATE = ("Please make sure you have", "and the repository exists")
MAX_DETAIL = 500  # characters of git's own message kept
FETCH_TIMEOUT = 120.0  # seconds: a fetch that hangs longer is killed and counts as failed


def read_revision(directory: Path, rev: str) -> tuple[list[SourceFile], list[Diagnostic]]:
    """Topology files under ``directory`` as they are in commit ``rev`` of its repository."""
    try:
        repo = git.Repo(directory, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise SourceError(
            f"{directory}: not inside a git repository (needed to read revision {rev!r})"
        ) from None
    with repo:
        try:
            # A well-formed SHA that is not in the repository only fails once the
            # commit's objects are read: read the tree here, inside the try.
            tree = repo.commit(rev).tree
        except (git.BadName, git.BadObject, ValueError):
            raise SourceError(f"revision {rev!r}: no such revision in {repo.working_dir}") from None
        top = Path(repo.working_dir).resolve()
        try:
            sub = directory.resolve().relative_to(top).as_posix()
        except ValueError:
            raise SourceError(f"{directory} is not inside {top}") from None
        sub = "" if sub == "." else sub
        return _collect(tree, sub, str(directory), rev)


def _collect(
    tree: git.Tree, sub: str, shown: str, rev: str
) -> tuple[list[SourceFile], list[Diagnostic]]:
    try:
        base = tree / sub if sub else tree
    except KeyError:
        raise SourceError(f"{shown}: does not exist at revision {rev}") from None
    files: list[SourceFile] = []
    notes: list[Diagnostic] = []
    if isinstance(base, git.Blob):
        return [SourceFile(shown, base.data_stream.read())], []
    for item in base.traverse():
        if not isinstance(item, git.Blob) or not str(item.path).endswith(SUFFIXES):
            continue
        rel = posixpath.relpath(item.path, sub) if sub else item.path
        display = posixpath.join(shown, rel)
        blob: git.Blob = item
        if item.mode == SYMLINK_MODE:
            target = posixpath.normpath(
                posixpath.join(posixpath.dirname(item.path), item.data_stream.read().decode())
            )
            if (
                target.startswith("../")
                or target == ".."
                or (sub and not (target + "/").startswith(sub + "/"))
            ):
                notes.append(
                    Diagnostic(
                        display,
                        0,
                        0,
                        "warning",
                        "",
                        f"symlink to {target} leads outside {shown}: not followed",
                        "symlink-outside",
                    )
                )
                continue
            try:
                found = tree / target
            except KeyError:
                found = None
            if not isinstance(found, git.Blob):
                notes.append(
                    Diagnostic(
                        display,
                        0,
                        0,
                        "warning",
                        "",
                        f"dangling symlink to {target}",
                        "symlink-dangling",
                    )
                )
                continue
            blob = found
        if blob.size > MAX_FILE_BYTES:
            notes.append(too_large(display, blob.size))
            continue
        files.append(SourceFile(display, blob.data_stream.read()))
        if len(files) > MAX_FILES:
            return [], [too_many_files(shown, f" at {rev}")]
    files.sort(key=lambda f: f.path)
    return files, notes


class GitRemote:
    """A git remote's ``ref``, read under ``path``: bare clone in ``cache_dir``, one fetch
    at a time. The URL is never stored in the clone's config (it may carry userinfo)."""

    def __init__(
        self,
        url: str,
        cache_dir: Path,
        *,
        ref: str = "main",
        path: str = "sites",
        credentials: Credentials | None = None,
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.url = url
        self.ref = ref
        self.path = path.strip("/")
        self.credentials = credentials or Credentials()
        self.credentials.check(url)
        self._hide = Scrubber(url, self.credentials)
        self.cache = cache_dir / "git"
        self.timeout = timeout
        self._lock = threading.Lock()
        self._repo: git.Repo | None = None

    def describe(self) -> str:
        """``URL (ref R, path P)`` with any userinfo removed from the URL."""
        return self._hide(f"{self.url} (ref {self.ref}, path {self.path or '.'})")

    def fetch(self) -> str:
        """Fetch ``ref`` from the remote; the full sha of the commit it names."""
        with self._lock:
            repo = self._open()
            env = self.credentials.environment(self.url)
            try:
                repo.git.fetch(
                    "--no-tags",
                    "--force",
                    "--quiet",
                    "--",
                    self.url,
                    f"+{self.ref}:{FETCHED}",
                    env=env,
                    kill_after_timeout=self.timeout,
                )
                return str(repo.git.rev_parse("--verify", f"{FETCHED}^{{commit}}"))
            except git.CommandError as err:  # a failed command, or no git binary at all
                raise SourceUnavailableError(self._explain("fetch", err)) from None

    def read(self, revision: str) -> tuple[list[SourceFile], list[Diagnostic]]:
        """The files under ``path`` at ``revision``; a missing path is an error note."""
        with self._lock:
            repo = self._open()
            try:
                tree = repo.commit(revision).tree
                return _collect(tree, self.path, self.path or ".", revision)
            except SourceError as err:  # the revision's own content: refuse the revision
                return [], [Diagnostic(self.path or ".", 0, 0, "error", "", str(err), "source")]
            except (git.BadName, git.BadObject, git.GitError, ValueError, OSError) as err:
                raise SourceUnavailableError(
                    f"{self.describe()}: cannot read revision {revision}: {type(err).__name__}"
                ) from None

    def _open(self) -> git.Repo:
        """The bare clone, made (or made again, when it is not one) on first use."""
        if self._repo is not None:
            return self._repo
        try:
            try:
                repo = git.Repo(self.cache)
                if not repo.bare:
                    raise git.InvalidGitRepositoryError(str(self.cache))
            except (git.InvalidGitRepositoryError, git.NoSuchPathError):
                shutil.rmtree(self.cache, ignore_errors=True)
                self.cache.mkdir(parents=True)
                repo = git.Repo.init(self.cache, bare=True)
        except (OSError, git.GitError) as err:
            raise SourceUnavailableError(
                f"cache {self.cache}: cannot make a clone: {type(err).__name__}: {err}"
            ) from None
        self._repo = repo
        return repo

    def _explain(self, verb: str, err: git.CommandError) -> str:
        # The command line and stderr may carry the URL with its userinfo, and the remote
        # may echo a secret bare: scrub the text (before cutting it, so no half secret is
        # left), and never pass the exception (or its text) on.
        stderr = str(err.stderr or "").strip()
        stderr = stderr.removeprefix("stderr:").strip().strip("'")
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        told = [line for line in lines if not line.startswith(BOILERPLATE)]
        detail = self._hide("; ".join(told or [f"exit status {err.status}"]))
        return f"git {verb} from {self.describe()} failed: {detail[:MAX_DETAIL]}"
