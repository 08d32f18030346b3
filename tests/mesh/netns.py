"""Network namespaces, links and a node's private mount namespace, with iproute2.

Every name a run creates outside its own namespaces starts with its run tag,
`tm<pid>` (the pid of the process that built it): the namespaces `tm<pid>-fab` and
`tm<pid>-<node>`, and the root end of the API link `tm<pid>a`. A run whose process is
gone left them behind: `clean_stale()` removes those (it kills the processes still in
their namespaces, by pid, first) and never touches a live run's.

A node's processes start through `node_argv`: `ip netns exec` (which also mounts the
namespace's own /sys) then `unshare --mount` into a fresh mount namespace where the
node's directory is bind-mounted over /run (so /run/wireguard, the UAPI socket, and
the iptables lock are the node's), /var/lib (/var/lib/kilo, where kg keeps its key),
/etc/hosts (the node's name resolves to its LAN address, as on a real host: kg's
first choice for its private IP) and /etc/resolv.conf (a local resolver that answers
"refused" at once, instead of a DNS timeout inside a namespace without DNS). Every
process of a node sees the same files; nothing of the host's /run, /var/lib or /etc is
changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

TAG_RE = re.compile(r"^tm(\d+)(?:-|a$)")

_NODE_MOUNTS = (
    'mount --bind "$1/run" /run && mount --bind "$1/var-lib" /var/lib'
    ' && mount --bind "$1/hosts" /etc/hosts && mount --bind "$1/resolv.conf" /etc/resolv.conf'
    ' && shift && exec "$@"'
)


class CommandError(RuntimeError):
    """A command of the harness failed: the command line and what it printed."""


def run(*argv: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a command; with `check`, raise CommandError (argv and stderr) when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise CommandError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    """`ip [-n NETNS] ARGS`: its stdout."""
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    return run(*argv, check=check).stdout


def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    """`ip -j [-n NETNS] ARGS`, parsed."""
    out = ip("-j", *args, netns=netns)
    data = json.loads(out or "[]")
    return data if isinstance(data, list) else []


def sysctl(netns: str, *settings: str) -> None:
    """`sysctl -w` inside a namespace (per-namespace settings only)."""
    run("ip", "netns", "exec", netns, "sysctl", "-q", "-w", *settings)


def exec_argv(netns: str, *argv: str) -> list[str]:
    """A command line that runs `argv` in `netns` (network only)."""
    return ["ip", "netns", "exec", netns, *argv]


def node_argv(netns: str, root: Path, *argv: str) -> list[str]:
    """A command line that runs `argv` as a process of the node whose files are in `root`
    (its network namespace, and a mount namespace with its /run, /var/lib, /etc/hosts)."""
    return [
        *exec_argv(netns, "unshare", "--mount", "--propagation", "private"),
        "sh",
        "-c",
        _NODE_MOUNTS,
        "sh",
        str(root),
        *argv,
    ]


def prepare_node_root(root: Path, hostname: str, address: str) -> None:
    """Create the files `node_argv` mounts for one node."""
    (root / "run" / "wireguard").mkdir(parents=True, exist_ok=True)
    (root / "var-lib" / "kilo").mkdir(parents=True, exist_ok=True)
    (root / "hosts").write_text(
        f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n{address}\t{hostname}\n"
    )
    (root / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")


def add_netns(name: str) -> None:
    """A new namespace with its loopback up."""
    run("ip", "netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)


def netns_pids(name: str) -> list[int]:
    """Pids of the processes in a namespace."""
    out = run("ip", "netns", "pids", name, check=False).stdout
    return [int(p) for p in out.split()]


def delete_netns(name: str, *, grace: float = 3.0) -> None:
    """Stop what still runs in a namespace (TERM, then KILL) and delete it."""
    pids = netns_pids(name)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run("ip", "netns", "del", name, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_tag() -> str:
    """This process's tag."""
    return f"tm{os.getpid()}"


def clean_stale() -> list[str]:
    """Remove the namespaces and root links of runs whose process is gone; their names."""
    removed = []
    names = run("ip", "netns", "list", check=False).stdout.split("\n")
    for line in names:
        name = line.split(" ")[0].strip()
        match = TAG_RE.match(name)
        if match and not _alive(int(match.group(1))):
            delete_netns(name)
            removed.append(name)
    for link in ip_json("link", "show"):
        name = link.get("ifname", "")
        match = TAG_RE.match(name)
        if match and name.endswith("a") and not _alive(int(match.group(1))):
            ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def free_api_subnet() -> tuple[str, str]:
    """A /30 of 10.255.0.0/16 no address of the root namespace is in: (root end, fabric end)."""
    used = set()
    for link in ip_json("-4", "addr", "show"):
        for info in link.get("addr_info", []):
            parts = str(info.get("local", "")).split(".")
            if parts[:2] == ["10", "255"]:
                used.add((int(parts[2]), int(parts[3]) // 4))
    for third in range(256):
        for block in range(64):
            if (third, block) not in used:
                base = block * 4
                return f"10.255.{third}.{base + 1}", f"10.255.{third}.{base + 2}"
    raise RuntimeError("no free /30 in 10.255.0.0/16 for the API link")
