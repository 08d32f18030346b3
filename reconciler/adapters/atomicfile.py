"""Replace a file whole or not at all: a temporary file beside it, fsync, rename.

The write goes through a symlink to the file it points at (the link stays a link).
SIGINT and SIGTERM are held while the temporary file exists, so a signal leaves either
the old file or the new one and never a temporary file beside it; the held signal is
raised again once the file is in place (or the old one is back), for the caller to
report what was done.
"""

from __future__ import annotations

import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_held() -> Iterator[None]:
    """Delay SIGINT and SIGTERM until the block is done, then deliver the first one."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread receives signals in Python
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])


def write_atomic(path: Path, data: bytes) -> Path:
    """Replace the file ``path`` leads to with ``data``; returns the file written.

    The file keeps its permission bits (a new one gets 0666 less the umask). On any
    failure or exception the temporary file is removed and the old file is untouched.
    """
    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    with signals_held():
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), mode)
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
