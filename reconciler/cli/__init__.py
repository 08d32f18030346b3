"""The ``topoctl`` command line: for people at a terminal and for CI.

The group is here; its commands live beside it, one module per kind of work
(topology, cluster, controller, agent), and register themselves on import."""

from __future__ import annotations

import os
import sys

import click

from reconciler import __version__
from reconciler.cli.common import AS_PROGRAM, EXIT_INVALID, ONE_SHOT, leave, output_failed


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="topoctl")
def main() -> None:
    """Declarative topology for Kubernetes clusters meshed by Kilo.

    Describe each location in sites/*.yaml (Site and Cluster documents; see
    `topoctl schema` and the README), then:

    \b
      topoctl import --kubeconfig ~/.kube/config     adopt a running cluster: sites/ from its nodes
      topoctl validate sites/                        every rule, every file, at once
      topoctl plan --cluster nodes.yaml              what would change, and why
      topoctl plan --kubeconfig ~/.kube/config       ... against a live cluster
      topoctl apply --kubeconfig ~/.kube/config      make it so (asks first)
      topoctl agent --node NAME                      on each node: addresses, taint, routes
      topoctl run --git-url URL                      the controller: converge on every push
      topoctl status                                 what the controller last did
      topoctl render talos --node NAME               the Talos machine-config patch
      topoctl comment --body-file plan.md --github R#N  the plan as one pull-request comment

    Exit status: 0 success, 1 invalid input or failure, 2 usage error
    (plan --detailed-exitcode: 2 means there are changes).
    """


def run() -> None:
    """Entry point that keeps tracebacks away from users unless TOPOCTL_DEBUG is set."""
    AS_PROGRAM.append(True)
    try:
        _run()
    except SystemExit as done:  # click's standalone mode always ends so
        if ONE_SHOT:
            leave(done.code)
        raise


def _run() -> None:
    try:
        main(standalone_mode=True)
    except OSError as err:  # output that cannot be written (a full disk, a closed pipe)
        if os.environ.get("TOPOCTL_DEBUG"):
            raise
        output_failed(err)
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


# The commands register themselves on the group as they are imported.
from reconciler.cli import (  # noqa: E402
    adopt,
    agent,
    cluster,
    controller,
    gestures,
    review,
    topology,
)

__all__ = [
    "adopt",
    "agent",
    "cluster",
    "controller",
    "gestures",
    "main",
    "review",
    "run",
    "topology",
]
