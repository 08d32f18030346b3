"""Probe 1,000 addresses (500 answering, 500 silent) in one round, from a prober namespace.

A target namespace holds 500 addresses on its loopback; 500 more are routed to it but
not held (it does not forward, so they stay silent). Prints the wall time of one round
and its ratio to the probe timeout (target, docs/architecture.md: about one timeout).

Run as root from the repository: `.venv/bin/python bench/bench_probe.py`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the test helpers importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reconciler.adapters.icmp import IcmpProber
from tests.icmp_lab import inside
from tests.kernel import ip

TIMEOUT = 1.0


def main() -> None:
    if os.geteuid() != 0:
        print("skipped: needs root (network namespaces, raw ICMP sockets)")
        return
    tag = secrets.token_hex(3)
    prober, target = f"tbp-{tag}", f"tbt-{tag}"
    try:
        for ns in (prober, target):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            ip(ns, "link", "set", "lo", "up")
        ip(prober, "link", "add", "p0", "type", "veth", "peer", "name", "t0", "netns", target)
        ip(prober, "link", "set", "p0", "up")
        ip(target, "link", "set", "t0", "up")
        ip(prober, "address", "add", "10.30.0.1/24", "dev", "p0")
        ip(target, "address", "add", "10.30.0.2/24", "dev", "t0")
        for net in ("10.20.0.0/16", "10.21.0.0/16"):
            ip(prober, "route", "add", net, "via", "10.30.0.2")
        answering = [f"10.20.{i // 250}.{i % 250 + 1}" for i in range(500)]
        silent = [f"10.21.{i // 250}.{i % 250 + 1}" for i in range(500)]
        batch = "".join(f"address add {a}/32 dev lo\n" for a in answering)
        subprocess.run(["ip", "-n", target, "-batch", "-"], input=batch, text=True, check=True)
        for privileged in (True, False):
            if not privileged:
                subprocess.run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        prober,
                        "sysctl",
                        "-qw",
                        "net.ipv4.ping_group_range=0 2147483647",
                    ],
                    check=True,
                )
            probe = IcmpProber(TIMEOUT, privileged=privileged)
            with inside(prober):
                start = time.perf_counter()
                found = probe.probe(answering + silent)
                wall = time.perf_counter() - start
            counts = Counter(o.value for o in found.outcomes.values())
            kind = "raw" if privileged else "datagram"
            print(
                f"{kind:8} sockets: 1000 addresses in {wall:.2f} s, timeout {TIMEOUT:.1f} s, "
                f"ratio {wall / TIMEOUT:.2f}; {dict(sorted(counts.items()))}"
            )
    finally:
        for ns in (prober, target):
            subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True)


if __name__ == "__main__":
    main()
