"""What the commands share: exit codes, clear failures, reading the topology and
opening a cluster, printing plans."""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
DEFAULT_DIR = Path("sites")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Failure(click.ClickException):
    """A clear, expected failure: message on stderr, no traceback (exit 1)."""

    exit_code = EXIT_INVALID

    def show(self, file: Any = None) -> None:
        click.echo(f"topoctl: error: {self.format_message()}", err=True)


class UsageFailure(Failure):
    """Bad arguments or an unreadable source (exit 2)."""

    exit_code = EXIT_USAGE


def read_topology(directory: Path, rev: str | None) -> Any:
    """Load and validate the topology from a directory or a git revision."""
    from reconciler.adapters.files import SourceError, read_directory
    from reconciler.core.loading.load import load

    try:
        if rev:
            from reconciler.adapters.gitsource import read_revision

            files, notes = read_revision(directory, rev)
        else:
            files, notes = read_directory(directory)
    except SourceError as err:
        raise UsageFailure(str(err)) from None
    result = load(files, notes)
    sources = {}  # for the source line under each diagnostic: decoded only when there is one
    for f in files if result.diagnostics else ():
        try:
            sources[f.path] = f.content.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return result, sources


# --- what the commands that read a cluster share -----------------------------------

EXIT_CHANGES = 2


def cluster_options(fn: Any) -> Any:
    """--cluster / --kubeconfig / --context, shared by the commands that read a cluster."""
    fn = click.option("--context", metavar="NAME", help="kubeconfig context to use.")(fn)
    fn = click.option(
        "--kubeconfig",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Talk to the cluster in this kubeconfig.",
    )(fn)
    fn = click.option(
        "--cluster",
        "snapshot",
        type=click.Path(path_type=Path, dir_okay=False),
        help="A node snapshot instead of a live cluster: what `kubectl get nodes "
        "-o yaml|json` (or `topoctl snapshot`) prints.",
    )(fn)
    return fn


def open_cluster(
    snapshot: Path | None,
    kubeconfig: Path | None,
    context: str | None,
    *,
    writable: bool,
    parallel: int = 4,
) -> Any:
    """The backend for the given flags; with none, find the cluster as kubectl does."""
    from reconciler.ports import BackendError

    if snapshot is not None and kubeconfig is not None:
        raise UsageFailure("give --cluster or --kubeconfig, not both")
    if snapshot is not None:
        from reconciler.adapters.snapshot import SnapshotBackend

        if not snapshot.exists():
            raise UsageFailure(f"{snapshot}: no such file")
        try:
            return SnapshotBackend(snapshot, writable=writable)
        except BackendError as err:
            raise Failure(str(err)) from None
    from reconciler.adapters.kube import ClusterNotFoundError, KubeBackend

    try:
        return KubeBackend.connect(kubeconfig, context, parallel=parallel)
    except ClusterNotFoundError as err:
        raise UsageFailure(str(err)) from None
    except BackendError as err:
        raise Failure(str(err)) from None


def plan_time(backend: Any) -> Any:
    """When a plan judges Kilo's freshness: a snapshot file's capture time (None when it
    records none: the plan takes the nodes' median check-in); this machine's clock for a
    live cluster."""
    from reconciler.adapters.snapshot import SnapshotBackend
    from reconciler.core.kilo.freshness import Reference, TimeSource

    if isinstance(backend, SnapshotBackend):
        at = backend.captured_at
        return Reference(at, TimeSource.CAPTURED) if at is not None else None
    return Reference(clock_now(), TimeSource.CLOCK)


def clock_now() -> int:
    """This machine's clock, in unix seconds."""
    from reconciler.adapters.clock import SystemClock

    return int(SystemClock().wall().timestamp())


def cluster_source(
    snapshot: Path | None, kubeconfig: Path | None, context: str | None
) -> dict[str, Any]:
    if snapshot is not None:
        return {"cluster": str(snapshot.resolve())}
    return {"kubeconfig": str(kubeconfig.resolve()) if kubeconfig else None, "context": context}


def backend_call(call: Callable[[], T]) -> T:
    """Run a use case; a backend failure (after its retries) is a clear failure."""
    from reconciler.adapters.snapshot import SnapshotError
    from reconciler.ports import BackendError

    try:
        return call()
    except SnapshotError as err:  # names its file, and whether it was read or written
        raise Failure(str(err)) from None
    except BackendError as err:
        raise Failure(f"reading nodes: {err}") from None


def probe_option(fn: Any) -> Any:
    """--probe, shared by plan and apply."""
    return click.option(
        "--probe",
        is_flag=True,
        help="Probe NotReady members' addresses with ICMP from here (about a minute) so "
        "dead nodes of sites with lifecycle.deleteUnreachable can be judged; without it "
        "they are listed as candidates and nothing is deleted.",
    )(fn)


def eyes_for(probe: bool, backend: Any = None) -> Any:
    """The clock, and with --probe an ICMP prober: how a plan looks at dead nodes. On a
    live cluster the controller's deletion record (the hourly budget) and the node
    Leases (signs of life) are read too, so the CLI judges as the controller does."""
    from reconciler.adapters.clock import SystemClock
    from reconciler.usecases.lifecycle import Eyes

    clock = SystemClock()
    if not probe:
        return Eyes(clock)
    from reconciler.adapters.icmp import IcmpProber

    live = _live_parts(backend)
    if live is None:
        return Eyes(clock, IcmpProber())
    budget, leases, _events = live
    return Eyes(clock, IcmpProber(), budget=budget, leases=leases)


