"""The pure route diff: canonical values, slot semantics, idempotency, ordering."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.agent.routes import (
    InvalidRouteError,
    KernelRoute,
    RouteConflict,
    RouteDiff,
    RouteKey,
    check_own_protocol,
    diff_routes,
    route_order,
)

OURS = 193
STATIC = 4
KERNEL = 2


def r(dst: str, gateway: str | None = "192.0.2.1", **fields: object) -> KernelRoute:
    return KernelRoute.build(dst, gateway=gateway, **fields)  # type: ignore[arg-type]


# -- KernelRoute.build ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"dst": "10.1.0.0/16", "gateway": "192.0.2.1"}, KernelRoute("10.1.0.0/16", "192.0.2.1")),
        ({"dst": "10.0.0.7", "dev": "eth0"}, KernelRoute("10.0.0.7/32", dev="eth0")),
        (
            {"dst": "2001:DB8:0:0::/64", "gateway": "2001:db8::0:1"},
            KernelRoute("2001:db8::/64", "2001:db8::1", metric=1024),
        ),
        (
            {"dst": "fd00::5", "dev": "eth0", "metric": 7},
            KernelRoute("fd00::5/128", dev="eth0", metric=7),
        ),
        (
            {"dst": "10.2.0.0/24", "dev": "eth0", "table": 1108},
            KernelRoute("10.2.0.0/24", dev="eth0", table=1108),
        ),
        (
            {"dst": "10.2.0.0/24", "dev": "eth0", "table": "main"},
            KernelRoute("10.2.0.0/24", dev="eth0"),
        ),
        (
            {"dst": "0.0.0.0/0", "gateway": "192.0.2.1", "dev": "eth0", "onlink": True},
            KernelRoute("0.0.0.0/0", "192.0.2.1", "eth0", onlink=True),
        ),
        (
            {"dst": "10.3.0.0/24", "dev": "eth0", "protocol": 200},
            KernelRoute("10.3.0.0/24", dev="eth0", protocol=200),
        ),
    ],
)
def test_build_canonicalises(given: dict[str, object], expected: KernelRoute) -> None:
    assert KernelRoute.build(**given) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ({"dst": "10.1.0.1/16", "gateway": "192.0.2.1"}, "host bits set"),
        ({"dst": "10.1.0.0/33", "gateway": "192.0.2.1"}, "10.1.0.0/33"),
        ({"dst": "10.1.0.0/16", "gateway": "2001:db8::1"}, "is not IPv4"),
        ({"dst": "10.1.0.0/16", "gateway": "nope"}, "'nope' is not an IP address"),
        ({"dst": "fe80::/64", "gateway": "fe80::1%v0", "dev": "v0"}, "carries a zone id"),
        ({"dst": "fe80::%v0/64", "dev": "v0"}, "carries a zone id"),
        ({"dst": 5, "dev": "v0"}, "must be a CIDR in text"),
        ({"dst": "10.1.0.0/16"}, "needs a gateway, a device or both"),
        ({"dst": "10.1.0.0/16", "gateway": "192.0.2.1", "onlink": True}, "onlink needs"),
        ({"dst": "10.1.0.0/16", "dev": "a/b"}, "not a network device name"),
        ({"dst": "10.1.0.0/16", "dev": "x" * 16}, "not a network device name"),
        ({"dst": "10.1.0.0/16", "dev": "\u00e9" * 8}, "not a network device name"),  # 16 bytes
        ({"dst": "10.1.0.0/16", "dev": ".."}, "not a network device name"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "table": 0}, "table 0"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "table": 253}, "the kernel's default table"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "table": 255}, "the kernel's local table"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "table": 1107}, "Kilo's return-route table"),
        (
            {"dst": "10.1.0.0/16", "dev": "eth0", "table": "local"},
            "table local .255. is the kernel's local",
        ),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "table": "kilo"}, "unknown table"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "table": "100"}, "table '100' is text"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "table": 254.0}, "is not a whole number"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "table": True}, "is not a whole number"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "metric": -1}, "metric -1"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "metric": 5.0}, "is not a whole number"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "metric": "5"}, "is not a whole number"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "onlink": 1}, "onlink must be true or false"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "protocol": 12}, "reserved for bird"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "protocol": 193.0}, "is not a whole number"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "protocol": STATIC}, "reserved"),
        ({"dst": "10.1.0.0/16", "dev": "eth0", "protocol": 256}, "outside 0..255"),
    ],
)
def test_build_rejects(given: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidRouteError, match=reason):
        KernelRoute.build(**given)  # type: ignore[arg-type]


def test_own_protocol_rejects_kernel_and_static() -> None:
    assert check_own_protocol(OURS) == OURS
    for reserved in (0, KERNEL, STATIC):
        with pytest.raises(ValueError, match="reserved"):
            check_own_protocol(reserved)


def test_route_text_reads_like_ip_route() -> None:
    route = r("10.9.0.0/24", dev="cilium_tunl", table=1108, metric=5, onlink=True)
    assert str(route) == "10.9.0.0/24 via 192.0.2.1 dev cilium_tunl table 1108 metric 5 onlink"


def test_desired_without_device_is_satisfied_by_the_kernels_choice() -> None:
    desired = r("10.1.0.0/24")
    assert desired.satisfied_by(KernelRoute("10.1.0.0/24", "192.0.2.1", "eth0"))
    assert not r("10.1.0.0/24", dev="eth1").satisfied_by(
        KernelRoute("10.1.0.0/24", "192.0.2.1", "eth0")
    )


# -- diff_routes: table-driven -------------------------------------------------

A = r("10.1.0.0/24")
A_OTHER_GW = r("10.1.0.0/24", gateway="192.0.2.9")
A_METRIC_5 = r("10.1.0.0/24", metric=5)
A_TABLE_100 = r("10.1.0.0/24", table=100)
B = r("10.2.0.0/24", dev="eth0")
C6 = r("2001:db8:1::/64", gateway="2001:db8::1")


@pytest.mark.parametrize(
    ("desired", "owned", "foreign", "expected"),
    [
        pytest.param([], [], {}, RouteDiff(), id="nothing"),
        pytest.param(
            [A], [], {}, RouteDiff(replace=(A,), vacant_slots=frozenset({A.key})), id="add"
        ),
        pytest.param([A], [A], {}, RouteDiff(), id="converged"),
        pytest.param([A, B, C6], [C6, B, A], {}, RouteDiff(), id="converged-any-order"),
        pytest.param([A_OTHER_GW], [A], {}, RouteDiff(replace=(A_OTHER_GW,)), id="replace-in-slot"),
        pytest.param([], [A, B], {}, RouteDiff(delete=(A, B)), id="delete-obsolete"),
        pytest.param(
            [A_METRIC_5],
            [A],
            {},
            RouteDiff(replace=(A_METRIC_5,), delete=(A,), vacant_slots=frozenset({A_METRIC_5.key})),
            id="metric-is-another-slot",
        ),
        pytest.param(
            [A_TABLE_100],
            [A],
            {},
            RouteDiff(
                replace=(A_TABLE_100,), delete=(A,), vacant_slots=frozenset({A_TABLE_100.key})
            ),
            id="table-is-another-slot",
        ),
        pytest.param(
            [A],
            [],
            {A.key: STATIC},
            RouteDiff(conflicts=(RouteConflict(A, STATIC),)),
            id="conflict",
        ),
        pytest.param(
            [A_OTHER_GW],
            [A],
            {A.key: STATIC},
            RouteDiff(conflicts=(RouteConflict(A_OTHER_GW, STATIC),)),
            id="conflict-leaves-owned-alias",
        ),
        pytest.param(
            [], [A], {A.key: STATIC}, RouteDiff(delete=(A,)), id="obsolete-alias-of-foreign-deleted"
        ),
        pytest.param(
            [A],
            [],
            {RouteKey(254, "10.1.0.0/24", 100): STATIC},
            RouteDiff(replace=(A,), vacant_slots=frozenset({A.key})),
            id="foreign-other-metric-is-no-conflict",
        ),
        pytest.param(
            [A], [A_OTHER_GW, A], {}, RouteDiff(delete=(A_OTHER_GW,)), id="surplus-alias-deleted"
        ),
        pytest.param(
            [r("10.1.0.0/24", gateway="192.0.2.5")],
            [A, A_OTHER_GW],
            {},
            RouteDiff(replace=(r("10.1.0.0/24", gateway="192.0.2.5"),), delete=(A_OTHER_GW,)),
            id="replace-first-alias-delete-rest",
        ),
        pytest.param(
            [A, A],
            [],
            {},
            RouteDiff(replace=(A,), vacant_slots=frozenset({A.key})),
            id="same-twice",
        ),
    ],
)
def test_diff(
    desired: list[KernelRoute],
    owned: list[KernelRoute],
    foreign: dict[RouteKey, int],
    expected: RouteDiff,
) -> None:
    assert diff_routes(desired, owned, foreign) == expected


def test_two_routes_for_one_slot_is_an_error() -> None:
    with pytest.raises(ValueError, match="share a slot"):
        diff_routes([A, A_OTHER_GW], [], {})


def test_empty_means_nothing_to_write_or_report() -> None:
    assert RouteDiff().writes == 0
    assert RouteDiff(conflicts=(RouteConflict(A, STATIC),)) != RouteDiff()
    assert RouteDiff(replace=(A,), delete=(B,)).writes == 2


def test_outputs_are_sorted_by_slot() -> None:
    desired = [r(f"10.{i}.0.0/16") for i in (9, 3, 7, 1)]
    owned = [r(f"10.{i}.0.0/16", dev="eth1") for i in (40, 20, 30)]
    diff = diff_routes(desired, owned, {})
    assert list(diff.replace) == sorted(desired, key=route_order)
    assert list(diff.delete) == sorted(owned, key=route_order)


# -- diff_routes: properties ---------------------------------------------------


@st.composite
def ipv4_routes(draw: st.DrawFn) -> KernelRoute:
    onlink = draw(st.booleans())
    gateway = draw(st.sampled_from([None, "192.0.2.1", "192.0.2.2"]))
    dev = draw(st.sampled_from([None, "eth0", "eth1"]))
    if onlink or gateway is None:
        dev = dev or "eth0"
    if onlink:
        gateway = gateway or "192.0.2.1"
    return KernelRoute.build(
        f"10.{draw(st.integers(0, 7))}.0.0/16",
        gateway=gateway,
        dev=dev,
        table=draw(st.sampled_from([254, 1108, 100])),
        metric=draw(st.sampled_from([0, 100])),
        onlink=onlink,
    )


ipv6_routes = st.builds(
    lambda net, dev, metric: KernelRoute.build(f"fd00:{net:x}::/64", dev=dev, metric=metric),
    net=st.integers(0, 7),
    dev=st.sampled_from(["eth0", "eth1"]),
    metric=st.sampled_from([0, 1024, 5]),
)

routes = st.one_of(ipv4_routes(), ipv6_routes)


def unique_slots(candidates: Iterable[KernelRoute]) -> list[KernelRoute]:
    by_key: dict[RouteKey, KernelRoute] = {}
    for route in candidates:
        by_key.setdefault(route.key, route)
    return list(by_key.values())


desired_sets = st.lists(routes, max_size=12).map(unique_slots)
owned_sets = st.lists(routes, max_size=12).map(unique_slots)
foreign_maps = st.dictionaries(
    routes.map(lambda route: route.key), st.sampled_from([KERNEL, STATIC, 11]), max_size=4
)


def as_read_back(route: KernelRoute) -> KernelRoute:
    """What the kernel reports for a route it holds: the device it chose filled in."""
    return KernelRoute(
        route.dst, route.gateway, route.dev or "eth9", route.table, route.metric, route.onlink
    )


def apply_to_kernel_model(
    diff: RouteDiff, owned: list[KernelRoute], foreign: Mapping[RouteKey, int]
) -> list[KernelRoute]:
    """A kernel as the diff assumes it: replace acts on a slot; deletes match our routes."""
    slots: dict[RouteKey, list[KernelRoute]] = {}
    for route in owned:
        slots.setdefault(route.key, []).append(route)
    for route in diff.replace:
        assert route.key not in foreign, "a foreign slot was written"
        held = slots.setdefault(route.key, [])
        if route.key in diff.vacant_slots:
            assert not held, "exclusive create on an occupied slot"
        held[:1] = [as_read_back(route)]
    for route in diff.delete:
        slots[route.key].remove(route)
    return [route for held in slots.values() for route in held]


@given(desired=desired_sets)
def test_desired_as_owned_is_converged(desired: list[KernelRoute]) -> None:
    assert diff_routes(desired, [as_read_back(route) for route in desired], {}) == RouteDiff()


@given(desired=desired_sets, owned=owned_sets, foreign=foreign_maps)
def test_one_apply_converges(
    desired: list[KernelRoute], owned: list[KernelRoute], foreign: dict[RouteKey, int]
) -> None:
    diff = diff_routes(desired, owned, foreign)
    after = apply_to_kernel_model(diff, owned, foreign)
    again = diff_routes(desired, after, foreign)
    assert again.writes == 0
    assert again.conflicts == diff.conflicts


@given(desired=desired_sets, owned=owned_sets, foreign=foreign_maps)
def test_conflicts_are_never_written(
    desired: list[KernelRoute], owned: list[KernelRoute], foreign: dict[RouteKey, int]
) -> None:
    diff = diff_routes(desired, owned, foreign)
    assert not {route.key for route in diff.replace} & foreign.keys()
    assert {c.route.key for c in diff.conflicts} == {
        route.key for route in desired if route.key in foreign
    }
    assert all(c.holder_protocol == foreign[c.route.key] for c in diff.conflicts)


@given(desired=desired_sets, owned=owned_sets, foreign=foreign_maps)
def test_a_changed_slot_is_replaced_not_deleted(
    desired: list[KernelRoute], owned: list[KernelRoute], foreign: dict[RouteKey, int]
) -> None:
    diff = diff_routes(desired, owned, foreign)
    assert not {route.key for route in diff.replace} & {route.key for route in diff.delete}
    assert diff.vacant_slots == {route.key for route in diff.replace} - {
        route.key for route in owned
    }
    assert set(diff.delete) <= set(owned)


@given(desired=desired_sets, owned=owned_sets, foreign=foreign_maps, seed=st.integers())
def test_order_of_inputs_does_not_matter(
    desired: list[KernelRoute], owned: list[KernelRoute], foreign: dict[RouteKey, int], seed: int
) -> None:
    shuffled_desired, shuffled_owned = desired[:], owned[:]
    random.Random(seed).shuffle(shuffled_desired)
    random.Random(seed + 1).shuffle(shuffled_owned)
    assert diff_routes(desired, owned, foreign) == diff_routes(
        shuffled_desired, shuffled_owned, foreign
    )
