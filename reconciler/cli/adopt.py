"""``topoctl import``: adopt a running cluster by writing the topology its nodes carry."""

from __future__ import annotations

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
)


@main.command("import")
@cluster_options
@click.option(
    "--out",
    "out",
    default=str(DEFAULT_DIR),
    show_default=True,
    metavar="DIR",
    help="Where to write cluster.yaml and one <site>.yaml per Kilo location; '-' prints "
    "them to stdout (the report then goes to stderr).",
)
@click.option("--force", is_flag=True, help="Overwrite files of the same names in DIR.")
@click.option(
    "--name",
    "cluster_name",
    metavar="NAME",
    help="The Cluster document's metadata.name (default: the kubeconfig context, or the "
    "snapshot file's name).",
)
def import_(
    snapshot: Path | None,
    kubeconfig: Path | None,
    context: str | None,
    out: str,
    force: bool,
    cluster_name: str | None,
) -> None:
    """Write sites/*.yaml from what the cluster's nodes carry today.

    A Site per Kilo location (kilo.squat.ai/location, else Kilo's fallback, the
    topology.kubernetes.io/region label), with its members, pinned leaders (Kilo reads
    the leader key's presence, so "false" is a leader too), forced endpoints and
    internal IPs, keepalive and allowed location IPs - each as Kilo reads it, not as
    the text seems to say: a keepalive of "20s" is 0 to Kilo, so none is imported and
    the report says how to write what was meant. Pools are proposed from shared name
    prefixes and instance types: written where their selector claims exactly those
    nodes, as YAML comments otherwise. The Cluster document takes Kilo's granularity
    from kilo.squat.ai/granularity. Keys Talos manages are reported and left to it.

    Nodes are left out, and said why, when git cannot state what Kilo reads on them
    (no location, a location that is not a DNS-1123 label, a value Kilo takes that
    validate refuses): no site claims them, so no plan touches them.

    Before writing, the files are validated and planned against the same nodes: the
    report ends with that plan, which changes nothing Kilo or Kubernetes reads
    (topoctl's own records, and rewrites Kilo reads the same way, marked "same for
    Kilo"), or lists what it would change and the note that explains it.

    \b
      topoctl import --cluster examples/nodes.yaml --out /tmp/sites
      topoctl import --kubeconfig ~/.kube/prod            writes sites/
      topoctl import --kubeconfig ~/.kube/prod --out -    prints the files instead
      topoctl plan /tmp/sites --cluster examples/nodes.yaml

    Exit status: 0 written, 1 files exist (without --force) or failure, 2 usage error.
    """
    from reconciler.usecases.importing import InvalidImportError, import_cluster

    reader = open_cluster(snapshot, kubeconfig, context, writable=False)
    directory = None if out == "-" else Path(out)
    if directory is not None and directory.exists() and not directory.is_dir():
        raise UsageFailure(f"--out {out}: not a directory")
    source = _source(snapshot, kubeconfig, context)
    name = cluster_name or (snapshot.stem if snapshot else context) or "cluster"
    try:
        now = plan_time(reader)  # Kilo's freshness judged as `topoctl plan` judges it
        result = backend_call(lambda: import_cluster(reader, source, name, now))
    except InvalidImportError as err:
        raise Failure(f"{err} (a fault in topoctl: please report it)") from None
    if directory is None:
        for i, text in enumerate(result.files.values()):
            click.echo(("---\n" if i else "") + text, nl=False)
        click.echo(result.report(["(stdout)"]), nl=False, err=True)
        return
    targets = {directory / name: text for name, text in result.files.items()}
    _write(directory, targets, force)
    click.echo(result.report([str(path) for path in targets]), nl=False)
    others = sorted(
        str(p)
        for p in directory.rglob("*")
        if p.suffix in (".yaml", ".yml") and p not in targets and p.is_file()
    )
    if others:
        click.echo(
            f"note: {directory} also holds {', '.join(others[:5])}"
            f"{' ...' if len(others) > 5 else ''}: validate and plan read them with the "
            "imported files",
            err=True,
        )


def _source(snapshot: Path | None, kubeconfig: Path | None, context: str | None) -> str:
    if snapshot is not None:
        return f"the node snapshot {snapshot.name}"
    where = f"kubeconfig {kubeconfig.name}" if kubeconfig else "the current kubeconfig"
    return f"the cluster of {where}" + (f", context {context}" if context else "")


def _write(directory: Path, targets: dict[Path, str], force: bool) -> None:
    """Every file whole or none: refused before anything is written when one exists."""
    from reconciler.adapters.atomicfile import write_atomic

    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise Failure(
            f"{', '.join(existing)} already exist(s): nothing written - pass --force to "
            "overwrite, or --out another directory"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path, text in targets.items():
            write_atomic(path, text.encode("utf-8"))
    except OSError as err:
        raise Failure(f"{directory}: cannot write: {err.strerror or err}") from None
