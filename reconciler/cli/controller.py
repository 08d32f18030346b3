"""``topoctl run`` (the controller) and ``topoctl status`` (what it last did)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from reconciler.cli import main
from reconciler.cli.common import (
    F,
    Failure,
    UsageFailure,
    open_cluster,
)


def _env(name: str) -> str:
    return "TOPOCTL_" + name.upper().replace("-", "_")


def _run_option(name: str, **kwargs: Any) -> Callable[[F], F]:
    """A ``topoctl run`` flag that also reads its TOPOCTL_* variable (for manifests)."""
    return click.option(f"--{name}", envvar=_env(name), show_envvar=True, **kwargs)


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from reconciler.model.types import flag_seconds

    try:
        return flag_seconds(value)
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
    "commit-status",
    type=click.Choice(["github", "gitlab"]),
    help="Set a commit status on the revision in force: pending when fetched, success "
    "once converged, failure (with the first errors) when refused. Off by default.",
)
@_run_option(
    "commit-status-token-file",
    type=_FILE,
    help="Token for the commit statuses (GitHub: 'Commit statuses: write'; GitLab: "
    "`api` scope, Developer).",
)
@_run_option(
    "commit-status-repo",
    metavar="OWNER/NAME",
    help="The repository (GitLab: the project path). Default: from --git-url.",
)
@_run_option(
    "commit-status-api-url",
    metavar="URL",
    help="The forge's API. Default: from --git-url (api.github.com, https://HOST/api/v3 "
    "for GitHub Enterprise, https://HOST/api/v4 for GitLab).",
)
@_run_option(
    "commit-status-context",
    default="topoctl",
    show_default=True,
    metavar="NAME",
    help="The status's name on the commit (one per cluster when several follow a repo).",
)
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
      topoctl run --git-url https://github.com/acme/topology.git ... \
                  --commit-status github \
                  --commit-status-token-file /etc/topoctl/forge/token
      topoctl status                              what the controller last did
      topoctl suspend / resume / reconcile        stop writing, write again, fetch now

    Exit status: 0 after SIGTERM (the write in flight finished, the lease released),
    1 after losing the lease or on a start-up error.
    """
    from reconciler.adapters.gitauth import Credentials, CredentialsError
    from reconciler.controller import wiring
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
    settings = wiring.RunSettings(credentials=credentials, **flags)
    try:
        sys.exit(wiring.run(settings))
    except (CredentialsError, WebhookSecretError, BackendError, ValueError) as err:
        raise Failure(str(err)) from None


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
@click.option(
    "--graph",
    "graph_fmt",
    type=click.Choice(["mermaid", "dot"]),
    is_flag=False,
    flag_value="mermaid",
    help="Draw the live mesh instead: each site's members and Kilo's leader now "
    "(--graph dot for Graphviz).",
)
def status(
    kubeconfig: Path | None,
    context: str | None,
    lease_namespace: str | None,
    fmt: str,
    graph_fmt: str | None,
) -> None:
    """What the controller last did, read from the cluster (the topoctl-status ConfigMap).

    \b
      topoctl status --kubeconfig ~/.kube/prod
      topoctl status --format json | jq .sites
      topoctl status --graph                    the live mesh as a Mermaid diagram
    """
    import json

    from reconciler.adapters.kubelease import discover_namespace
    from reconciler.adapters.kubestatus import KubeStatusStore
    from reconciler.core.rendering.status import status_text
    from reconciler.ports import BackendError
    from reconciler.usecases.statusmap import STATUS_NAME, StatusConfigMap

    namespace = lease_namespace or discover_namespace(kubeconfig, context)
    backend = open_cluster(None, kubeconfig, context, writable=False)
    try:
        doc = StatusConfigMap(KubeStatusStore(backend.api, namespace, STATUS_NAME)).read_status()
    except BackendError as err:
        raise Failure(f"reading {namespace}/{STATUS_NAME}: {err}") from None
    if doc is None:
        raise Failure(
            f"no {STATUS_NAME} ConfigMap in namespace {namespace}: the controller has not "
            "published a status there (another --lease-namespace?)"
        )
    if graph_fmt is not None:
        from reconciler.core.rendering import graphs, mesh

        picture = mesh.from_status(doc)
        click.echo(graphs.dot(picture) if graph_fmt == "dot" else graphs.mermaid(picture), nl=False)
        return
    click.echo(json.dumps(doc, indent=2, sort_keys=True) if fmt == "json" else status_text(doc))
