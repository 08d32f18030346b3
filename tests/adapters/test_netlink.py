"""The netlink adapter against the real kernel, in throw-away network namespaces.

Each test gets its own namespace with a veth pair (v0 <-> v1, both inside),
192.0.2.1/24 and 2001:db8::1/64 on v0, and an IPv4 default route via
192.0.2.254. Nothing leaves the namespace: route lookups send no packets.
"""

from __future__ import annotations

import dataclasses
import errno
import secrets
import subprocess
from collections.abc import Iterable, Iterator

import pytest

from reconciler.adapters.netlink import NetlinkAdapter, NetlinkAdapterError
from reconciler.core.agent.routes import (
    KernelRoute,
    RouteApplyResult,
    RouteConflict,
    RouteDiff,
    diff_routes,
)
from tests.conftest import needs_root
from tests.kernel import ip, route_entries, route_from_ip

pytestmark = needs_root

OURS = 193
STATIC = 4
KERNEL = 2


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"topoctl-test-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ip(name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        ip(name, "link", "set", "v0", "up")
        ip(name, "link", "set", "v1", "up")
        ip(name, "address", "add", "192.0.2.1/24", "dev", "v0")
        ip(name, "address", "add", "2001:db8::1/64", "dev", "v0", "nodad")
        ip(name, "route", "add", "default", "via", "192.0.2.254")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def adapter(netns: str) -> Iterator[NetlinkAdapter]:
    with NetlinkAdapter(netns) as opened:
        yield opened


def kernel_routes(netns: str, *selector: str) -> set[KernelRoute]:
    """Routes as `ip route show table all` prints them, as KernelRoute values (protocol kept)."""
    return {route_from_ip(entry) for entry in route_entries(netns, *selector)}


def ours(netns: str) -> set[KernelRoute]:
    """Our routes as `ip` lists them (it omits the protocol it was asked to filter on)."""
    return {dataclasses.replace(r, protocol=OURS) for r in kernel_routes(netns, "proto", str(OURS))}


def as_held(route: KernelRoute, dev: str = "v0") -> KernelRoute:
    """A written route as the kernel reports it: with the device it chose."""
    return dataclasses.replace(route, dev=dev)


def converge(adapter: NetlinkAdapter, desired: Iterable[KernelRoute]) -> RouteApplyResult:
    """One agent pass: read, diff, apply."""
    snapshot = adapter.snapshot(OURS)
    return adapter.apply(diff_routes(desired, snapshot.owned, snapshot.foreign_keys))


DECLARED = [
    KernelRoute.build("10.10.0.0/16", gateway="192.0.2.2"),
    KernelRoute.build("10.11.0.0/24", dev="v0", table=100),
    KernelRoute.build("10.12.0.0/24", gateway="198.51.100.1", dev="v0", onlink=True, metric=50),
    KernelRoute.build("10.13.0.1", gateway="192.0.2.3", dev="v0", table=1108, metric=7),
    KernelRoute.build("2001:db8:10::/64", gateway="2001:db8::2"),
    KernelRoute.build("2001:db8:11::/64", dev="v0", table=1108, metric=7),
    KernelRoute.build(
        "2001:db8:12::/64", gateway="2001:db8:ff::1", dev="v0", onlink=True, table=100
    ),
]


def test_declared_routes_appear_with_our_protocol(netns: str, adapter: NetlinkAdapter) -> None:
    result = converge(adapter, DECLARED)

    assert result.ok, result.failed
    assert set(result.replaced) == set(DECLARED)
    assert result.messages_sent == len(DECLARED)
    in_kernel = ours(netns)
    assert len(in_kernel) == len(DECLARED)
    for route in DECLARED:
        assert any(route.satisfied_by(held) for held in in_kernel), route
    assert all(held.dev == "v0" for held in in_kernel)


def test_reading_back_what_was_written_is_converged(adapter: NetlinkAdapter) -> None:
    converge(adapter, DECLARED)
    writes_before = adapter.write_messages

    snapshot = adapter.snapshot(OURS)
    diff = diff_routes(DECLARED, snapshot.owned, snapshot.foreign_keys)
    result = adapter.apply(diff)

    assert diff == RouteDiff()
    assert result == RouteApplyResult()
    assert adapter.write_messages == writes_before


