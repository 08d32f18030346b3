"""`topoctl run` against the API-server double: join latency, push latency, steady state.

The double runs in this process on 127.0.0.1, seeded with bench/nodegen.py's cluster;
the controller is a real `topoctl run` subprocess, so its CPU time and peak RSS are its
own (read from /proc). Three measurements, figures only (targets in docs/architecture.md):

- join: nodes register one at a time, and each is timed until the controller has
  written its Kilo location: p50 and p99 over ``--joins`` joins (goal p99 < 1 s);
- push: a commit changes every site's persistentKeepalive, announced by a signed
  webhook, then by polling alone: time until every node carries the new value;
- steady: ``--steady-nodes`` converged nodes and Kilo-rate heartbeats (one `last-seen`
  write per node per 30 s): the controller's share of one core, its writes and RSS.

Run from the repository: `.venv/bin/python bench/bench_controller.py [--nodes N]
[--joins J] [--steady-nodes M] [--steady-seconds S]`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` and the double importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import nodegen
from tests.apiserver import ApiServer
from tests.apiserver.fixtures import write_kubeconfig

ROOT = Path(__file__).resolve().parents[1]
TOPOCTL = [str(Path(sys.executable).parent / "topoctl")]
SERVER_SET = ("resourceVersion", "uid", "creationTimestamp")
LOCATION = "kilo.squat.ai/location"
KEEPALIVE = "kilo.squat.ai/persistent-keepalive"
SECRET = b"bench-secret"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str, step: float = 0.001) -> float:
    """Seconds until ``check()`` holds; raises after ``timeout``. Checks over every node
    copy the double's whole store, so they poll coarsely (``step``): the bench must not
    take the cores it measures."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"bench: timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)
    return time.perf_counter() - started


def seeded(server: ApiServer, count: int, sites: int, tmp: Path) -> Path:
    sites_dir, snapshot = nodegen.write_cluster(tmp, count, sites)
    now = str(int(time.time()))  # fresh for Kilo, as its 30 s check-ins keep them
    for item in json.loads(snapshot.read_text())["items"]:
        for field in SERVER_SET:
            item["metadata"].pop(field, None)
        item["metadata"]["annotations"]["kilo.squat.ai/last-seen"] = now
        server.seed_node(item)
    return sites_dir


@contextmanager
def controller(kubeconfig: Path, port: int, *source: str, log: Path) -> Iterator[int]:
    """A `topoctl run` subprocess; its pid."""
    args = [
        *TOPOCTL, "run", *source, "--kubeconfig", str(kubeconfig), "--listen",
        f"127.0.0.1:{port}", "--lease-namespace", "default", "--identity", "bench",
        "--webhook-secret-file", str(log.parent / "secret"),
    ]  # fmt: skip
    (log.parent / "secret").write_bytes(SECRET)
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        wait_for(lambda: _ready(port), 120, "the controller to be ready", step=0.05)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def converged(server: ApiServer, key: str, value: str | None = None) -> Callable[[], bool]:
    def check() -> bool:
        for node in server.nodes():
            annotations = node["metadata"].get("annotations") or {}
            if LOCATION not in annotations and "build" not in node["metadata"]["name"]:
                return False
            if value is not None and annotations.get(key) != value:
                return False
        return True

    return check


class Heartbeats:
    """Kilo's check-ins: every node's last-seen rewritten once per 30 s, round-robin."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Heartbeats:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        names = [n["metadata"]["name"] for n in self.server.nodes()]
        rate = len(names) / 30
        started = time.perf_counter()
        while not self.stop.wait(0.005):
            due = int((time.perf_counter() - started) * rate)
            for i in range(self.sent, due):
                stamp = {"kilo.squat.ai/last-seen": str(int(time.time()))}
                self.server.mutate_node(names[i % len(names)], partial(_annotate, stamp))
            self.sent = max(self.sent, due)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_join(count: int, sites: int, joins: int) -> None:
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        sites_dir = seeded(server, count, sites, tmp)
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", server.url)
        source = ("--source-dir", str(sites_dir))
        with Heartbeats(server), controller(kubeconfig, free_port(), *source, log=tmp / "log"):
            wait_for(converged(server, LOCATION), 300, "the first convergence", step=0.5)
            took = []
            for i in range(joins):
                node = nodegen.node(i % sites, "worker", 9000 + i, count + i)
                name = node["metadata"]["name"] = f"{nodegen.site_name(i % sites)}-worker-j{i}"
                for field in SERVER_SET:
                    node["metadata"].pop(field, None)
                node["metadata"]["annotations"] = {"kilo.squat.ai/last-seen": str(int(time.time()))}
                started = time.perf_counter()
                server.seed_node(node)
                wait_for(partial(_annotated, server, name), 10, f"{name} to be annotated")
                took.append(time.perf_counter() - started)
    took.sort()
    p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
    print(
        f"join -> annotated, {joins} joins on a {count}-node cluster: "
        f"p50 {statistics.median(took) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {took[-1] * 1000:.0f} ms (goal p99 < 1000 ms)"
    )


def _annotate(annotations: dict[str, str], node: dict[str, Any]) -> None:
    node["metadata"]["annotations"].update(annotations)


def _carry(server: ApiServer, keepalive: str) -> bool:
    """Every member node carries the site's new keepalive."""
    return all(
        (n["metadata"].get("annotations") or {}).get(KEEPALIVE) == keepalive
        for n in server.nodes()
        if "-gw-" in n["metadata"]["name"] or "-worker-" in n["metadata"]["name"]
    )


