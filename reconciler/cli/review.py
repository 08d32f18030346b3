"""``topoctl comment`` (the plan as one comment on a pull or merge request) and ``topoctl
graph`` (a picture of the mesh): what a change is reviewed with."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from reconciler.cli import main
from reconciler.cli.common import (
    DEFAULT_DIR,
    Failure,
    UsageFailure,
    backend_call,
    cluster_options,
    open_cluster,
    plan_time,
    topology_or_fail,
)

_GITHUB = re.compile(r"^(?P<repo>[\w.-]+/[\w.-]+)#(?P<number>\d+)$")
_GITLAB = re.compile(r"^(?P<project>[^!\s]+)!(?P<number>\d+)$")


@main.command("comment")
@click.option(
    "--body-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="The markdown to post (`topoctl plan --format markdown` writes one that fits).",
)
@click.option("--github", metavar="OWNER/NAME#N", help="A GitHub pull request.")
@click.option("--gitlab", metavar="PROJECT!N", help="A GitLab merge request (path or id).")
@click.option(
    "--api-url",
    metavar="URL",
    help="Default: $GITHUB_API_URL or https://api.github.com; $CI_API_V4_URL or "
    "https://gitlab.com/api/v4.",
)
def comment(body_file: Path, github: str | None, gitlab: str | None, api_url: str | None) -> None:
    """Post the plan as ONE comment, edited in place on every later run.

    The comment is found again by a hidden marker line; there is never a second one.
    The token comes from the environment: GITHUB_TOKEN (the job needs `permissions:
    pull-requests: write`) or TOPOCTL_GITLAB_TOKEN (a project access token with the
    `api` scope; CI_JOB_TOKEN cannot write notes).

    \b
      topoctl plan --base origin/main --format markdown > plan.md
      topoctl comment --body-file plan.md --github acme/topology#7
      topoctl comment --body-file plan.md --gitlab acme/topology!7
    """
    from reconciler.adapters.forge import GitHubThread, GitLabThread
    from reconciler.ports import CommentThread, ForgeError
    from reconciler.usecases.comment import upsert

    if (github is None) == (gitlab is None):
        raise UsageFailure("give exactly one of --github OWNER/NAME#N or --gitlab PROJECT!N")
    thread: CommentThread
    if github is not None:
        found = _GITHUB.match(github)
        if found is None:
            raise UsageFailure(f"--github {github}: write OWNER/NAME#NUMBER, e.g. acme/topo#7")
        token = _token("GITHUB_TOKEN", "GH_TOKEN")
        url = api_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com"
        thread = GitHubThread(url, token, found["repo"], int(found["number"]))
    else:
        assert gitlab is not None
        found = _GITLAB.match(gitlab)
        if found is None:
            raise UsageFailure(f"--gitlab {gitlab}: write PROJECT!IID, e.g. acme/topology!7")
        token = _token("TOPOCTL_GITLAB_TOKEN", "GITLAB_TOKEN")
        url = api_url or os.environ.get("CI_API_V4_URL") or "https://gitlab.com/api/v4"
        thread = GitLabThread(url, token, found["project"], int(found["number"]))
    try:
        body = body_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise Failure(f"{body_file}: cannot read: {err}") from None
    try:
        posted = upsert(thread, body)
    except ForgeError as err:
        raise Failure(f"{thread.describe()}: {err}") from None
    click.echo(f"topoctl: {posted.action} comment {posted.comment_id} on {thread.describe()}")
    if posted.duplicates:
        names = ", ".join(map(str, posted.duplicates))
        click.echo(f"topoctl: other plan comments left as they are: {names}", err=True)


def _token(*names: str) -> str:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    raise UsageFailure(f"no token: set {' or '.join(names)}")


@main.command("graph")
@click.argument("directory", type=click.Path(path_type=Path), default=DEFAULT_DIR)
@click.option("--rev", metavar="REV", help="Draw the topology at this git revision.")
@cluster_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="mermaid renders in GitHub and GitLab markdown; dot is Graphviz (`| dot -Tsvg`).",
)
@click.option(
    "--lease-namespace",
    metavar="NS",
    envvar="TOPOCTL_LEASE_NAMESPACE",
    help="Where the controller's status is (with --kubeconfig; default as `topoctl status`).",
)
def graph(
    directory: Path,
    rev: str | None,
    snapshot: Path | None,
    kubeconfig: Path | None,
    context: str | None,
    fmt: str,
    lease_namespace: str | None,
) -> None:
    """Draw the mesh once the plan is applied: locations with their allowed-location-ips,
    their nodes (a pool of many as a count), Kilo's leader of each, and the WireGuard
    tunnels between leaders (or between nodes under granularity full or cross). What the
    plan changes is marked: written nodes in amber, a leader change in red. With
    --kubeconfig, the leader the controller last saw live is named where it differs.

    \b
      topoctl graph --cluster cluster/nodes.yaml            Mermaid, for markdown
      topoctl graph --kubeconfig ~/.kube/prod --format dot | dot -Tsvg > mesh.svg
      topoctl status --graph                                the live mesh, from the status
    """
    from reconciler.core.rendering import graphs, mesh
    from reconciler.usecases.plan import plan_once

    topology = topology_or_fail(directory, rev)
    reader = open_cluster(snapshot, kubeconfig, context, writable=False)
    now = plan_time(reader)  # Kilo's freshness judged as `topoctl plan` judges it
    result = backend_call(lambda: plan_once(topology, reader, now=now))
    live = _live_leaders(reader, kubeconfig, context, lease_namespace)
    picture = mesh.from_plan(topology, result.plan, live)
    click.echo(graphs.dot(picture) if fmt == "dot" else graphs.mermaid(picture), nl=False)


def _live_leaders(
    reader: object, kubeconfig: Path | None, context: str | None, namespace: str | None
) -> dict[str, str | None]:
    """Each site's leader as the controller last published it (none off a live cluster,
    or when it published nothing: said on stderr)."""
    from reconciler.adapters.kube import KubeBackend

    if not isinstance(reader, KubeBackend):
        return {}
    from reconciler.adapters.kubelease import discover_namespace
    from reconciler.adapters.kubestatus import KubeStatusStore
    from reconciler.ports import BackendError
    from reconciler.usecases.statusmap import STATUS_NAME, StatusConfigMap

    where = namespace or discover_namespace(kubeconfig, context)
    try:
        doc = StatusConfigMap(KubeStatusStore(reader.api, where, STATUS_NAME)).read_status()
    except BackendError as err:
        click.echo(f"topoctl: no live leaders: reading {where}/{STATUS_NAME}: {err}", err=True)
        return {}
    if doc is None:
        click.echo(f"topoctl: no live leaders: no {STATUS_NAME} in {where}", err=True)
        return {}
    sites = doc.get("sites") or {}
    return {name: (s.get("leader") or {}).get("current") for name, s in sites.items()}
