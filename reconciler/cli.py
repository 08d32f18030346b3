"""The ``topoctl`` command line: for people at a terminal and for CI."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler import __version__

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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="topoctl")
def main() -> None:
    """Declarative topology for Kubernetes clusters meshed by Kilo.

    Describe each location in sites/*.yaml (Site and Cluster documents; see
    `topoctl schema` and the README), then:

    \b
      topoctl validate sites/                        every rule, every file, at once
      topoctl plan --cluster nodes.yaml              what would change, and why
      topoctl plan --kubeconfig ~/.kube/config       ... against a live cluster
      topoctl apply --kubeconfig ~/.kube/config      make it so (asks first)
      topoctl agent --node NAME                      on each node: addresses, taint, routes
      topoctl run --git-url URL                      the controller: converge on every push
      topoctl status                                 what the controller last did
      topoctl render talos --node NAME               the Talos machine-config patch

    Exit status: 0 success, 1 invalid input or failure, 2 usage error
    (plan --detailed-exitcode: 2 means there are changes).
    """


def read_topology(directory: Path, rev: str | None) -> Any:
    """Load and validate the topology from a directory or a git revision."""
    from reconciler.adapters.files import SourceError, read_directory
    from reconciler.core.load import load

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


@main.command()
@click.argument("directory", type=click.Path(path_type=Path), default=DEFAULT_DIR)
@click.option(
    "--rev",
    metavar="REV",
    help="Read the topology at this git revision "
    "(commit, branch, tag) instead of the working tree; nothing is checked out.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "github", "json"]),
    default="text",
    show_default=True,
    help="text for people; github for workflow annotations on "
    "the changed lines of a pull request; json for machines (format_version 1).",
)
def validate(directory: Path, rev: str | None, fmt: str) -> None:
    """Check the topology in DIRECTORY (default: sites/) against every rule.

    Every error and warning is reported at once, each with file:line:col, the
    field path, what is wrong and what would be right.

    Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error.
    """
    from reconciler.core import report

    result, sources = read_topology(directory, rev)
    if fmt == "json":
        click.echo(report.as_json(result))
    elif fmt == "github":
        annotations = report.github(result.diagnostics)
        if annotations:
            click.echo(annotations)
        click.echo(report.verdict(result))
    else:
        _print_text(result, sources)
    sys.exit(EXIT_OK if result.ok else EXIT_INVALID)


def _print_text(result: Any, sources: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from reconciler.core import report

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    if result.diagnostics:
        for line in report.text(result.diagnostics, sources).splitlines():
            style = "red" if ": error: " in line else "yellow" if ": warning: " in line else None
            # One diagnostic, one line: CI logs and grep need file:line:col unbroken.
            console.print(line, style=style, markup=False, soft_wrap=True)
        console.print()
    if result.topology is not None and result.topology.sites:
        table = Table(
            title=f"cluster {result.topology.cluster.metadata.name}", title_justify="left"
        )
        for column in (
            "site",
            "nodes",
            "pools",
            "leader candidates",
            "allowed location IPs",
            "routes",
        ):
            table.add_column(column)
        for s in report.summarize(result.topology):
            table.add_row(  # long lists are cut: `--format json` has them whole
                s.name,
                "\n".join(report.first_of(s.nodes)) or "-",
                "\n".join(report.first_of([f"{n}: {sel}" for n, sel in s.pools])) or "-",
                ", ".join(report.first_of(s.leaders)) or "(Kilo decides)",
                "\n".join(report.first_of(s.allowed_location_ips)) or "-",
                str(s.routes),
            )
        console.print(table)
    console.print(
        report.verdict(result),
        style="green" if result.ok else "red bold",
        markup=False,
        soft_wrap=True,
    )


@main.command()
def schema() -> None:
    """Print the JSON Schema of a sites/*.yaml document (Cluster or Site).

    Editors validate topology files live with it: put this line at the top of
    each file (yaml-language-server, e.g. the VS Code YAML extension):

    \b
      # yaml-language-server: $schema=../schema/topology.schema.json
    """
    from reconciler.core.schema import topology_schema_text

    click.echo(topology_schema_text(), nl=False)


# --- plan / apply / snapshot -----------------------------------------------------------

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


def _source(snapshot: Path | None, kubeconfig: Path | None, context: str | None) -> dict[str, Any]:
    if snapshot is not None:
        return {"cluster": str(snapshot.resolve())}
    return {"kubeconfig": str(kubeconfig.resolve()) if kubeconfig else None, "context": context}


def _backend_call(call: Callable[[], T]) -> T:
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


def _eyes(probe: bool) -> Any:
    """The clock, and an ICMP prober with --probe: how a plan looks at dead nodes."""
    from reconciler import service
    from reconciler.controller.leader import SystemClock

    prober = None
    if probe:
        from reconciler.adapters.icmp import IcmpProber

        prober = IcmpProber()
    return service.Eyes(SystemClock(), prober)


def _deletion(backend: Any) -> Any:
    """Deletion through the backend, where it can delete nodes (a live cluster)."""
    from reconciler import service

    return service.Deletion(backend) if hasattr(backend, "delete_node") else None


def _topology_or_fail(directory: Path, rev: str | None) -> Any:
    """The valid topology (its warnings ride along into the plan), or a clear failure."""
    from reconciler.core import report

    result, sources = read_topology(directory, rev)
    if not result.ok:
        click.echo(report.text(result.diagnostics, sources), err=True)
        raise Failure(f"{directory}: {report.verdict(result)} - run `topoctl validate` for details")
    return result.topology


def _one_shot() -> None:
    """Plan and apply run once and exit: the cyclic garbage collector is switched off, as
    its passes over the hundreds of thousands of objects a large snapshot parses into
    cost a third of a plan's time, and those objects form no cycles to collect."""
    gc.disable()


def _print_plan(plan: Any, fmt: str, deltas: Any = ()) -> None:
    from reconciler.core import render

    if fmt == "json":
        click.echo(render.as_json(plan, deltas), nl=False)
    elif fmt == "markdown":
        click.echo(render.markdown(plan, deltas), nl=False)
    else:
        from rich.console import Console

        # One change, one line: CI logs, grep and diffs of saved output need them unbroken.
        console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
        if console.is_terminal:  # colours: rich parses the markup
            console.print(render.text(plan, deltas), soft_wrap=True)
        else:  # the same text, without rich's markup parsing (seconds for a large plan)
            click.echo(render.text(plan, deltas, markup=False))


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
    probe: bool,
) -> None:
    """Show what would change on which node, and why. Changes nothing in the cluster;
    with --out, the plan is saved to that file for `topoctl apply PLAN`.

    \b
      topoctl plan --cluster examples/nodes.yaml        against a snapshot
      topoctl plan --kubeconfig ~/.kube/prod            against a live cluster
      topoctl plan --base origin/main --format markdown  a pull-request comment

    Exit status: 0 success, 1 error; with --detailed-exitcode 0 no changes,
    1 error, 2 changes.
    """
    from reconciler import service

    _one_shot()
    if out is not None and not out.parent.is_dir():  # before the plan is computed
        raise Failure(f"--out {out}: no such directory {out.parent}")
    try:
        topology = _topology_or_fail(directory, rev)
        reader = open_cluster(snapshot, kubeconfig, context, writable=False)
        base_topology = _topology_or_fail(directory, base) if base else None
    except UsageFailure as err:
        if detailed_exitcode:  # there, 2 means "changes": every failure must be 1
            raise Failure(err.format_message()) from None
        raise
    eyes = _eyes(probe)
    result = _backend_call(lambda: service.plan_once(topology, reader, base_topology, eyes=eyes))
    the_plan = result.plan
    _print_plan(the_plan, fmt, result.deltas)
    if out is not None:
        from reconciler.core import savedplan

        _save(out, savedplan.dump(the_plan, _source(snapshot, kubeconfig, context)))
        click.echo(f"plan saved to {out}: apply it with `topoctl apply {out}`", err=True)
    if the_plan.errors:
        sys.exit(EXIT_INVALID)
    sys.exit(EXIT_CHANGES if detailed_exitcode and the_plan.has_changes else EXIT_OK)


def _save(out: Path, text: str) -> None:
    """Write a saved plan whole or not at all (a full disk leaves no truncated plan)."""
    from reconciler.adapters.atomicfile import write_atomic

    try:
        write_atomic(out, text.encode("utf-8"))
    except OSError as err:
        raise Failure(f"--out {out}: cannot write the plan: {err.strerror or err}") from None


def _read_saved(target: Path) -> str | None:
    """The text of TARGET when it is a saved plan (known by content, not by name)."""
    from reconciler.core import savedplan

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

    def stop(signum: int, frame: Any) -> None:
        raise _Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    finished = False
    try:
        value = run()
        finished = True
        return value
    except (KeyboardInterrupt, _Stopped) as err:
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
        if finished and _AS_PROGRAM:  # done and said so: a signal now would hide the status
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGTERM, previous)


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
    was made from has moved.

    \b
      topoctl apply --cluster nodes.yaml --yes    converge a snapshot file
      topoctl plan --out plan.json && topoctl apply plan.json
    """
    from reconciler import apply as executor
    from reconciler import service
    from reconciler.core import savedplan

    _one_shot()

    def confirm(the_plan: Any) -> bool:
        _print_plan(the_plan, "text")
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
                deletion = _deletion(opened[0])
                result = _backend_call(
                    lambda: service.apply_saved(loaded, opened[0], confirm, width, deletion)
                )
            except executor.StalePlanError as err:
                raise Failure(f"{target}: {err}") from None
        else:
            topology = _topology_or_fail(target, None)
            opened.append(
                open_cluster(snapshot, kubeconfig, context, writable=True, parallel=parallel)
            )
            width = 1 if snapshot is not None else parallel
            eyes, deletion = _eyes(probe), _deletion(opened[0])
            result = _backend_call(
                lambda: service.apply_once(topology, opened[0], confirm, width, eyes, deletion)
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
    """Export the cluster's nodes (a NodeList) for offline planning with --cluster.

    \b
      topoctl snapshot --kubeconfig ~/.kube/prod > nodes.yaml
      topoctl plan --cluster nodes.yaml
    """
    import json

    from reconciler import service

    reader = open_cluster(snapshot, kubeconfig, context, writable=False)
    doc = _backend_call(lambda: service.snapshot(reader))
    if fmt == "json":
        click.echo(json.dumps(doc, indent=4))
    else:
        import yaml

        click.echo(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False), nl=False)


def _env(name: str) -> str:
    return "TOPOCTL_" + name.upper().replace("-", "_")


def _run_option(name: str, **kwargs: Any) -> Callable[[F], F]:
    """A ``topoctl run`` flag that also reads its TOPOCTL_* variable (for manifests)."""
    return click.option(f"--{name}", envvar=_env(name), show_envvar=True, **kwargs)


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from reconciler.model.types import duration_seconds

    try:
        return float(value) if value.replace(".", "", 1).isdigit() else duration_seconds(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: write e.g. 10s, 1m or 30") from None


_FILE = click.Path(path_type=Path, dir_okay=False)


@main.command("run")
@_run_option("git-url", metavar="URL", help="file://, https:// or ssh:// (or scp-style) remote.")
@_run_option(
    "git-ref", default="main", show_default=True, metavar="REF", help="Branch or tag to follow."
)
@_run_option(
    "git-path",
    default="sites",
    show_default=True,
    metavar="DIR",
    help="The topology's directory in the repository.",
)
@_run_option(
    "source-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Read a mounted directory instead of git (a git-sync sidecar, a ConfigMap).",
)
@_run_option(
    "poll",
    default="60s",
    show_default=True,
    callback=_duration,
    metavar="DURATION",
    help="Fetch this often (and at once on a verified webhook).",
)
@_run_option("webhook-secret-file", type=_FILE, help="Enables POST /hooks/git (GitHub, GitLab).")
@_run_option("git-ssh-key-file", type=_FILE, help="SSH private key (ssh URLs).")
@_run_option("git-known-hosts-file", type=_FILE, help="known_hosts (required with ssh).")
@_run_option("git-token-file", type=_FILE, help="Token for https URLs.")
@_run_option(
    "cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="/var/cache/topoctl",
    show_default=True,
    help="Where the git clone is kept.",
)
@_run_option("kubeconfig", type=_FILE, help="Default: in-cluster, then as kubectl finds it.")
@_run_option("context", metavar="NAME", help="kubeconfig context to use.")
@_run_option(
    "listen",
    default="0.0.0.0:8080",
    show_default=True,
    metavar="HOST:PORT",
    help="Serves /metrics, /healthz, /readyz and POST /hooks/git.",
)
@_run_option(
    "lease-name", default="topoctl", show_default=True, metavar="NAME", help="The Lease to hold."
)
@_run_option("lease-namespace", metavar="NS", help="Default: the pod's, else the context's.")
@_run_option("identity", metavar="ID", help="This replica's name in the Lease (the pod name).")
@_run_option(
    "lease-duration",
    default="15s",
    show_default=True,
    callback=_duration,
    metavar="DURATION",
    help="A standby takes over this long after the holder stops renewing (renew "
    "deadline 2/3 of it, retry period 2/15, as client-go).",
)
@_run_option(
    "resync",
    default="10m",
    show_default=True,
    callback=_duration,
    metavar="DURATION",
    help="Plan everything this often, whatever the events.",
)
@_run_option("dry-run", is_flag=True, help="Everything but writes: they are logged and counted.")
@_run_option(
    "log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per line, for log pipelines.",
)
def run_controller(**flags: Any) -> None:
    """Run the controller: converge the cluster to git on every push and node event.

    One replica holds a Lease and writes; the others stand by, serving health and
    metrics. A commit whose topology is invalid is refused and the last good one stays
    in force. Credentials come from files (a mounted Secret), never from flags.

    \b
      topoctl run --git-url https://github.com/acme/topology.git \\
                  --git-token-file /etc/topoctl/credentials/token \\
                  --webhook-secret-file /etc/topoctl/credentials/webhook-secret
      topoctl run --source-dir ./sites --kubeconfig ~/.kube/config --dry-run
      topoctl status                              what the controller last did

    Exit status: 0 after SIGTERM (the write in flight finished, the lease released),
    1 after losing the lease or on a start-up error.
    """
    from reconciler import runner
    from reconciler.adapters.gitauth import Credentials, CredentialsError
    from reconciler.controller.logs import setup_logging
    from reconciler.controller.webhook import WebhookSecretError
    from reconciler.ports import BackendError

    if (flags["git_url"] is None) == (flags["source_dir"] is None):
        raise UsageFailure("give exactly one of --git-url URL or --source-dir DIR")
    setup_logging(flags.pop("log_format"))
    credentials = Credentials(
        ssh_key_file=flags.pop("git_ssh_key_file"),
        known_hosts_file=flags.pop("git_known_hosts_file"),
        token_file=flags.pop("git_token_file"),
    )
    settings = runner.RunSettings(credentials=credentials, **flags)
    try:
        sys.exit(runner.run(settings))
    except (CredentialsError, WebhookSecretError, BackendError, ValueError) as err:
        raise Failure(str(err)) from None


@main.group()
def render() -> None:
    """Generate configuration for other tools from the same topology."""


@render.command("talos")
@click.argument("directory", type=click.Path(path_type=Path), default=DEFAULT_DIR)
@click.option("--node", metavar="NAME", help="The patch for this node (listed, or a pool member).")
@click.option("--site", "site_name", metavar="SITE", help="A patch per listed node and pool.")
@click.option("--rev", metavar="REV", help="Read the topology at this git revision.")
@click.option(
    "--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
def render_talos(
    directory: Path, node: str | None, site_name: str | None, rev: str | None, fmt: str
) -> None:
    """Print Talos machine-config patches (strategic-merge form) for nodes of the topology.

    Each patch sets machine.nodeAnnotations (the Kilo keys and the topology's annotations,
    with exactly the values `topoctl apply` writes), machine.nodeLabels (only the labels a
    kubelet may set under NodeRestriction; the rest stay with the controller),
    machine.nodeTaints and machine.kubelet.extraArgs.cloud-provider=external.
    A pool member, whose name is not known yet, gets its pool's patch.

    \b
      topoctl render talos --node fsn1-gw-1 > fsn1-gw-1.patch.yaml
      talosctl machineconfig patch worker.yaml --patch @fsn1-gw-1.patch.yaml -o fsn1-gw-1.yaml
      topoctl render talos --site hetzner-fsn1        one YAML document per node and pool
    """
    from reconciler.core import talos

    if (node is None) == (site_name is None):
        raise UsageFailure("give exactly one of --node NAME or --site SITE")
    topology = _topology_or_fail(directory, rev)
    try:
        if node is not None:
            patches = [talos.node_patch(topology.sites, topology.cluster, node)]
        else:
            assert site_name is not None
            patches = talos.site_patches(topology.sites, topology.cluster, site_name)
    except talos.TalosError as err:
        raise Failure(str(err)) from None
    text = talos.as_json(patches) if fmt == "json" else talos.as_yaml(patches)
    click.echo(text, nl=False)


@main.command()
@click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Talk to the cluster in this kubeconfig.",
)
@click.option("--context", metavar="NAME", help="kubeconfig context to use.")
@click.option(
    "--lease-namespace",
    metavar="NS",
    envvar="TOPOCTL_LEASE_NAMESPACE",
    show_envvar=True,
    help="Where the controller runs (default: the pod's namespace, else the kubeconfig "
    "context's, else default).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def status(
    kubeconfig: Path | None, context: str | None, lease_namespace: str | None, fmt: str
) -> None:
    """What the controller last did, read from the cluster (the topoctl-status ConfigMap).

    \b
      topoctl status --kubeconfig ~/.kube/prod
      topoctl status --format json | jq .sites
    """
    import json

    from reconciler.adapters.kubelease import discover_namespace
    from reconciler.adapters.kubestatus import KubeStatusStore
    from reconciler.controller.status import STATUS_NAME, read_status, status_text
    from reconciler.ports import BackendError

    namespace = lease_namespace or discover_namespace(kubeconfig, context)
    backend = open_cluster(None, kubeconfig, context, writable=False)
    try:
        doc = read_status(KubeStatusStore(backend.api, namespace, STATUS_NAME))
    except BackendError as err:
        raise Failure(f"reading {namespace}/{STATUS_NAME}: {err}") from None
    if doc is None:
        raise Failure(
            f"no {STATUS_NAME} ConfigMap in namespace {namespace}: the controller has not "
            "published a status there (another --lease-namespace?)"
        )
    click.echo(json.dumps(doc, indent=2, sort_keys=True) if fmt == "json" else status_text(doc))


def _seconds(text: str) -> float:
    from reconciler.model.types import duration_seconds

    try:
        # ASCII digits only: float() and isdigit() also take other scripts' digits.
        plain = text.isascii() and text.replace(".", "", 1).isdigit()
        return float(text) if plain else duration_seconds(text)
    except ValueError:
        raise UsageFailure(f"--interval {text!r}: write e.g. 10s, 1m or 30") from None


@main.command()
@click.option(
    "--node",
    required=True,
    envvar="NODE_NAME",
    show_envvar=True,
    help="This node's name (in a DaemonSet: from the downward API).",
)
@click.option(
    "--netns",
    metavar="NAME",
    help="Work in this named network namespace (ip netns) instead of the agent's own.",
)
@click.option("--once", is_flag=True, help="One pass, then exit: 0 converged, 1 not.")
@click.option(
    "--interval",
    default="10s",
    show_default=True,
    help="Time between passes (a watch on the Node wakes the agent sooner).",
)
@cluster_options
@click.option("-v", "--verbose", is_flag=True, help="Log every pass.")
def agent(
    node: str,
    netns: str | None,
    once: bool,
    interval: str,
    snapshot: Path | None,
    kubeconfig: Path | None,
    context: str | None,
    verbose: bool,
) -> None:
    """The node agent: addresses, the uninitialized taint, and owned routes.

    It reads only its own Node: the topoctl.io/agent annotation that `topoctl
    apply` (or the controller) publishes. Each pass:

    \b
      - sets ExternalIP/InternalIP in status.addresses from the source address
        of the route to the published targets (as local-ccm does), keeping
        every other address;
      - removes node.cloudprovider.kubernetes.io/uninitialized once they are set;
      - converges the published routes, touching only routes that carry
        topoctl's rtnetlink protocol (never Kilo's, Cilium's or the kernel's);
      - reports the TopologyReady condition, written only when it changes.

    \b
      topoctl agent --node fsn1-worker-1 --once --kubeconfig ~/.kube/config
    """
    import logging
    import threading

    from reconciler.adapters.kernelroutes import KernelRouteTable
    from reconciler.adapters.netlink import NetlinkAdapter, NetlinkAdapterError
    from reconciler.agent import Agent, run_forever
    from reconciler.ports import BackendError

    logging.basicConfig(
        level=logging.INFO if verbose or not once else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    seconds = _seconds(interval)
    backend = open_cluster(snapshot, kubeconfig, context, writable=True)
    try:
        netlink = NetlinkAdapter(netns)
    except (NetlinkAdapterError, OSError) as err:
        raise Failure(f"netlink{f' in netns {netns}' if netns else ''}: {err}") from None
    with netlink:
        the_agent = Agent(node, backend, backend, KernelRouteTable(netlink))
        if once:
            try:
                report = the_agent.run_once()
            except BackendError as err:
                raise Failure(f"node {node}: {err}") from None
            c = report.condition
            click.echo(f"{node}: TopologyReady={c.status} ({c.reason}): {c.message}")
            for write in report.node_writes:
                click.echo(f"  wrote {write}")
            if report.route_writes:
                click.echo(f"  {report.route_writes} route write(s)")
            sys.exit(EXIT_OK if report.converged else EXIT_INVALID)
        stop = threading.Event()
        try:
            run_forever(the_agent, seconds, stop, backend)
        except KeyboardInterrupt:
            stop.set()


_AS_PROGRAM: list[bool] = []  # run() fills it: the process ends with the command


def run() -> None:
    """Entry point that keeps tracebacks away from users unless TOPOCTL_DEBUG is set."""
    _AS_PROGRAM.append(True)
    try:
        main(standalone_mode=True)
    except OSError as err:  # output that cannot be written (a full disk, a closed pipe)
        if os.environ.get("TOPOCTL_DEBUG"):
            raise
        where = f"{err.filename}: " if err.filename else "writing the output: "
        _stderr(f"topoctl: error: {where}{err.strerror or err}")
        sys.exit(EXIT_INVALID)
    except Exception as err:  # pragma: no cover - last resort
        if os.environ.get("TOPOCTL_DEBUG"):
            raise
        click.echo(f"topoctl: internal error: {err!r} (set TOPOCTL_DEBUG=1 for details)", err=True)
        sys.exit(EXIT_INVALID)
    finally:  # the command is done and has said so: a signal now would only hide its status
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def _stderr(line: str) -> None:
    with contextlib.suppress(OSError):  # stderr gone too: the exit status is all that is left
        click.echo(line, err=True)
