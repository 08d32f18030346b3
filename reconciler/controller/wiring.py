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

from reconciler.adapters.clock import SystemClock
from reconciler.adapters.dirsource import DirectorySource
from reconciler.adapters.forge import GitHubCommitStatuses, GitLabCommitStatuses, status_target
from reconciler.adapters.gitauth import Credentials
from reconciler.adapters.gitsource import GitRemote
from reconciler.adapters.icmp import IcmpProber
from reconciler.adapters.kube import KubeBackend, RetryPolicy
from reconciler.adapters.kubelease import KubeLease, KubeNodeLeases, discover_namespace
from reconciler.adapters.kubestatus import KubeEventSink, KubeStatusStore
from reconciler.adapters.kubewatch import KubeWatcher
from reconciler.controller.commitstatus import CommitStatusReporter
from reconciler.controller.events import EventRecorder
from reconciler.controller.fetchrequests import FetchRequests
from reconciler.controller.guard import LeaseGate
from reconciler.controller.http import Hook, HttpServer
from reconciler.controller.leader import LeaderElector, LeaseObserver
from reconciler.controller.lifecycle import LifecyclePass
from reconciler.controller.loop import LoopSettings, ReconcileLoop
from reconciler.controller.metrics import Metrics
from reconciler.controller.observers import Fanout, MetricsObserver
from reconciler.controller.plans import Revision
from reconciler.controller.source import Good, Refused, Source
from reconciler.controller.status import StatusReporter
from reconciler.controller.suspension import SuspensionView
from reconciler.controller.webhook import read_secret
from reconciler.core.election.lease import Timing
from reconciler.model.suspension import Suspension
from reconciler.ports import BackendError, CommitStatuses, GitSource
from reconciler.usecases.statusmap import STATUS_NAME, StatusConfigMap

log = logging.getLogger("topoctl.run")
STUCK_AFTER = 300.0  # seconds without a loop tick before /healthz fails
STOP_GRACE = 10.0  # seconds a lifecycle pass may take to end on stop


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
    commit_status: str | None = None  # github | gitlab
    commit_status_token_file: Path | None = None
    commit_status_repo: str | None = None
    commit_status_api_url: str | None = None
    commit_status_context: str = "topoctl"


def timing(lease_duration: float) -> Timing:
    """client-go's proportions (15 s / 10 s / 2 s) scaled to ``lease_duration``."""
    return Timing(
        lease_duration=lease_duration,
        renew_deadline=lease_duration * 2 / 3,
        retry_period=lease_duration * 2 / 15,
    )


