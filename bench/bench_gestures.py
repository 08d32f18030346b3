"""`topoctl suspend`, `resume` and `reconcile` against `topoctl run` on the API double.

A real `topoctl run` subprocess follows a mounted directory (bench/nodegen.py's cluster);
the gestures are written to the status ConfigMap as the commands write them (through
usecases/statusmap.py). Figures only:

- reconcile: from the request written to ``lastHandledReconcileAt`` echoed in the
  status (the holder's look, a fetch, a full plan, a rate-limited publish): p50, max;
- suspend: from the record written to ``topoctl_suspended{site="*"} 1`` on /metrics;
- drift: a change to every site while suspended, reconciled: the Node writes sent
  meanwhile (must be 0) and the drift the status reports;
- resume: from the record removed to every node carrying the change.

Run from the repository: `.venv/bin/python bench/bench_gestures.py [--nodes N]
[--sites S] [--reconciles R]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` and the double importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client

from bench.bench_controller import (
    LOCATION,
    _carry,
    controller,
    converged,
    free_port,
    seeded,
    wait_for,
)
from reconciler.adapters.kubestatus import KubeStatusStore
from reconciler.model.suspension import Hold
from reconciler.usecases.statusmap import STATUS_NAME, StatusConfigMap
from tests.apiserver import ApiServer
from tests.apiserver.fixtures import write_kubeconfig


def metric(port: int, sample: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


def echoed(status: StatusConfigMap, request: str) -> bool:
    return (status.read_status() or {}).get("lastHandledReconcileAt") == request


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--reconciles", type=int, default=10)
    args = parser.parse_args(argv)
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        sites_dir = seeded(server, args.nodes, args.sites, tmp)
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", server.url)
        config = client.Configuration(host=server.url)
        config.retries = False
        status = StatusConfigMap(KubeStatusStore(client.ApiClient(config), "default", STATUS_NAME))
        port = free_port()
        with controller(kubeconfig, port, "--source-dir", str(sites_dir), log=tmp / "log"):
            wait_for(converged(server, LOCATION), 300, "the first convergence", step=0.5)

            took = []
            for _ in range(args.reconciles):
                request = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                status.request_reconcile(request)
                took.append(wait_for(partial(echoed, status, request), 60, "the echo", step=0.01))
            print(
                f"reconcile -> echoed, {args.nodes} nodes, {args.reconciles} requests: "
                f"p50 {statistics.median(took):.2f} s, max {max(took):.2f} s"
            )

            hold = Hold("bench", "now", "bench")
            status.update_suspension(lambda s: s.suspend((), hold))
            suspended = wait_for(
                lambda: metric(port, 'topoctl_suspended{site="*"}') == 1.0, 30, "the suspension"
            )
            print(f"suspend -> seen (topoctl_suspended 1): {suspended:.2f} s")

            for path in sites_dir.glob("site-*.yaml"):
                text = path.read_text()
                path.write_text(text.replace("persistentKeepalive: 25", "persistentKeepalive: 21"))
            server.log.clear()
            request = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            status.request_reconcile(request)
            wait_for(
                lambda: (
                    (status.read_status() or {}).get("driftNodes", 0) > 0
                    and (status.read_status() or {}).get("lastHandledReconcileAt") == request
                ),
                60,
                "the drift",
                step=0.05,
            )
            time.sleep(1.0)  # every site planned and published
            drift = (status.read_status() or {}).get("driftNodes")
            writes = sum(
                1 for e in server.log.entries if e.verb == "patch" and e.resource == "nodes"
            )
            print(
                f"suspended, every site changed in git: drift {drift} node(s), {writes} Node writes"
            )

            status.update_suspension(lambda s: s.resume((), everything=True))
            resumed = wait_for(partial(_carry, server, "21"), 300, "the drift written", step=0.1)
            print(f"resume -> {args.nodes} nodes carry the change: {resumed:.2f} s")


if __name__ == "__main__":
    main()
