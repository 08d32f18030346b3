"""The mesh harness's own parts: the address plan, `wg show dump` parsing, why a machine
cannot run a mesh, and the clean-up of what a killed run left behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import needs_root
from tests.mesh import netns
from tests.mesh.harness import requirements
from tests.mesh.probe import Matrix, parse_wg_dump
from tests.mesh.spec import AddressPlan, NodeSpec


def test_address_plan_is_stable_and_never_reuses() -> None:
    plan = AddressPlan()
    fra = plan.location("fra", onprem=True)
    ams = plan.location("ams")
    assert (fra.lan, fra.lan_router, fra.onprem_host) == (
        "10.101.0.0/24",
        "10.101.0.254",
        "192.168.1.100",
    )
    assert (ams.lan, ams.onprem) == ("10.102.0.0/24", None)
    gw = plan.node(NodeSpec("fra-gw-1", "fra", gateway=True))
    worker = plan.node(NodeSpec("fra-w-1", "fra"))
    other = plan.node(NodeSpec("ams-gw-1", "ams", gateway=True))
    assert (gw.lan, gw.wan, gw.onprem, gw.pod_cidr, gw.pod_ip, gw.cilium_ip) == (
        "10.101.0.1",
        "198.51.100.11",
        "192.168.1.11",
        "10.244.1.0/24",
        "10.244.1.1",
        "10.244.1.254",
    )
    assert (worker.lan, worker.wan, worker.onprem, worker.lan_router) == (
        "10.101.0.2",
        None,
        None,
        "10.101.0.254",
    )
    assert (other.lan, other.wan, other.onprem) == ("10.102.0.1", "198.51.100.12", None)
    assert plan.node(NodeSpec("fra-gw-1", "fra", gateway=True)) is gw  # asked again: same
    assert plan.node(NodeSpec("fra-w-2", "fra")).pod_cidr == "10.244.4.0/24"


def test_parse_wg_dump() -> None:
    dump = (
        "cHJpdmF0ZQ==\tcHVibGlj\t51820\toff\n"
        "a2V5MQ==\t(none)\t198.51.100.12:51820\t10.4.0.1/32,10.244.3.0/24\t1796674943\t"
        "1200\t3400\t10\n"
        "a2V5Mg==\t(none)\t(none)\t(none)\t0\t0\t0\toff\n"
    )
    state = parse_wg_dump(dump)
    assert state is not None
    assert (state.public_key, state.listen_port) == ("cHVibGlj", 51820)
    first, second = state.peers
    assert first.endpoint == "198.51.100.12:51820"
    assert first.allowed_ips == ("10.4.0.1/32", "10.244.3.0/24")
    assert (first.latest_handshake, first.rx_bytes, first.tx_bytes, first.keepalive) == (
        1796674943,
        1200,
        3400,
        10,
    )
    assert (second.endpoint, second.allowed_ips, second.keepalive) == (None, (), None)
    assert parse_wg_dump("") is None


def test_matrix_says_which_pairs_are_silent() -> None:
    matrix = Matrix({("a", "b"): True, ("b", "a"): False, ("a", "c"): False})
    assert not matrix.green and matrix.failed() == [("a", "c"), ("b", "a")]
    assert str(matrix) == "1/3 pairs answer; silent: a->c, b->a"
    assert Matrix({("a", "b"): True}).green
    assert not Matrix({}).green  # nothing pinged is not a green mesh


def test_requirements_name_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KILO_KG", "/nonexistent/kg")
    reason = requirements()
    assert reason is not None
    if os.geteuid() == 0:
        assert "KILO_KG" in reason
    else:
        assert "needs root" in reason


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@needs_root
def test_what_a_killed_run_left_is_cleaned_up_and_a_live_run_kept(tmp_path: Path) -> None:
    dead = f"tm{_dead_pid()}"
    stale_ns, stale_link = f"{dead}-node", f"{dead}a"
    live_ns = f"{netns.run_tag()}-keep"
    netns.add_netns(stale_ns)
    netns.add_netns(live_ns)
    orphan = 0
    try:
        netns.ip(
            "link", "add", stale_link, "type", "veth", "peer", "name", "up0", "netns", stale_ns
        )
        # a process the killed run left: an orphan in the namespace (reparented, as kg's
        # and wireguard-go's are once the run that started them is gone)
        started = netns.run(
            *netns.exec_argv(stale_ns, "sh", "-c", "sleep 60 </dev/null >/dev/null 2>&1 & echo $!")
        )
        orphan = int(started.stdout)
        assert orphan in netns.netns_pids(stale_ns)
        removed = netns.clean_stale()
        assert stale_ns in removed  # its veth pair (and the root end) went with it
        assert not Path(f"/proc/{orphan}").exists()  # stopped by its pid first
        listed = netns.run("ip", "netns", "list").stdout
        assert stale_ns not in listed and live_ns in listed
        assert netns.ip("link", "show", stale_link, check=False) == ""
    finally:
        if orphan and Path(f"/proc/{orphan}").exists():
            os.kill(orphan, 9)
        for name in (stale_ns, live_ns):
            netns.delete_netns(name)
        netns.ip("link", "del", stale_link, check=False)


@needs_root
def test_a_node_process_sees_its_own_run_var_lib_and_hosts(tmp_path: Path) -> None:
    name = f"{netns.run_tag()}-mnt"
    root = tmp_path / "node"
    netns.prepare_node_root(root, "fra-w-1", "10.101.0.7")
    netns.add_netns(name)
    try:
        script = (
            "echo key > /var/lib/kilo/key; touch /run/wireguard/kilo0.sock; "
            "getent hosts fra-w-1; ls /run"
        )
        out = netns.run(*netns.node_argv(name, root, "sh", "-c", script)).stdout
        assert "10.101.0.7" in out and out.split()[-1] == "wireguard"
        # the files are the node's, in its directory; the host's /var/lib and /run untouched
        assert (root / "var-lib" / "kilo" / "key").read_text() == "key\n"
        assert (root / "run" / "wireguard" / "kilo0.sock").exists()
        assert not Path("/var/lib/kilo/key").exists()
        assert not Path("/run/wireguard/kilo0.sock").exists()
    finally:
        netns.delete_netns(name)
