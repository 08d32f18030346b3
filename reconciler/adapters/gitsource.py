"""Read the topology at a git revision, from the object database, without a checkout."""

from __future__ import annotations

import posixpath
from pathlib import Path

import git

from reconciler.adapters.files import MAX_FILES, SUFFIXES, SourceError
from reconciler.core.diagnostics import Diagnostic
from reconciler.core.load import SourceFile
from reconciler.core.yamldoc import MAX_FILE_BYTES, too_large

SYMLINK_MODE = 0o120000


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
            raise SourceError(f"{shown}: more than {MAX_FILES} topology files at {rev}")
    files.sort(key=lambda f: f.path)
    return files, notes
