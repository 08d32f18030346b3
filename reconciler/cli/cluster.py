"""``topoctl plan``, ``apply`` and ``snapshot``: the topology against a cluster."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from reconciler.cli import main
from reconciler.cli.common import (
    AS_PROGRAM,
    DEFAULT_DIR,
    EXIT_CHANGES,
    EXIT_INVALID,
    EXIT_OK,
    Failure,
    T,
    UsageFailure,
    backend_call,
    clock_now,
    cluster_options,
    cluster_source,
    deletion_for,
    eyes_for,
    one_shot,
    open_cluster,
    plan_time,
    print_plan,
    probe_option,
    topology_or_fail,
)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path), default=DEFAULT_DIR)
@click.option("--rev", metavar="REV", help="Plan the topology at this git revision.")
@click.option(
    "--base",
    metavar="REV",
    help="Also show what the change since REV (e.g. the "
    "pull request's base) alters in the desired state.",
)
@cluster_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json"]),
    default="text",
    show_default=True,
    help="markdown is made for pull-request comments; json is versioned.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Save the plan for `topoctl apply PLAN`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.",
)
@click.option(
    "--report",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also write the whole plan into this directory: plan.json, plan.txt and plan.md "
    "(the markdown with nothing left out), e.g. as a CI job's artifact.",
)
@click.option(
    "--full-plan",
    metavar="MARKDOWN",
    help="markdown: where the whole plan is, named when the comment leaves parts out "
    "(e.g. a link to the job's artifact).",
)
@click.option(
    "--footer",
    metavar="MARKDOWN",
    help="markdown: a closing line (e.g. what the plan ran against), counted in the "
    "comment's size.",
)
@probe_option
def plan(
    directory: Path,
    rev: str | None,
    base: str | None,
    snapshot: Path | None,
    kubeconfig: Path | None,
    context: str | None,
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    report: Path | None,
    full_plan: str | None,
    footer: str | None,
    probe: bool,
) -> None:
    """Show what would change on which node, and why. Changes nothing in the cluster;
    with --out, the plan is saved to that file for `topoctl apply PLAN`.

    \b
      topoctl plan --cluster examples/nodes.yaml        against a snapshot
      topoctl plan --kubeconfig ~/.kube/prod            against a live cluster
      topoctl plan --base origin/main --format markdown  a pull-request comment

    The markdown leads with what the change since --base does to the desired state,
    groups nodes with identical changes, and stays under GitHub's 65,536 characters:
    what does not fit is left out whole (never cut inside a table or a code block)
    and counted.

    Kilo counts a node as Ready, so as a possible leader, only while its
    last-seen check-in is under 60 s old. The plan judges that at the time its
    header names ("now:"): this machine's clock for a live cluster; for a
    snapshot file, the capture time `topoctl snapshot` recorded in it, else the
    median last-seen of its nodes. A node whose clock runs ahead changes no
    other node's freshness.

    Exit status: 0 success, 1 error; with --detailed-exitcode 0 no changes,
    1 error, 2 changes.
    """
    from reconciler.usecases.plan import plan_once

    one_shot()
    if out is not None and not out.parent.is_dir():  # before the plan is computed
        raise Failure(f"--out {out}: no such directory {out.parent}")
    if report is not None and not report.is_dir():
        raise Failure(f"--report {report}: no such directory")
    try:
        topology = topology_or_fail(directory, rev)
        reader = open_cluster(snapshot, kubeconfig, context, writable=False)
        base_topology = topology_or_fail(directory, base) if base else None
    except UsageFailure as err:
        if detailed_exitcode:  # there, 2 means "changes": every failure must be 1
            raise Failure(err.format_message()) from None
        raise
    eyes = eyes_for(probe, reader)
    now = plan_time(reader)
    result = backend_call(lambda: plan_once(topology, reader, base_topology, now, eyes))
    the_plan = result.plan
    deltas = result.deltas if base else None
    comment: dict[str, Any] = {"footer": footer or ""}
    if fmt == "markdown" or report is not None:
        from reconciler.core.rendering import graphs, mesh

        comment["graph"] = graphs.mermaid(mesh.from_plan(topology, the_plan))
    if full_plan:
        comment["full_plan"] = full_plan
    if report is not None:
        _report(report, the_plan, deltas, comment)
    print_plan(the_plan, fmt, deltas, **comment)
    if out is not None:
        from reconciler.core.planning import savedplan

        _save(out, savedplan.dump(the_plan, cluster_source(snapshot, kubeconfig, context)))
        click.echo(f"plan saved to {out}: apply it with `topoctl apply {out}`", err=True)
    if the_plan.errors:
        sys.exit(EXIT_INVALID)
    sys.exit(EXIT_CHANGES if detailed_exitcode and the_plan.has_changes else EXIT_OK)


def _report(directory: Path, plan: Any, deltas: Any, comment: dict[str, Any]) -> None:
    """The whole plan as JSON, text and markdown (nothing left out), each file whole."""
    from reconciler.adapters.atomicfile import write_atomic
    from reconciler.core.rendering import plans
    from reconciler.core.rendering.comment import comment as markdown

    files = {
        "plan.json": plans.as_json(plan, deltas or ()),
        "plan.txt": (plans.text(plan, deltas or (), markup=False) + "\n").encode(),
        "plan.md": markdown(plan, deltas, limit=UNLIMITED, **comment).encode(),
    }
    for name, data in files.items():
        try:
            write_atomic(directory / name, data)
        except OSError as err:
            raise Failure(f"--report {directory}: cannot write {name}: {err.strerror}") from None


UNLIMITED = 1 << 40  # a report's markdown leaves nothing out


def _save(out: Path, text: str) -> None:
    """Write a saved plan whole or not at all (a full disk leaves no truncated plan)."""
    from reconciler.adapters.atomicfile import write_atomic

    try:
        write_atomic(out, text.encode("utf-8"))
    except OSError as err:
        raise Failure(f"--out {out}: cannot write the plan: {err.strerror or err}") from None


def _read_saved(target: Path) -> str | None:
    """The text of TARGET when it is a saved plan (known by content, not by name)."""
    from reconciler.core.planning import savedplan

    if not target.is_file():
        return None
    try:
        text = target.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = ""
    except OSError as err:
        raise Failure(f"{target}: cannot read: {err.strerror}") from None
    if savedplan.is_saved(text) or not target.name.endswith((".yaml", ".yml")):
        return text  # not a topology file: savedplan.load says what is wrong with it
    return None


class _Stopped(BaseException):
    """SIGTERM, turned into an exception so the command can say what it had done."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _reporting_signals(run: Callable[[], T], backend: Callable[[], Any]) -> T:
    """Run ``run``; SIGINT or SIGTERM ends it with a message that says what was written.

    A snapshot write in progress finishes (or is undone) first: the file is then the
    old one or the new one, and the message says which (exit 128 + the signal).
    """
    import signal

    finished = False
    quiet = False  # done, or already stopping: a signal now changes nothing

    def stop(signum: int, frame: Any) -> None:
        # Raising after the command is done would escape this function and hide its
        # exit status behind click's "Aborted!".
        if not quiet:
            raise _Stopped(signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        value = run()
        finished = quiet = True
        return value
    except (KeyboardInterrupt, _Stopped) as err:
        quiet = True
        signum = err.signum if isinstance(err, _Stopped) else signal.SIGINT
        name = signal.Signals(signum).name
        written = getattr(backend(), "written", None)
        path = getattr(backend(), "path", None)
        if written:
            done = f"{path} was written in full before stopping: the changes are applied"
        elif written is False:
            done = f"nothing written: {path} is unchanged"
        else:
            done = "writes already sent to the cluster stand; plan again to see what is left"
        click.echo(f"topoctl: interrupted by {name}: {done}", err=True)
        sys.exit(128 + signum)
    finally:
        if finished and AS_PROGRAM:  # done and said so: a signal now would hide the status
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@main.command()
@click.argument("target", type=click.Path(path_type=Path), default=DEFAULT_DIR)
@cluster_options
@click.option("--yes", "-y", is_flag=True, help="Apply without asking.")
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Nodes written at once.",
)
@probe_option
def apply(
    target: Path,
    snapshot: Path | None,
    kubeconfig: Path | None,
    context: str | None,
    yes: bool,
    parallel: int,
    probe: bool,
) -> None:
    """Make the cluster match the topology in TARGET (a directory), or run a saved PLAN.

    Every node gets one patch carrying only the keys that change and the
    resourceVersion it was computed from; if another writer got there first,
    the node is re-read and recomputed, so nothing they wrote is lost. A saved
    plan is applied exactly, and refused (nothing written) once any node it
    was made from has moved. Kilo's freshness is judged as `topoctl plan` says.

    \b
      topoctl apply --cluster nodes.yaml --yes    converge a snapshot file
      topoctl plan --out plan.json && topoctl apply plan.json
    """
    from reconciler.core.planning import savedplan
    from reconciler.usecases.apply import apply_once, apply_saved
    from reconciler.usecases.executor import StalePlanError

    one_shot()

    def confirm(the_plan: Any) -> bool:
        print_plan(the_plan, "text")
        if the_plan.errors or not the_plan.has_changes:
            return False
        if not yes:
            if not sys.stdin.isatty():
                raise UsageFailure("not a terminal: pass --yes to apply without asking")
            click.confirm("Apply these changes?", abort=True)
        return True

    opened: list[Any] = []  # the backend, once open: what a signal's message speaks of

    def run() -> None:
        nonlocal snapshot, kubeconfig, context
        text = _read_saved(target)
        if text is not None:
            try:
                loaded, source = savedplan.load(text)
            except savedplan.SavedPlanError as err:
                raise Failure(f"{target}: {err}") from None
            if snapshot is None and kubeconfig is None:
                snapshot = Path(source["cluster"]) if source.get("cluster") else None
                kubeconfig = Path(source["kubeconfig"]) if source.get("kubeconfig") else None
                context = context or source.get("context")
            opened.append(
                open_cluster(snapshot, kubeconfig, context, writable=True, parallel=parallel)
            )
            width = 1 if snapshot is not None else parallel
            try:
                deletion = deletion_for(opened[0])
                result = backend_call(
                    lambda: apply_saved(loaded, opened[0], confirm, width, deletion)
                )
            except StalePlanError as err:
                raise Failure(f"{target}: {err}") from None
        else:
            topology = topology_or_fail(target, None)
            opened.append(
                open_cluster(snapshot, kubeconfig, context, writable=True, parallel=parallel)
            )
            width = 1 if snapshot is not None else parallel
            eyes, deletion = eyes_for(probe, opened[0]), deletion_for(opened[0])
            now = plan_time(opened[0])
            result = backend_call(
                lambda: apply_once(topology, opened[0], confirm, width, eyes, deletion, now)
            )
        _report_apply(result)

    _reporting_signals(run, lambda: opened[0] if opened else None)


