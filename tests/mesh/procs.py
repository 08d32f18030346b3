"""The processes a mesh runs (wireguard-go, kg, topoctl), each with its own log file.

A process starts in a session of its own (a terminal's Ctrl-C reaches the harness, which
stops them in order, not all at once) and is stopped by its pid: SIGTERM, a grace
period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path


class Proc:
    """One supervised process; `log` holds its stdout and stderr."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        """Start (or start again) the process, appending to its log."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        """Whether it was started and has not exited."""
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        """Its pid while it runs."""
        return self.popen.pid if self.running and self.popen is not None else None

    def send(self, sig: signal.Signals) -> None:
        """Send `sig` if it runs."""
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)

    def wait(self, timeout: float) -> int | None:
        """Its exit status, or None if it still runs after `timeout` seconds."""
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 5.0, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Signal it, wait up to `grace` seconds, then SIGKILL; its exit status."""
        if self.popen is None:
            return None
        self.send(sig)
        status = self.wait(grace)
        if status is None:
            self.send(signal.SIGKILL)
            status = self.wait(5.0)
        return status

    def tail(self, lines: int = 20) -> str:
        """The end of its log (for failure messages)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def stop_all(procs: Sequence[Proc], grace: float = 5.0) -> None:
    """SIGTERM every running process at once, then wait for each (SIGKILL after `grace`)."""
    for proc in procs:
        proc.send(signal.SIGTERM)
    for proc in procs:
        proc.stop(grace)
