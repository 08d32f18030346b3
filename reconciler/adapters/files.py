"""Read the topology from a directory: every *.yaml / *.yml below it, sorted by path."""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.core.diagnostics import Diagnostic
from reconciler.core.load import SourceFile
from reconciler.core.yamldoc import MAX_FILE_BYTES, too_large

SUFFIXES = (".yaml", ".yml")
MAX_FILES = 5000


class SourceError(Exception):
    """The topology could not be read at all (missing directory, bad revision...)."""


def read_directory(root: Path) -> tuple[list[SourceFile], list[Diagnostic]]:
    """Files under ``root``; symlinks that lead outside it are reported, not followed."""
    if not root.exists():
        raise SourceError(f"{root}: no such directory")
    if root.is_file():
        single = _read(root)
        return ([single], []) if isinstance(single, SourceFile) else ([], [single])
    real_root = root.resolve()
    files: list[SourceFile] = []
    notes: list[Diagnostic] = []
    seen_dirs: set[Path] = set()

    def unreadable(err: OSError) -> None:
        notes.append(_cannot_read(Path(err.filename or root), err))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unreadable):
        here = Path(dirpath)
        real_here = here.resolve()
        if real_here in seen_dirs or not real_here.is_relative_to(real_root):
            dirnames[:] = []
            if not real_here.is_relative_to(real_root):
                notes.append(_outside(here, root))
            continue
        seen_dirs.add(real_here)
        dirnames.sort()
        for name in sorted(filenames):
            path = here / name
            if not name.endswith(SUFFIXES):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                notes.append(_outside(path, root))
                continue
            read = _read(path)
            if isinstance(read, SourceFile):
                files.append(read)
            else:
                notes.append(read)
            if len(files) > MAX_FILES:
                raise SourceError(f"{root}: more than {MAX_FILES} topology files")
    files.sort(key=lambda f: f.path)
    return files, notes


def _read(path: Path) -> SourceFile | Diagnostic:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # refused without reading it
            return too_large(str(path), size)
        return SourceFile(str(path), path.read_bytes())
    except OSError as err:
        if path.is_symlink() and not path.exists():
            return Diagnostic(
                str(path),
                0,
                0,
                "warning",
                "",
                f"dangling symlink to {os.readlink(path)}",
                "symlink-dangling",
            )
        return _cannot_read(path, err)


def _cannot_read(path: Path, err: OSError) -> Diagnostic:
    return Diagnostic(str(path), 0, 0, "error", "", f"cannot read: {err.strerror}", "read")


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