def _report_apply(result: Any) -> None:
    if result.plan.errors:
        raise Failure("the plan has errors: nothing applied")
    report = result.report
    if report is None:
        return
    for name, why in sorted(report.failed.items()):
        click.echo(f"topoctl: {name}: not applied: {why}", err=True)
    retried = (
        f", {report.conflicts_retried} conflict(s) resolved by re-reading the node"
        if report.conflicts_retried
        else ""
    )
    for name, why in sorted(report.kept.items()):
        click.echo(f"topoctl: {name}: not deleted: {why}", err=True)
    deleted = f", {len(report.deleted)} dead node(s) deleted" if report.deleted else ""
    click.echo(
        f"Applied: {len(report.written)} node(s) written, {len(report.failed)} failed"
        f"{retried}{deleted}."
    )
    if not report.ok:
        sys.exit(EXIT_INVALID)


@main.command()
@cluster_options
@click.option(
    "--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
def snapshot(snapshot: Path | None, kubeconfig: Path | None, context: str | None, fmt: str) -> None:
    """Export the cluster's nodes (a List) for offline planning with --cluster.

    The List records when the nodes were read (its annotation
    topoctl.io/captured-at, UTC): an offline plan judges Kilo's last-seen
    freshness at that time. A file re-exported keeps the time it records.

    \b
      topoctl snapshot --kubeconfig ~/.kube/prod > nodes.yaml
      topoctl plan --cluster nodes.yaml
    """
    import json

    from reconciler.usecases.snapshot import snapshot as export

    reader = open_cluster(snapshot, kubeconfig, context, writable=False)
    # When the nodes were read: a file keeps the time it records; a cluster is read now.
    at = getattr(reader, "captured_at", None) if snapshot is not None else clock_now()
    doc = backend_call(lambda: export(reader, at))
    if fmt == "json":
        click.echo(json.dumps(doc, indent=4))
    else:
        import yaml

        click.echo(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False), nl=False)