def test_a_second_read_sees_every_change_since_the_first(
    netns: str, adapter: NetlinkAdapter
) -> None:
    """The adapter reuses what it parsed last time only for byte-identical kernel entries."""
    converge(adapter, DECLARED)
    first = adapter.snapshot(OURS)
    ip(netns, "route", "replace", "10.10.0.0/16", "via", "192.0.2.9", "proto", str(OURS))
    ip(netns, "link", "add", "v8", "type", "veth", "peer", "name", "v9")  # new index map
    ip(netns, "link", "set", "v8", "up")
    ip(netns, "link", "set", "v9", "up")
    ip(netns, "route", "replace", "10.11.0.0/24", "dev", "v8", "table", "100", "proto", str(OURS))

    second = adapter.snapshot(OURS)

    moved = KernelRoute("10.10.0.0/16", "192.0.2.9", "v0")
    on_v8 = KernelRoute("10.11.0.0/24", dev="v8", table=100)
    gone = {as_held(DECLARED[0]), as_held(DECLARED[1])}
    assert set(second.owned) == (set(first.owned) - gone) | {moved, on_v8}
    with NetlinkAdapter(netns) as fresh:
        assert fresh.snapshot(OURS) == second
    other = adapter.snapshot(200)  # another protocol: what was ours is now someone else's
    assert other.owned == ()
    assert {r.key for r in second.owned} <= set(other.foreign_keys)
    assert adapter.snapshot(OURS) == second


def test_a_restarted_agent_sees_its_routes_as_its_own(netns: str) -> None:
    with NetlinkAdapter(netns) as first:
        converge(first, DECLARED)
    ip(netns, "route", "add", "10.20.0.0/24", "via", "192.0.2.9", "proto", str(OURS))

    with NetlinkAdapter(netns) as restarted:
        snapshot = restarted.snapshot(OURS)
        owned = snapshot.owned
        diff = diff_routes(DECLARED, owned, snapshot.foreign_keys)

    assert len(owned) == len(DECLARED) + 1
    assert diff.replace == ()
    assert diff.delete == (KernelRoute("10.20.0.0/24", "192.0.2.9", "v0"),)


def test_foreign_routes_on_a_desired_slot_are_conflicts_and_untouched(
    netns: str, adapter: NetlinkAdapter
) -> None:
    ip(netns, "route", "add", "10.30.0.0/24", "via", "192.0.2.2", "proto", "static")
    ip(netns, "route", "add", "10.31.0.0/24", "dev", "v0", "proto", "static", "table", "100")
    before = kernel_routes(netns)
    claims = [
        KernelRoute.build("10.30.0.0/24", gateway="192.0.2.99"),
        KernelRoute.build("10.31.0.0/24", gateway="192.0.2.99", table=100),
        KernelRoute.build("192.0.2.0/24", gateway="192.0.2.99"),  # the kernel's connected route
    ]
    beside = KernelRoute.build("10.30.0.0/24", gateway="192.0.2.99", metric=10)  # another slot

    snapshot = adapter.snapshot(OURS)
    diff = diff_routes([*claims, beside], snapshot.owned, snapshot.foreign_keys)
    result = adapter.apply(diff)

    assert {(c.route, c.holder_protocol) for c in diff.conflicts} == {
        (claims[0], STATIC),
        (claims[1], STATIC),
        (claims[2], KERNEL),
    }
    assert result.replaced == (beside,)
    assert result.messages_sent == 1
    assert kernel_routes(netns) == before | {as_held(beside)}


def test_a_changed_desired_set_removes_only_obsolete_owned_routes(
    netns: str, adapter: NetlinkAdapter
) -> None:
    converge(adapter, DECLARED)
    ip(netns, "route", "append", "10.10.0.0/16", "via", "192.0.2.7", "proto", "static")
    kilo_return = ["10.11.0.0/24", "via", "192.0.2.8", "proto", "static", "table", "1107"]
    ip(netns, "route", "add", *kilo_return)
    foreign_before = kernel_routes(netns) - ours(netns)
    kept = [*DECLARED[2:4], *DECLARED[5:]]
    moved = KernelRoute.build("2001:db8:10::/64", gateway="2001:db8::3")

    result = converge(adapter, [*kept, moved])

    assert result.ok, result.failed
    assert {r.dst for r in result.deleted} == {"10.10.0.0/16", "10.11.0.0/24"}
    assert result.replaced == (moved,)
    assert kernel_routes(netns) - ours(netns) == foreign_before
    assert all(any(r.satisfied_by(held) for held in ours(netns)) for r in [*kept, moved])


def test_a_missing_device_fails_that_route_only(netns: str, adapter: NetlinkAdapter) -> None:
    tunnel = KernelRoute.build("10.40.0.0/24", gateway="192.0.2.2", dev="cilium_tunl", onlink=True)

    result = converge(adapter, [tunnel, *DECLARED])

    assert [(f.route, f.reason, f.errno) for f in result.failed] == [
        (tunnel, "device cilium_tunl not found", errno.ENODEV)
    ]
    assert set(result.replaced) == set(DECLARED)
    assert result.messages_sent == len(DECLARED)
    assert "10.40.0.0/24" not in {r.dst for r in ours(netns)}


def test_a_kernel_refusal_is_reported_per_route(netns: str, adapter: NetlinkAdapter) -> None:
    stranded = KernelRoute.build("10.41.0.0/24", gateway="198.51.100.7")  # not on any link

    result = converge(adapter, [stranded, *DECLARED])

    assert len(result.failed) == 1
    failure = result.failed[0]
    assert (failure.route, failure.action, failure.errno) == (
        stranded,
        "replace",
        errno.ENETUNREACH,
    )
    assert failure.reason.startswith("gateway 198.51.100.7 unreachable")
    assert set(result.replaced) == set(DECLARED)