def deletion_for(backend: Any) -> Any:
    """Deletion through a live cluster, by the controller's protocol: each one recorded in
    the controller's deletion record (the hourly budget both share) and announced by a
    NodeDeleted Event; a deletion not done gives its slot back. None: the backend (a
    snapshot file) cannot delete."""
    from reconciler.adapters.clock import SystemClock
    from reconciler.usecases.deletion import DeletionPorts

    live = _live_parts(backend)
    if live is None:
        return None
    budget, _leases, events = live
    return DeletionPorts(backend, SystemClock(), budget, events)


def _live_parts(backend: Any) -> tuple[Any, Any, Any] | None:
    """The status ConfigMap (the deletion record), node Leases and Event sink of a live
    cluster."""
    from reconciler.adapters.kube import KubeBackend

    if not isinstance(backend, KubeBackend):
        return None
    from reconciler.adapters.kubelease import KubeNodeLeases, discover_namespace
    from reconciler.adapters.kubestatus import KubeEventSink, KubeStatusStore
    from reconciler.usecases.statusmap import STATUS_NAME, StatusConfigMap

    namespace = discover_namespace(None, None)
    store = KubeStatusStore(backend.api, namespace, STATUS_NAME)
    return (
        StatusConfigMap(store),
        KubeNodeLeases(backend.api),
        KubeEventSink(backend.api, "topoctl-cli"),
    )


def topology_or_fail(directory: Path, rev: str | None) -> Any:
    """The valid topology (its warnings ride along into the plan), or a clear failure."""
    from reconciler.core.rendering import validation

    result, sources = read_topology(directory, rev)
    if not result.ok:
        click.echo(validation.text(result.diagnostics, sources), err=True)
        raise Failure(
            f"{directory}: {validation.verdict(result)} - run `topoctl validate` for details"
        )
    return result.topology


def one_shot() -> None:
    """Plan and apply run once and the process ends with them (under :func:`run`): the
    cyclic garbage collector is switched off, as its passes over the hundreds of
    thousands of objects a large snapshot parses into cost a third of a plan's time and
    those objects form no cycles to collect; and the exit skips freeing them
    (:func:`leave`). Called in-process (tests), the command changes neither."""
    if AS_PROGRAM:
        gc.disable()
        ONE_SHOT.append(True)


def leave(code: object) -> NoReturn:
    """End a one-shot command's process with ``code`` (a ``SystemExit`` code) at once.

    Tearing down the heap of a 5,000-node plan takes about 60 ms, a tenth of the plan,
    and does nothing the end of the process does not. So the output is flushed here and
    the process ends without it, once the exit hooks have run (a one-shot command's
    saved plans and snapshots are written whole before it returns). Output that cannot
    be flushed fails the command, as any write does."""
    status = code if isinstance(code, int) else 0 if code is None else EXIT_INVALID
    # The exit hooks still run: the kubernetes client deletes the credential files it
    # wrote from a kubeconfig's embedded keys there, and logging flushes its handlers.
    atexit._run_exitfuncs()
    if isinstance(code, str):
        stderr_line(code)
    try:
        if sys.stdout is not None:  # None: started without a stdout at all
            sys.stdout.flush()
    except (OSError, ValueError) as err:  # a full disk, a closed pipe, a closed file
        output_failed(err)
        status = EXIT_INVALID
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    os._exit(status)


def print_plan(plan: Any, fmt: str, deltas: Any = None, **comment: Any) -> None:
    """The plan on stdout as text, json or markdown (a pull-request comment, rendered
    with ``comment``'s options). ``deltas`` None: no --base was given."""
    from reconciler.core.rendering import plans

    if sys.stdout is None:  # started without a stdout (``>&-``): nowhere to print
        return
    if fmt == "json":
        click.echo(plans.as_json(plan, deltas or ()), nl=False)
    elif fmt == "markdown":
        from reconciler.core.rendering.comment import comment as markdown

        click.echo(markdown(plan, deltas, **comment), nl=False)
    else:
        deltas = deltas or ()
        from rich.console import Console

        # One change, one line: CI logs, grep and diffs of saved output need them unbroken.
        console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
        if console.is_terminal:  # colours: rich parses the markup
            console.print(plans.text(plan, deltas), soft_wrap=True)
        else:  # the same text, without rich's markup parsing (seconds for a large plan)
            click.echo(plans.text(plan, deltas, markup=False))


AS_PROGRAM: list[bool] = []  # run() fills it: the process ends with the command
ONE_SHOT: list[bool] = []  # one_shot() fills it: the process ends through leave()


def output_failed(err: OSError | ValueError) -> None:
    """Say that output could not be written: the file it went to, or "the output"."""
    filename = getattr(err, "filename", None)
    where = f"{filename}: " if filename else "writing the output: "
    stderr_line(f"topoctl: error: {where}{getattr(err, 'strerror', None) or err}")


def stderr_line(line: str) -> None:
    with contextlib.suppress(OSError):  # stderr gone too: the exit status is all that is left
        click.echo(line, err=True)
