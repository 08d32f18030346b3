"""``topoctl run``: the controller's wiring. Adapters in, the controller's parts started,
signals handled; nothing is decided here.

Threads: the source polls git (or a directory) and hands each new good revision to the
reconcile loop; the leader elector renews the Lease; the HTTP server serves metrics,
health and the webhook; the reconcile loop runs in the calling thread. SIGTERM or
SIGINT stops the loop after the write in flight, releases the lease and returns 0.
Losing the lease stops every write at once and returns 1, so the pod restarts.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from reconciler.adapters.dirsource import DirectorySource
from reconciler.adapters.gitauth import Credentials
from reconciler.adapters.gitsource import GitRemote
from reconciler.adapters.kube import KubeBackend
from reconciler.adapters.kubelease import KubeLease, discover_namespace
from reconciler.adapters.kubewatch import KubeWatcher
from reconciler.controller.http import Heartbeat, Hook, HttpServer
from reconciler.controller.leader import LeaderElector, SystemClock
from reconciler.controller.loop import LoopSettings, ReconcileLoop, Revision
from reconciler.controller.metrics import Metrics
from reconciler.controller.source import Good, Source
from reconciler.controller.webhook import read_secret
from reconciler.core.lease import Timing
from reconciler.ports import GitSource

log = logging.getLogger("topoctl.run")
STUCK_AFTER = 120.0  # seconds without a loop tick before /healthz fails


@dataclass(frozen=True)
class RunSettings:
    """Every flag of ``topoctl run``, parsed."""

    git_url: str | None = None
    git_ref: str = "main"
    git_path: str = "sites"
    source_dir: Path | None = None
    poll: float = 60.0
    webhook_secret_file: Path | None = None
    cache_dir: Path = Path("/var/cache/topoctl")
    credentials: Credentials = field(default_factory=Credentials)
    kubeconfig: Path | None = None
    context: str | None = None
    listen: str = "0.0.0.0:8080"
    lease_name: str = "topoctl"
    lease_namespace: str | None = None
    identity: str | None = None
    lease_duration: float = 15.0
    resync: float = 600.0
    dry_run: bool = False


def timing(lease_duration: float) -> Timing:
    """client-go's proportions (15 s / 10 s / 2 s) scaled to ``lease_duration``."""
    return Timing(
        lease_duration=lease_duration,
        renew_deadline=lease_duration * 2 / 3,
        retry_period=lease_duration * 2 / 15,
    )


def source_port(settings: RunSettings) -> GitSource:
    """The git remote, or the mounted directory."""
    if settings.source_dir is not None:
        return DirectorySource(settings.source_dir)
    assert settings.git_url is not None
    return GitRemote(
        settings.git_url,
        settings.cache_dir,
        ref=settings.git_ref,
        path=settings.git_path,
        credentials=settings.credentials,
    )


class Controller:
    """The parts of one ``topoctl run`` replica, wired."""

    def __init__(self, settings: RunSettings, backend: KubeBackend) -> None:
        self.settings = settings
        self.clock = SystemClock()
        self.metrics = Metrics()
        self.lost = threading.Event()
        namespace = settings.lease_namespace or discover_namespace(
            settings.kubeconfig, settings.context
        )
        identity = settings.identity or f"{socket.gethostname()}-{os.getpid()}"
        self.elector = LeaderElector(
            KubeLease(backend.api, settings.lease_name, namespace),
            identity,
            timing=timing(settings.lease_duration),
            on_lost=self._lost,
            on_started=lambda: self.metrics.leader.set(1),
        )
        self.heartbeat = Heartbeat(self.clock, STUCK_AFTER)
        self.loop = ReconcileLoop(
            KubeWatcher(backend),
            backend,
            may_write=self.elector.may_write,
            clock=self.clock,
            settings=LoopSettings(resync=settings.resync, dry_run=settings.dry_run),
        )
        self.loop.stats.observe = self._reconciled
        self.source = Source(
            source_port(settings),
            self.clock,
            poll=settings.poll,
            metrics=self.metrics,
            on_change=self._new_revision,
        )
        hook = None
        if settings.webhook_secret_file is not None:
            hook = Hook(read_secret(settings.webhook_secret_file), self.source.request_fetch)
        self.http = HttpServer(
            settings.listen, self.metrics.registry, live=self.heartbeat, ready=self.ready, hook=hook
        )

    def ready(self) -> bool:
        """Ready once the node cache is synced and a good revision is in force."""
        return self.loop.informer.synced.is_set() and self.source.good is not None

    def _new_revision(self, good: Good) -> None:
        log.info("revision %s in force", good.revision)
        self.metrics.revision_in_force(good.revision)
        self.loop.set_revision(Revision(good.revision, good.topology))

    def _reconciled(self, result: str, seconds: float) -> None:
        self.heartbeat.tick()
        self.metrics.reconcile_total.labels("success" if result == "ok" else "error").inc()
        self.metrics.reconcile_duration.observe(seconds)

    def _lost(self) -> None:
        log.error("lost the lease: stopping every write and exiting")
        self.metrics.leader.set(0)
        self.lost.set()
        self.loop.request_stop()

    def stop(self) -> None:
        """SIGTERM: finish the write in flight, then stop."""
        self.loop.request_stop()

    def run(self) -> int:
        """Until stopped: 0 after a clean stop, 1 after losing the lease."""
        self.http.start()
        threads = [threading.Thread(target=self.source.run, name="topoctl-source", daemon=True)]
        for thread in threads:
            thread.start()
        self.elector.start()
        try:
            self.loop.run()
        finally:
            self.source.stop()
            if not self.lost.is_set():
                self.elector.release()
            self.http.stop()
        return 1 if self.lost.is_set() else 0


def run(settings: RunSettings, install_signals: bool = True) -> int:
    """Connect, wire, run; the exit status."""
    backend = KubeBackend.connect(settings.kubeconfig, settings.context)
    controller = Controller(settings, backend)
    if install_signals:
        _on_signals(controller.stop)
    started = time.monotonic()
    try:
        return controller.run()
    finally:
        backend.close()
        log.info("stopped after %.0f s", time.monotonic() - started)


def _on_signals(stop: Callable[[], None]) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping after the write in flight", signal.Signals(signum).name)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
