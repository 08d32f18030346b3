"""Read the topology from a directory: every *.yaml / *.yml below it, sorted by path.

Only regular files are read: a FIFO, socket or device named ``*.yaml`` is skipped with a
warning (opening a FIFO would block for ever). Symlinks inside the directory are
followed, those that lead outside it are reported, and a symlink loop is an error that
names the file. Nothing here raises for what is in the directory: every problem is a
diagnostic naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from reconciler.core.loading.load import SourceFile
from reconciler.core.loading.yamlerrors import too_large
from reconciler.core.loading.yamlstrict import MAX_FILE_BYTES
from reconciler.model.diagnostics import Diagnostic

SUFFIXES = (".yaml", ".yml")
MAX_FILES = 5000
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
}


class SourceError(Exception):
    """The topology could not be read at all (missing directory, bad revision...)."""


def too_many_files(shown: str, where: str = "") -> Diagnostic:
    """The error for a tree of more than :data:`MAX_FILES` topology files (none is read)."""
    return Diagnostic(
        shown,
        0,
        0,
        "error",
        "",
        f"more than {MAX_FILES} topology files{where}: topoctl reads at most {MAX_FILES} "
        "- is this the right directory?",
        "file-count",
    )


def read_directory(root: Path) -> tuple[list[SourceFile], list[Diagnostic]]:
    """Files under ``root``; symlinks that lead outside it are reported, not followed."""
    if not root.exists():
        if root.is_symlink():
            return [], [_loop_or_dangling(root)]
        raise SourceError(f"{root}: no such directory")
    if not root.is_dir():
        single = _read(root)
        return ([single], []) if isinstance(single, SourceFile) else ([], [single])
    real_root = Path(os.path.realpath(root))
    candidates: list[Path] = []
    notes: list[Diagnostic] = []
    seen_dirs: set[str] = set()

    def unreadable(err: OSError) -> None:
        notes.append(_cannot_read(Path(err.filename or root), err))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unreadable):
        here = Path(dirpath)
        real_here = os.path.realpath(here)
        inside = _inside(real_here, real_root)
        if real_here in seen_dirs or not inside:
            dirnames[:] = []
            if not inside:
                notes.append(_outside(here, root))
            continue
        seen_dirs.add(real_here)
        # Hidden directories are not topology: .git, and the ..data / ..<timestamp>
        # copies a ConfigMap volume holds beside the links to them (each file once).
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = here / name
            if not name.endswith(SUFFIXES):
                continue
            target = os.path.realpath(path)
            if path.is_symlink() and path.exists() and not _inside(target, real_root):
                notes.append(_outside(path, root))
                continue
            candidates.append(path)
            if len(candidates) > MAX_FILES:
                return [], [too_many_files(str(root), f" under {root}")]
    files: list[SourceFile] = []
    for path in candidates:
        read = _read(path)
        if isinstance(read, SourceFile):
            files.append(read)
        else:
            notes.append(read)
    files.sort(key=lambda f: f.path)
    return files, notes


def _inside(real: str, real_root: Path) -> bool:
    return Path(real).is_relative_to(real_root)


def _read(path: Path) -> SourceFile | Diagnostic:
    """The file's bytes, or why not.

    The type is checked before opening (a socket cannot be opened) and again on the open
    file, which is opened non-blocking: a FIFO put there in between never blocks the read.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return _not_a_file(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        if err.errno == errno.ELOOP or (path.is_symlink() and not path.exists()):
            return _loop_or_dangling(path)
        return _cannot_read(path, err)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _not_a_file(path, info.st_mode)
        if info.st_size > MAX_FILE_BYTES:  # refused without reading it
            return too_large(str(path), info.st_size)
        with os.fdopen(os.dup(fd), "rb") as stream:
            content = stream.read(MAX_FILE_BYTES + 1)
        if len(content) > MAX_FILE_BYTES:  # it grew while being read
            return too_large(str(path), len(content))
        return SourceFile(str(path), content)
    except OSError as err:
        return _cannot_read(path, err)
    finally:
        os.close(fd)


def _not_a_file(path: Path, mode: int) -> Diagnostic:
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    message = f"{kind}, not a regular file: skipped"
    return Diagnostic(str(path), 0, 0, "warning", "", message, "not-a-file")


def _loop_or_dangling(path: Path) -> Diagnostic:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return Diagnostic(
                str(path),
                0,
                0,
                "error",
                "",
                f"symlink loop (it points to {target}, which leads back to it): "
                "point it at a real file or remove it",
                "symlink-loop",
            )
    return Diagnostic(
        str(path), 0, 0, "warning", "", f"dangling symlink to {target}", "symlink-dangling"
    )


def _cannot_read(path: Path, err: OSError) -> Diagnostic:
    reason = err.strerror or str(err)
    return Diagnostic(str(path), 0, 0, "error", "", f"cannot read: {reason}", "read")


def _outside(path: Path, root: Path) -> Diagnostic:
    return Diagnostic(
        str(path),
        0,
        0,
        "warning",
        "",
        f"symlink to {os.path.realpath(path)} leads outside {root}: not followed",
        "symlink-outside",
    )