def commit_status_port(settings: RunSettings) -> CommitStatuses | None:
    """The forge's commit statuses (``--commit-status``), or None; ValueError names what
    is missing or wrong."""
    forge = settings.commit_status
    if forge is None:
        return None
    if settings.git_url is None:
        raise ValueError("--commit-status needs --git-url: a directory's revisions are no commits")
    if settings.commit_status_token_file is None:
        raise ValueError(f"--commit-status {forge} needs --commit-status-token-file")
    path = settings.commit_status_token_file
    try:
        token = path.read_text().strip()
    except OSError as err:
        raise ValueError(f"--commit-status-token-file {path}: {err.strerror}") from None
    if not token:
        raise ValueError(f"--commit-status-token-file {path}: empty")
    api_url, repo = status_target(
        forge, settings.git_url, settings.commit_status_repo, settings.commit_status_api_url
    )
    kind = GitHubCommitStatuses if forge == "github" else GitLabCommitStatuses
    return kind(api_url, token, repo, settings.commit_status_context)


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
        """``backend`` reads and watches. Every write - Node patches and deletions, the
        status ConfigMap, Events - is admitted by the lease gate immediately before it
        is sent, with the time before the lease could expire as its timeout; Node
        writes and deletions are tried once (the loop retries with backoff, after
        looking at the lease again)."""
        self.settings = settings
        lease = timing(settings.lease_duration)
        self.clock = SystemClock()
        self.metrics = Metrics()
        self.stop_event = threading.Event()
        self.lost = threading.Event()
        api = backend.api
        namespace = settings.lease_namespace or discover_namespace(
            settings.kubeconfig, settings.context
        )
        identity = settings.identity or f"{socket.gethostname()}-{os.getpid()}"
        port = KubeLease(api, settings.lease_name, namespace)
        self.elector: LeaderElector | LeaseObserver
        if settings.dry_run:  # reads the Lease and says who holds it; never writes it
            self.elector = LeaseObserver(port, identity, self.clock, timing=lease)
        else:
            self.elector = LeaderElector(
                port,
                identity,
                self.clock,
                timing=lease,
                on_lost=self._lost,
                on_started=lambda: self.metrics.leader.set(1),
            )
        # whether this replica plans, decides and reports (a dry run does, writing nothing)
        may_write = (lambda: True) if settings.dry_run else self.elector.may_write
        self.gate = gate = LeaseGate(self.elector.write_deadline, dry_run=settings.dry_run)
        writer = KubeBackend(backend.api, retry=RetryPolicy(attempts=1), gate=gate)
        self.status_map = StatusConfigMap(KubeStatusStore(api, namespace, STATUS_NAME, gate))
        self.node_events = KubeEventSink(api, identity, gate=gate)  # Events about Nodes
        self.status_events = EventRecorder(  # about the status ConfigMap, in its namespace
            KubeEventSink(api, identity, namespace=namespace, gate=gate), self.clock
        )
        # topoctl suspend: read from the status ConfigMap by every replica; nothing is
        # written before it has been read once
        self.suspension = SuspensionView(self._suspension_changed)
        self.status = StatusReporter(
            self.status_map,
            EventRecorder(self.node_events, self.clock),
            self.clock,
            status_events=self.status_events,
            may_write=may_write,
            dry_run=settings.dry_run,
            suspension=self.suspension,
        )
        observers = Fanout(self.status)
        self.loop = ReconcileLoop(
            KubeWatcher(backend),
            writer,
            may_write=may_write,
            clock=self.clock,
            settings=LoopSettings(resync=settings.resync, dry_run=settings.dry_run),
            observer=observers,
            stop=self.stop_event,
            suspended=self.suspension.covers,
            on_handled=self.status.reconcile_handled,
        )
        observers.add(
            MetricsObserver(
                self.metrics, self.loop.informer.stats, self.loop.writer.stats, self.suspension
            )
        )
        forge = commit_status_port(settings)
        self.commit_status: CommitStatusReporter | None = None
        if forge is not None:
            self.commit_status = CommitStatusReporter(
                forge,
                metrics=self.metrics,
                may_write=may_write,
                dry_run=settings.dry_run,
                suspended=self.suspension.covers,
            )
            observers.add(self.commit_status)
            log.info(
                "commit statuses go to %s as %r", forge.describe(), settings.commit_status_context
            )
        self.source = Source(
            source_port(settings),
            self.clock,
            poll=settings.poll,
            metrics=self.metrics,
            fallback=self._recorded_revision(),
            on_change=self._new_revision,
            on_refused=self._refused,
        )
        self.lifecycle = LifecyclePass(
            self.loop.plans.view,
            IcmpProber(),
            writer,
            self.status_map,
            self.clock,
            may_write=may_write,
            events=self.node_events,  # NodeDeleted is sent as itself: never merged or dropped
            leases=KubeNodeLeases(api),
            metrics=self.metrics,
            on_failure=self.status.lifecycle_failed,
            dry_run=settings.dry_run,
            wake=self.loop.plans.changed,
            suspended=self.suspension.covers,
        )
        fetches_itself = may_write  # the holder, or a dry run: a standby records it
        self.fetch_requests = FetchRequests(
            # a standby's one write: its webhook, recorded for the holder without the lease
            StatusConfigMap(KubeStatusStore(api, namespace, STATUS_NAME)),
            self.source.request_fetch,
            fetches_itself,
            self.clock,
            on_suspension=self.suspension.seen,
            on_reconcile=self._reconcile_requested,
        )
        hook = None
        if settings.webhook_secret_file is not None:
            hook = Hook(read_secret(settings.webhook_secret_file), self.fetch_requests.requested)
        self.http = HttpServer(
            settings.listen,
            self.metrics,
            live=self.live,
            ready=lambda: self.loop.ready,
            hook=hook,
        )
        self.started = self.clock.monotonic()
        self._read_suspension()

    def _read_suspension(self) -> None:
        """What is suspended, read before anything may be written."""
        try:
            self.suspension.seen(self.status_map.suspension())
        except BackendError as err:
            log.warning(
                "the status cannot be read (%s): nothing is written until what is "
                "suspended is known",
                err,
            )

    def _suspension_changed(self, before: Suspension, now: Suspension) -> None:
        self.metrics.suspension(now)
        self.status.suspension_changed(now)
        self.loop.plan_everything()  # the drift shown at once, a resumed site written

    def _reconcile_requested(self, request: str) -> None:
        """``topoctl reconcile``: fetch now, then plan everything and echo ``request``."""
        self.source.request_fetch(then=lambda: self.loop.reconcile_now(request))

    def live(self) -> bool:
        """Alive while the reconcile loop has turned within STUCK_AFTER seconds (counted
        from the start until its first turn: the first list and pass take their time)."""
        last = self.loop.stats.last_tick or self.started
        return self.clock.monotonic() - last <= STUCK_AFTER

    def _recorded_revision(self) -> str | None:
        """The revision the status records in force (taken if the newest is refused)."""
        try:
            return self.status_map.revision_in_force()
        except BackendError as err:
            log.warning("the status cannot be read (%s): no recorded revision to fall back on", err)
            return None

    def _new_revision(self, good: Good) -> None:
        self.loop.set_revision(Revision(good.revision, good.topology))
        if self.commit_status is not None:
            self.commit_status.fetched(good)

    def _refused(self, refused: Refused) -> None:
        self.status.revision_refused(refused)
        if self.commit_status is not None:
            self.commit_status.refused(refused)

    def _lost(self) -> None:
        log.error("lost the lease: stopping every write and exiting")
        self.metrics.leader.set(0)
        self.lost.set()
        self.loop.request_stop()

    def stop(self) -> None:
        """SIGTERM: finish the write in flight, then stop."""
        self.loop.request_stop()
        self.lifecycle.nudge()  # its wait ends; the stop event ends its loop

    def run(self) -> int:
        """Until stopped: 0 after a clean stop, 1 after losing the lease."""
        self.http.start()
        threads = [
            threading.Thread(target=self.source.run, name="topoctl-source", daemon=True),
            threading.Thread(
                target=self.lifecycle.run, args=(self.stop_event,), name="lifecycle", daemon=True
            ),
            threading.Thread(
                target=self.fetch_requests.run,
                args=(self.stop_event,),
                name="fetch-requests",
                daemon=True,
            ),
        ]
        if self.commit_status is not None:
            threads.append(
                threading.Thread(
                    target=self.commit_status.run,
                    args=(self.stop_event,),
                    name="commit-status",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        self.elector.start()
        try:
            self.loop.run()
        finally:
            self.stop_event.set()
            self.source.stop()
            if self.commit_status is not None:
                self.commit_status.wake()
            self.lifecycle.nudge()
            threads[1].join(timeout=STOP_GRACE)  # no DELETE of a pass may outlive the lease
            if not self.lost.is_set():
                self.status.publish()
                self.elector.release()
            self.http.stop()
        return 1 if self.lost.is_set() else 0


def run(settings: RunSettings) -> int:
    """Connect, wire, run; the exit status."""
    backend = KubeBackend.connect(settings.kubeconfig, settings.context)
    controller = Controller(settings, backend)
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
        # Not here: the main thread may hold the queue's locks the stop takes.
        threading.Thread(target=stop, name="stop", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
