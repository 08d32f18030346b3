"""``topoctl suspend``, ``topoctl resume`` and ``topoctl reconcile``: Flux's gestures,
recorded in the controller's status ConfigMap (its one owner,
:class:`~reconciler.usecases.statusmap.StatusConfigMap`), which the controller reads
every two seconds."""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reconciler.cli import main
from reconciler.cli.common import F, Failure, open_cluster

RIGHTS = (
    "get and update on configmaps/topoctl-status in {ns} (and create, the first time): "
    "see docs/controller.md, 'Suspend, resume, reconcile'"
)


def _where(fn: F) -> F:
    """--kubeconfig, --context and --lease-namespace, as ``topoctl status`` has them."""
    fn = click.option(
        "--lease-namespace",
        metavar="NS",
        envvar="TOPOCTL_LEASE_NAMESPACE",
        show_envvar=True,
        help="Where the controller runs (default: the pod's namespace, else the kubeconfig "
        "context's, else default).",
    )(fn)
    fn = click.option("--context", metavar="NAME", help="kubeconfig context to use.")(fn)
    fn = click.option(
        "--kubeconfig",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Talk to the cluster in this kubeconfig.",
    )(fn)
    return fn


def _status_map(kubeconfig: Path | None, context: str | None, namespace: str | None) -> Any:
    """The status ConfigMap's owner, and its namespace."""
    from reconciler.adapters.kubelease import discover_namespace
    from reconciler.adapters.kubestatus import KubeStatusStore
    from reconciler.usecases.statusmap import STATUS_NAME, StatusConfigMap

    ns = namespace or discover_namespace(kubeconfig, context)
    backend = open_cluster(None, kubeconfig, context, writable=True)
    return StatusConfigMap(KubeStatusStore(backend.api, ns, STATUS_NAME)), ns


def _call(namespace: str, call: Callable[[], Any]) -> Any:
    """A read or write of the status ConfigMap; a refusal says what a person needs."""
    from reconciler.ports import BackendError

    try:
        return call()
    except BackendError as err:
        text = str(err)
        hint = (
            f" (this needs {RIGHTS.format(ns=namespace)})"
            if "403" in text or "orbidden" in text
            else ""
        )
        raise Failure(f"{namespace}/topoctl-status: {text}{hint}") from None


def _handled(echoed: str, request: str) -> bool:
    """Whether the echo answers ``request``: it is the request, or a later one of the same
    form (requests that come while a pass runs are answered by the next one's echo)."""
    return echoed == request or (len(echoed) == len(request) and echoed > request)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _who(kubeconfig: Path | None, context: str | None) -> str:
    """The local login and host, and the kubeconfig user when there is one."""
    from reconciler.adapters.kubelease import context_user

    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "?"
    user = context_user(kubeconfig, context)
    return f"{login}@{socket.gethostname()}" + (f" (kubeconfig user {user})" if user else "")


def _scope(sites: tuple[str, ...]) -> str:
    return "the whole cluster" if not sites else "site " + ", ".join(sites)


@main.command(
    short_help="Stop the controller writing (everywhere, or some sites); it keeps planning."
)
@click.option(
    "--site",
    "sites",
    multiple=True,
    metavar="SITE",
    help="Suspend this site only (repeat for several). Default: the whole cluster.",
)
@click.option("--reason", default="", metavar="TEXT", help="Why, for the status and the logs.")
@click.option(
    "--by", metavar="NAME", help="Who, as recorded (default: login@host and the kubeconfig user)."
)
@_where
def suspend(
    sites: tuple[str, ...],
    reason: str,
    by: str | None,
    kubeconfig: Path | None,
    context: str | None,
    lease_namespace: str | None,
) -> None:
    """Stop the controller writing: the whole cluster, or some sites (as `flux suspend`).

    The controller keeps fetching git and planning, and reports what it would change
    (the drift) in `topoctl status`, but sends no Node write, deletes no node and
    records no Event of a write in a suspended scope, until `topoctl resume`. It sees
    the suspension within two seconds; who, when and why are recorded in the status
    ConfigMap and logged by the controller. The node agents are not suspended: they
    keep acting on what is already written.

    \b
      topoctl suspend --reason "incident 4711: hands off the mesh"
      topoctl suspend --site fsn1 --reason "rack move"
      topoctl status                   SUSPENDED, and the drift from git
      topoctl resume                   write again (everything pending goes at once)
    """
    from reconciler.model.suspension import Hold

    status, ns = _status_map(kubeconfig, context, lease_namespace)
    hold = Hold(by or _who(kubeconfig, context), _now()[:19] + "Z", reason)
    stored = _call(ns, lambda: status.update_suspension(lambda s: s.suspend(sites, hold)))
    click.echo(f"suspended {_scope(sites)} {hold.describe()}")
    known = _call(ns, status.read_status) or {}
    planned = set(known.get("sites") or {})
    unknown = [s for s in sites if planned and s not in planned]
    if unknown:
        click.echo(
            f"note: {', '.join(unknown)}: not a site the controller's status names "
            f"(known: {', '.join(sorted(planned))}); suspended as given",
            err=True,
        )
    click.echo(
        "the controller plans and reports drift there, and writes nothing: "
        "`topoctl status` shows it, `topoctl resume"
        + ("".join(f" --site {s}" for s in sites))
        + "` ends it"
    )
    if stored.cluster is not None and sites:
        click.echo(f"(the whole cluster is suspended too, {stored.cluster.describe()})")


