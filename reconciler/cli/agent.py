"""``topoctl agent``: the node agent's command."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli import main
from reconciler.cli.common import (
    EXIT_INVALID,
    EXIT_OK,
    Failure,
    UsageFailure,
    cluster_options,
    open_cluster,
)


def _seconds(text: str) -> float:
    from reconciler.model.types import flag_seconds

    try:
        return flag_seconds(text)
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

    from reconciler.adapters.clock import SystemClock
    from reconciler.adapters.kernelroutes import KernelRouteTable
    from reconciler.adapters.netlink import NetlinkAdapter, NetlinkAdapterError
    from reconciler.agent import run_forever
    from reconciler.ports import BackendError
    from reconciler.usecases.agent_pass import Agent

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
        clock = SystemClock()
        the_agent = Agent(node, backend, backend, KernelRouteTable(netlink), clock)
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
            run_forever(the_agent, seconds, stop, backend, clock)
        except KeyboardInterrupt:
            stop.set()