def test_a_slot_taken_after_the_read_is_not_overwritten(
    netns: str, adapter: NetlinkAdapter
) -> None:
    wanted = KernelRoute.build("10.42.0.0/24", gateway="192.0.2.2")
    snapshot = adapter.snapshot(OURS)
    diff = diff_routes([wanted], snapshot.owned, snapshot.foreign_keys)
    ip(netns, "route", "add", "10.42.0.0/24", "via", "192.0.2.5", "proto", "static")

    result = adapter.apply(diff)

    assert [(f.route, f.errno) for f in result.failed] == [(wanted, errno.EEXIST)]
    assert KernelRoute("10.42.0.0/24", "192.0.2.5", "v0", protocol=STATIC) in kernel_routes(netns)


def test_a_route_already_gone_counts_as_deleted(netns: str, adapter: NetlinkAdapter) -> None:
    converge(adapter, DECLARED[:1])
    snapshot = adapter.snapshot(OURS)
    diff = diff_routes([], snapshot.owned, snapshot.foreign_keys)
    ip(netns, "route", "delete", "10.10.0.0/16", "proto", str(OURS))

    result = adapter.apply(diff)

    assert result.ok
    assert result.deleted == snapshot.owned


def test_many_batches_match_every_ack(netns: str) -> None:
    desired = [KernelRoute.build(f"10.50.{i}.0/24", gateway="192.0.2.2") for i in range(100)]
    desired.append(KernelRoute.build("10.51.0.0/24", gateway="203.0.113.1"))  # refused mid-stream

    with NetlinkAdapter(netns, batch_size=7) as small_batches:
        result = converge(small_batches, desired)
        removal = converge(small_batches, [])

    assert set(result.replaced) == set(desired[:-1])
    assert [f.route for f in result.failed] == [desired[-1]]
    assert len(removal.deleted) == 100
    assert removal.ok
    assert ours(netns) == set()


def test_batches_shrink_to_what_the_receive_buffer_holds(netns: str) -> None:
    desired = [KernelRoute.build(f"10.52.{i}.0/24", gateway="192.0.2.2") for i in range(250)]

    # 250 acks need more than 64 KiB of receive buffer: one batch would lose some.
    with NetlinkAdapter(netns, batch_size=5000, rcvbuf=64 * 1024) as cramped:
        result = converge(cramped, desired)

    assert result.ok, result.failed[:3]
    assert len(result.replaced) == 250


def test_source_address_is_the_preferred_source_of_the_route(adapter: NetlinkAdapter) -> None:
    assert adapter.source_address("203.0.113.10") == "192.0.2.1"  # via the default route
    assert adapter.source_address("2001:db8::7") == "2001:db8::1"  # on-link


def test_source_address_is_none_when_unreachable(netns: str, adapter: NetlinkAdapter) -> None:
    ip(netns, "route", "add", "unreachable", "198.18.0.0/15")

    assert adapter.source_address("2001:db8:ffff::1") is None  # no IPv6 default route
    assert adapter.source_address("198.18.0.1") is None
    with pytest.raises(ValueError, match="does not appear to be"):
        adapter.source_address("node-a")


def test_link_indexes_list_the_namespace_devices(adapter: NetlinkAdapter) -> None:
    assert set(adapter.link_indexes()) == {"lo", "v0", "v1"}


def test_a_reserved_protocol_is_refused(adapter: NetlinkAdapter) -> None:
    with pytest.raises(ValueError, match="reserved"):
        adapter.snapshot(STATIC)


def test_a_write_with_a_reserved_protocol_is_refused_before_sending(
    netns: str, adapter: NetlinkAdapter
) -> None:
    ip(netns, "route", "add", "10.60.0.0/24", "via", "192.0.2.2", "proto", "static")
    kilo_like = KernelRoute("10.60.0.0/24", "192.0.2.2", "v0", protocol=STATIC)

    with pytest.raises(ValueError, match="reserved"):
        adapter.apply(RouteDiff(delete=(kilo_like,)))

    assert adapter.write_messages == 0
    assert kilo_like in kernel_routes(netns)


def test_a_missing_namespace_is_a_clear_error() -> None:
    with pytest.raises(NetlinkAdapterError, match="not found"):
        NetlinkAdapter(f"topoctl-test-absent-{secrets.token_hex(4)}")


def test_conflict_report_names_the_holder(netns: str, adapter: NetlinkAdapter) -> None:
    route = KernelRoute.build("192.0.2.0/24", dev="v0")
    snapshot = adapter.snapshot(OURS)
    assert diff_routes([route], snapshot.owned, snapshot.foreign_keys).conflicts == (
        RouteConflict(route, KERNEL),
    )