@main.command(short_help="Let the controller write again what `topoctl suspend` stopped.")
@click.option(
    "--site",
    "sites",
    multiple=True,
    metavar="SITE",
    help="Resume this site (repeat for several). Default: the whole cluster's suspension.",
)
@click.option(
    "--all", "everything", is_flag=True, help="Resume everything: the cluster and every site."
)
@_where
def resume(
    sites: tuple[str, ...],
    everything: bool,
    kubeconfig: Path | None,
    context: str | None,
    lease_namespace: str | None,
) -> None:
    """Let the controller write again what `topoctl suspend` stopped (as `flux resume`).

    The controller sees it within two seconds, plans everything at once and writes what
    drifted meanwhile. Without --site, the whole cluster's suspension ends and sites
    suspended by name stay suspended (the command says which); --all ends every one.

    \b
      topoctl resume
      topoctl resume --site fsn1
      topoctl resume --all
    """
    if everything and sites:
        raise click.UsageError("give --site or --all, not both")
    status, ns = _status_map(kubeconfig, context, lease_namespace)
    stored = _call(ns, lambda: status.update_suspension(lambda s: s.resume(sites, everything)))
    click.echo(f"resumed {'everything' if everything else _scope(sites)}")
    left = stored.scopes()
    if left:
        still = ", ".join("the whole cluster" if k == "*" else k for k in left)
        click.echo(f"still suspended: {still} (topoctl resume --all ends every suspension)")
    else:
        click.echo("nothing is suspended: the controller writes what drifted at once")


@main.command(short_help="Make the controller fetch git and plan everything now.")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait until the controller says it fetched and planned (lastHandledReconcileAt).",
)
@click.option(
    "--timeout",
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="How long --wait waits before failing.",
)
@_where
def reconcile(
    wait: bool,
    timeout: str,
    kubeconfig: Path | None,
    context: str | None,
    lease_namespace: str | None,
) -> None:
    """Make the controller fetch git and plan everything now (as `flux reconcile`).

    Sets the annotation topoctl.io/requested-at on the status ConfigMap (as Flux's
    reconcile.fluxcd.io/requestedAt); the replica holding the lease sees it within two
    seconds, fetches, plans every site (writing what differs, unless suspended) and
    echoes the request as lastHandledReconcileAt in its status. Without --wait the
    command returns once the request is recorded.

    \b
      topoctl reconcile --wait
      kubectl -n topoctl-system annotate configmap topoctl-status \\
          topoctl.io/requested-at="$(date -Is)" --overwrite      the same, by hand

    Exit status: 0 once recorded (with --wait: handled), 1 when it could not be
    recorded or --wait timed out.
    """
    from reconciler.model.types import flag_seconds

    try:
        seconds = flag_seconds(timeout)
    except ValueError:
        raise click.BadParameter(
            f"{timeout!r}: write e.g. 30s or 2m", param_hint="--timeout"
        ) from None
    status, ns = _status_map(kubeconfig, context, lease_namespace)
    request = _now()
    _call(ns, lambda: status.request_reconcile(request))
    click.echo(f"reconcile requested at {request}")
    if not wait:
        return
    deadline = time.monotonic() + seconds
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        doc = _call(ns, status.read_status) or {}
        if _handled(str(doc.get("lastHandledReconcileAt") or ""), request):
            break
        time.sleep(0.5)
    else:
        raise Failure(
            f"not handled within {timeout}: is the controller running and holding its "
            f"lease? (kubectl -n {ns} get lease topoctl; its logs say 'reconcile requested')"
        )
    revision = doc.get("revision") or "(none)"
    click.echo(f"fetched and planned: revision {revision}")
    refused = doc.get("refused") or {}
    if refused.get("revision"):
        click.echo(f"newest commit refused: {refused['revision']} (topoctl status says why)")
    if doc.get("suspended"):
        click.echo(f"suspended: {doc.get('driftNodes', 0)} node(s) drift from git, unwritten")
