"""A mounted directory as a :class:`~reconciler.ports.GitSource` (``--source-dir``).

For a git-sync sidecar or a ConfigMap volume. Its revision is a content hash of the
files read (paths relative to the directory, and their bytes), so it is the same on
every read of the same content and changes with any file.

The directory is read as ``validate`` reads one (:func:`read_directory`, which skips
hidden directories: a ConfigMap volume's ``..data`` and ``..<timestamp>/`` copies).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from reconciler.adapters.files import SourceError, read_directory
from reconciler.core.loading.load import SourceFile
from reconciler.model.diagnostics import Diagnostic
from reconciler.ports import SourceUnavailableError

PREFIX = "sha256:"


def content_hash(root: Path, files: list[SourceFile], notes: list[Diagnostic]) -> str:
    """``sha256:<hex>`` over each file's relative path and content, and the notes."""
    digest = hashlib.sha256()
    for item in sorted(files, key=lambda f: f.path):
        rel = Path(item.path).relative_to(root).as_posix() if item.path != str(root) else "."
        for part in (rel.encode(), item.content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    for note in notes:
        text = f"{note.file}\0{note.severity}\0{note.message}".encode()
        digest.update(len(text).to_bytes(8, "big"))
        digest.update(text)
    return PREFIX + digest.hexdigest()


class DirectorySource:
    """Reads ``root`` on every fetch; ``read`` hands back what the fetch read."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._last: tuple[str, list[SourceFile], list[Diagnostic]] | None = None

    def describe(self) -> str:
        """The directory."""
        return str(self.root)

    def fetch(self) -> str:
        """Read the directory; its content hash."""
        try:
            files, notes = read_directory(self.root)
        except SourceError as err:
            raise SourceUnavailableError(str(err)) from None
        revision = content_hash(self.root, files, notes)
        with self._lock:
            self._last = (revision, files, notes)
        return revision

    def read(self, revision: str) -> tuple[list[SourceFile], list[Diagnostic]]:
        """The files of the fetch that returned ``revision``."""
        with self._lock:
            last = self._last
        if last is None or last[0] != revision:
            raise SourceUnavailableError(
                f"{self.root}: revision {revision} is not the content read last"
            )
        return last[1], last[2]
