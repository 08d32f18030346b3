"""The ``topoctl`` command line: for people at a terminal and for CI."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from reconciler import __version__

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
DEFAULT_DIR = Path("sites")


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

    Describe each location in sites/*.yaml (Site and Cluster documents, see
    `topoctl schema`), then:

    \b
      topoctl validate sites/          check every file, every rule, at once
      topoctl validate --rev HEAD~1    the same, at a git revision
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
    sources = {}
    for f in files:
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
            console.print(line, style=style, markup=False)
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
            table.add_row(
                s.name,
                "\n".join(s.nodes) or "-",
                "\n".join(f"{n}: {sel}" for n, sel in s.pools) or "-",
                ", ".join(s.leaders) or "(Kilo decides)",
                "\n".join(s.allowed_location_ips) or "-",
                str(s.routes),
            )
        console.print(table)
    console.print(report.verdict(result), style="green" if result.ok else "red bold", markup=False)


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


def run() -> None:
    """Entry point that keeps tracebacks away from users unless TOPOCTL_DEBUG is set."""
    try:
        main(standalone_mode=True)
    except Exception as err:  # pragma: no cover - last resort
        if os.environ.get("TOPOCTL_DEBUG"):
            raise
        click.echo(f"topoctl: internal error: {err!r} (set TOPOCTL_DEBUG=1 for details)", err=True)
        sys.exit(EXIT_INVALID)