def _annotated(server: ApiServer, name: str) -> bool:
    node = server.node(name)
    return node is not None and LOCATION in (node["metadata"].get("annotations") or {})


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
        cwd=cwd, check=True, capture_output=True,
    )  # fmt: skip


def bench_push(count: int, sites: int) -> None:
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        sites_dir = seeded(server, count, sites, tmp)
        remote, work = tmp / "topology.git", tmp / "work"
        _git("init", "--quiet", "--bare", str(remote), cwd=tmp)
        _git("clone", "--quiet", str(remote), str(work), cwd=tmp)
        shutil.copytree(sites_dir, work / "sites")
        _git("add", "sites", cwd=work)
        _git("commit", "--quiet", "-m", "sites", cwd=work)
        _git("push", "--quiet", "origin", "HEAD:main", cwd=work)
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", server.url)
        port = free_port()
        for mode, poll in (("webhook", "1h"), ("poll (5 s)", "5s")):
            source = [
                "--git-url",
                f"file://{remote}",
                "--cache-dir",
                str(tmp / mode[:4]),
                "--poll",
                poll,
            ]
            with controller(kubeconfig, port, *source, log=tmp / "run.log"):
                wait_for(converged(server, LOCATION), 300, "the first convergence", step=0.5)
                value = "21" if mode == "webhook" else "22"
                for path in (work / "sites").glob("site-*.yaml"):
                    text = path.read_text().replace(
                        "persistentKeepalive: 25", f"persistentKeepalive: {value}"
                    )
                    text = text.replace("persistentKeepalive: 21", f"persistentKeepalive: {value}")
                    path.write_text(text)
                _git("commit", "--quiet", "-am", f"keepalive {value}", cwd=work)
                _git("push", "--quiet", "origin", "HEAD:main", cwd=work)
                if mode == "webhook":
                    _hook(port)
                done = wait_for(
                    partial(_carry, server, value),
                    300,
                    f"every node to carry keepalive {value}",
                    step=0.1,
                )
                print(f"push -> {count} nodes converged, via {mode}: {done:.2f} s")


def _hook(port: int) -> None:
    body = b'{"ref":"refs/heads/main"}'
    signature = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/hooks/git", body, {"X-Hub-Signature-256": signature}
    )
    urllib.request.urlopen(request, timeout=5).close()


def bench_steady(count: int, sites: int, seconds: float) -> None:
    with ApiServer() as server, tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        sites_dir = seeded(server, count, sites, tmp)
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", server.url)
        source = ("--source-dir", str(sites_dir))
        with (
            Heartbeats(server) as beats,
            controller(kubeconfig, free_port(), *source, log=tmp / "log") as pid,
        ):
            wait_for(converged(server, LOCATION), 600, "the first convergence", step=1.0)
            time.sleep(5)  # the writes' own watch events settle
            server.log.clear()
            sent, cpu_before, started = beats.sent, cpu_seconds(pid), time.perf_counter()
            time.sleep(seconds)
            wall = time.perf_counter() - started
            cpu, sent = cpu_seconds(pid) - cpu_before, beats.sent - sent
            heartbeat_writes = sum(1 for e in server.log.entries if e.verb == "patch")
            print(
                f"steady state, {count} nodes, {sent / wall:.0f} heartbeats/s for {wall:.0f} s: "
                f"controller CPU {cpu / wall * 100:.1f} % of a core (goal < 10 %), "
                f"{heartbeat_writes} writes (goal 0), peak RSS {peak_rss_mb(pid):.0f} MB "
                "(goal < 250 MB)"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--joins", type=int, default=200)
    parser.add_argument("--steady-nodes", type=int, default=5000)
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    bench_join(args.nodes, args.sites, args.joins)
    bench_push(args.nodes, args.sites)
    bench_steady(args.steady_nodes, max(args.sites, args.steady_nodes // 50), args.steady_seconds)


if __name__ == "__main__":
    main()
