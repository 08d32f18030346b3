"""The ICMP probe adapter over real sockets, in throw-away network namespaces."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from reconciler.adapters.icmp import IcmpProber
from reconciler.model.probe import ProbeOutcome
from tests.conftest import needs_root
from tests.icmp_lab import Lab, inside, lab

pytestmark = [pytest.mark.root, needs_root]
A, S, U = ProbeOutcome.ANSWERED, ProbeOutcome.SILENT, ProbeOutcome.UNKNOWN
NOBODY = 65534


@pytest.fixture
def net() -> Iterator[Lab]:
    with lab() as built:
        for name in ("up", "down", "half"):
            built.add_node(name)
        built.silence("down")
        built.drop_external("half")
        yield built


def expected(net: Lab) -> dict[str, ProbeOutcome]:
    up, down, half = (net.nodes[n] for n in ("up", "down", "half"))
    return {
        up.internal: A,
        up.external: A,
        down.internal: S,
        down.external: S,
        half.internal: A,
        half.external: S,
        "198.18.0.1": U,  # the prober has no route there: unknown, never silent
    }


def test_raw_sockets_tell_answered_silent_and_unknown(net: Lab) -> None:
    want = expected(net)
    prober = IcmpProber(1.0, privileged=True)
    with inside(net.prober):
        found = prober.probe([*want, *want])  # duplicates are probed once
    assert dict(found.outcomes) == want
    assert set(found.errors) == {"198.18.0.1"}
    assert "unreachable" in found.errors["198.18.0.1"].lower()


def test_a_name_is_not_resolved_and_counts_unknown(net: Lab) -> None:
    with inside(net.prober):
        found = IcmpProber(0.2).probe(["node.example", "10.10.0.10"])
    assert found.outcomes == {"node.example": U, "10.10.0.10": A}
    assert "not an IP address" in found.errors["node.example"]


def test_a_cut_off_prober_hears_nobody(net: Lab) -> None:
    net.cut_off()
    want = expected(net)
    with inside(net.prober):
        found = IcmpProber(0.3).probe(want)
    assert {a for a, o in found.outcomes.items() if o is A} == set()
    assert found.outcomes["10.10.0.10"] is S


def ping_group_range(netns: str, value: str) -> None:
    """Set the namespace's own ``net.ipv4.ping_group_range``."""
    command = ["ip", "netns", "exec", netns, "sysctl", "-qw", f"net.ipv4.ping_group_range={value}"]
    subprocess.run(command, check=True)


def probe_as_nobody(netns: str, addresses: list[str]) -> dict[str, list[str]]:
    """Fork, drop to uid/gid 65534 inside ``netns``, probe with datagram sockets (the
    prober's own choice when it is not root), and report outcomes and errors as JSON."""
    reader, writer = os.pipe()
    with inside(netns):
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe
            try:
                os.close(reader)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                prober = IcmpProber(1.0)
                found = prober.probe(addresses)
                report = {
                    a: [o.value, found.errors.get(a, ""), str(prober.privileged)]
                    for a, o in found.outcomes.items()
                }
                os.write(writer, json.dumps(report).encode())
            finally:
                os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as stream:
        text = stream.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return json.loads(text)  # type: ignore[no-any-return]


def test_unprivileged_datagram_sockets_where_the_ping_group_range_allows(net: Lab) -> None:
    want = expected(net)
    ping_group_range(net.prober, "0 2147483647")
    report = probe_as_nobody(net.prober, list(want))
    assert {a: ProbeOutcome(v[0]) for a, v in report.items()} == want
    assert {v[2] for v in report.values()} == {"False"}  # datagram sockets, not raw


def test_unprivileged_without_the_ping_group_range_is_unknown_not_silent(net: Lab) -> None:
    ping_group_range(net.prober, "1 0")  # the kernel's default: nobody
    report = probe_as_nobody(net.prober, ["10.10.0.10", "10.10.0.11"])
    assert {v[0] for v in report.values()} == {"unknown"}
    assert all("ping_group_range" in v[1] for v in report.values())
