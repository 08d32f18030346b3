"""Reading a test namespace's kernel state with iproute2, independently of topoctl's code."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from typing import Any

from reconciler.core.agent.routes import KernelRoute


def ip(netns: str, *args: str) -> str:
    """Run `ip -n NETNS ARGS...`; fail the test with ip's message if it fails."""
    done = subprocess.run(["ip", "-n", netns, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"ip -n {netns} {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout


def route_entries(netns: str, *selector: str) -> list[dict[str, Any]]:
    """`ip -j -N route show table all SELECTOR`, IPv4 then IPv6, as ip prints them."""
    entries: list[dict[str, Any]] = []
    for family in ("-4", "-6"):
        listing = ip(netns, "-j", "-N", family, "route", "show", "table", "all", *selector)
        entries += json.loads(listing or "[]")
    return entries


def route_from_ip(entry: Mapping[str, Any], protocol: int | None = None) -> KernelRoute:
    """A KernelRoute from one `ip -j -N route` entry; `protocol` where ip omits it (filtered on)."""
    dst = entry["dst"]
    if dst == "default":
        dst = "::/0" if ":" in entry.get("gateway", "") else "0.0.0.0/0"
    elif "/" not in dst:
        dst += "/128" if ":" in dst else "/32"
    return KernelRoute(
        dst=dst,
        gateway=entry.get("gateway"),
        dev=entry.get("dev"),
        table=int(entry.get("table", 254)),
        metric=int(entry.get("metric", 0)),
        onlink="onlink" in entry.get("flags", []),
        protocol=int(entry.get("protocol", 0)) if protocol is None else protocol,
    )
