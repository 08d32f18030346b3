"""``topoctl validate``, ``schema`` and ``render talos``: the topology on its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from reconciler.cli import main
from reconciler.cli.common import (
    DEFAULT_DIR,
    EXIT_INVALID,
    EXIT_OK,
    Failure,
    UsageFailure,
    read_topology,
    topology_or_fail,
)
from reconciler.core.rendering.talos_versions import NEWEST_TALOS


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
    from reconciler.core.rendering import validation

    result, sources = read_topology(directory, rev)
    if fmt == "json":
        click.echo(validation.as_json(result))
    elif fmt == "github":
        annotations = validation.github(result.diagnostics)
        if annotations:
            click.echo(annotations)
        click.echo(validation.verdict(result))
    else:
        _print_text(result, sources)
    sys.exit(EXIT_OK if result.ok else EXIT_INVALID)


def _print_text(result: Any, sources: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from reconciler.core.rendering import validation

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    if result.diagnostics:
        for line in validation.text(result.diagnostics, sources).splitlines():
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
        for s in validation.summarize(result.topology):
            table.add_row(  # long lists are cut: `--format json` has them whole
                s.name,
                "\n".join(validation.first_of(s.nodes)) or "-",
                "\n".join(validation.first_of([f"{n}: {sel}" for n, sel in s.pools])) or "-",
                ", ".join(validation.first_of(s.leaders)) or "(Kilo decides)",
                "\n".join(validation.first_of(s.allowed_location_ips)) or "-",
                str(s.routes),
            )
        console.print(table)
    console.print(
        validation.verdict(result),
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
    from reconciler.core.rendering.schema import topology_schema_text

    click.echo(topology_schema_text(), nl=False)


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
@click.option(
    "--talos-version",
    "version",
    metavar="V",
    default=NEWEST_TALOS,
    show_default=True,
    help="The Talos version the machine config is for: 1.14 and later take KubeNodeConfig "
    "and KubeletConfig documents, earlier versions (from 1.8) the machine.* fields.",
)
def render_talos(
    directory: Path,
    node: str | None,
    site_name: str | None,
    rev: str | None,
    fmt: str,
    version: str,
) -> None:
    """Print Talos machine-config patches (strategic-merge form) for nodes of the topology.

    Each patch sets the node's annotations (the Kilo keys and the topology's annotations,
    with exactly the values `topoctl apply` writes), its labels (only those a kubelet may
    set under NodeRestriction; the rest stay with the controller), its taints, and the
    kubelet's extraArgs cloud-provider=external. A pool member, whose name is not known
    yet, gets its pool's patch.

    For Talos 1.14 and later (the default) a patch is two documents, KubeNodeConfig
    (labels, annotations, taints) and KubeletConfig (extraArgs), which Talos merges into
    the documents of the same kinds that `talosctl gen config` writes from 1.14 on. For
    earlier versions, or a machine config still in the v1alpha1 form, give
    --talos-version 1.13: machine.nodeLabels, machine.nodeAnnotations,
    machine.nodeTaints and machine.kubelet.extraArgs. Never both: Talos refuses a
    config that sets the same thing in both forms.

    \b
      topoctl render talos --node fsn1-gw-1 > fsn1-gw-1.patch.yaml
      talosctl machineconfig patch worker.yaml --patch @fsn1-gw-1.patch.yaml -o fsn1-gw-1.yaml
      topoctl render talos --site hetzner-fsn1        the documents of each node and pool
      topoctl render talos --node fsn1-gw-1 --talos-version 1.13   the machine.* form
    """
    from reconciler.core.rendering import talos
    from reconciler.core.rendering.talos_versions import TalosVersionError, talos_form

    if (node is None) == (site_name is None):
        raise UsageFailure("give exactly one of --node NAME or --site SITE")
    try:
        form = talos_form(version)
    except TalosVersionError as err:
        raise UsageFailure(f"--talos-version: {err}") from None
    topology = topology_or_fail(directory, rev)
    try:
        if node is not None:
            patches = [talos.node_patch(topology.sites, topology.cluster, node)]
        else:
            assert site_name is not None
            patches = talos.site_patches(topology.sites, topology.cluster, site_name)
    except talos.TalosError as err:
        raise Failure(str(err)) from None
    text = talos.as_json(patches, form) if fmt == "json" else talos.as_yaml(patches, form)
    click.echo(text, nl=False)
