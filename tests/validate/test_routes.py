"""Routes `topoctl validate` must refuse because the agent could not keep them, via the CLI.

Every case runs the real CLI on sites/a.yaml (JSON and text output) and expects exactly
these diagnostics: exit code, file:line:col, field path, part of the message, no
traceback. In ``routes(...)`` the first route's ``to`` is on line 8 (value at column 11);
each further route starts ``spacing`` lines lower.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.core.agent.routes import InvalidRouteError, KernelRoute
from tests.validate.support import (
    CLUSTER,
    E,
    Expect,
    check_case,
    doc,
    site,
    validate_json,
    write_tree,
)

KEEPALIVE = "  persistentKeepalive: 25"


def routes(*entries: tuple[str, ...]) -> str:
    """A site whose routes are ``entries``: each a ``to`` value then its other lines."""
    lines = ["  routes:"]
    for to, *rest in entries:
        lines.append(f"    - to: {to}")
        lines += [f"      {field}" for field in rest]
    return site(KEEPALIVE, *lines)


def case(text: str, *expected: Expect, id: str) -> object:
    return pytest.param({"a.yaml": text}, expected, id=id)


SLOT = "already holds this slot"

SAME_SLOT = [
    case(
        routes(("10.0.0.0/8", "dev: eth0"), ("10.0.0.0/8", "via: 192.0.2.1")),
        E(10, 11, "spec.routes[1].to", "spec.routes[0] (line 8) already holds this slot"),
        id="same-slot-main",
    ),
    case(
        routes(("2001:db8::/32", "dev: eth0"), ("2001:db8::/32", "dev: eth1", "metric: 1024")),
        E(10, 11, "spec.routes[1].to", "metric 1024 (IPv6 metric 0 is 1024)"),
        id="same-slot-ipv6-metric-0-is-1024",
    ),
    case(
        routes(
            ("10.1.0.0/16", "dev: eth0", "table: main"), ("10.1.0.0/16", "dev: x", "table: 254")
        ),
        E(11, 11, "spec.routes[1].to", "10.1.0.0/16 in table 254 with metric 0"),
        id="same-slot-main-written-as-254",
    ),
    case(
        routes(("10.0.0.7", "dev: eth0"), ("10.0.0.7/32", "via: 192.0.2.1")),
        E(10, 11, "spec.routes[1].to", SLOT),
        id="same-slot-host-and-its-cidr",
    ),
    case(
        routes(("10.2.0.0/16", "dev: eth0"), ("10.2.0.0/16", "dev: eth0")),
        E(10, 11, "spec.routes[1].to", SLOT),
        id="same-slot-identical-twice",
    ),
    case(
        routes(("10.3.0.0/16", "dev: eth0", "on: leader"), ("10.3.0.0/16", "dev: eth1")),
        E(11, 11, "spec.routes[1].to", "spec.routes[0] (line 8)"),
        id="same-slot-leader-and-all",
    ),
    case(
        routes(
            ("10.5.0.0/16", "dev: eth0", "metric: 5"),
            ("10.5.0.0/16", "dev: eth1", "metric: 5"),
            ("10.5.0.0/16", "dev: eth2", "metric: 5"),
        ),
        E(11, 11, "spec.routes[1].to", "spec.routes[0] (line 8)"),
        E(14, 11, "spec.routes[2].to", "spec.routes[0] (line 8)"),
        id="same-slot-three-times",
    ),
]

OTHER_SLOTS = [
    case(
        routes(("10.0.0.0/8", "dev: eth0"), ("10.0.0.0/8", "dev: eth0", "metric: 1024")),
        id="ipv4-metric-0-and-1024-differ",
    ),
    case(
        routes(("10.0.0.0/8", "dev: eth0"), ("10.0.0.0/8", "dev: eth0", "table: 100")),
        id="other-table",
    ),
    case(
        routes(
            ("10.0.0.0/8", "dev: eth0", "on: leader"), ("10.0.0.0/8", "dev: e1", "on: non-leaders")
        ),
        id="leader-and-non-leaders-never-meet",
    ),
    case(
        routes(("10.0.0.0/8", "via: leader"), ("10.0.0.0/8", "dev: eth0", "on: leader")),
        id="via-leader-never-lands-on-the-leader",
    ),
]

ZONE_IDS = [
    case(
        routes(("fe80::/64", "via: fe80::1%v0")),
        E(9, 12, "spec.routes[0].via", "carries a zone id: write `via: fe80::1` and `dev: v0`"),
        id="via-zone-id",
    ),
    case(
        routes(("2001:db8::/32", "via: 'fe80::1%eth0'", "dev: eth0")),
        E(9, 12, "spec.routes[0].via", "'fe80::1%eth0' carries a zone id"),
        id="via-zone-id-quoted-with-dev",
    ),
    case(
        routes(("fe80::%v0/64", "dev: v0")),
        E(8, 11, "spec.routes[0].to", "carries a zone id"),
        id="to-zone-id",
    ),
]

NUMBERS = [
    case(
        routes(("10.0.0.0/8", "dev: eth0", "table: 254.0")),
        E(10, 14, "spec.routes[0].table", "table 254.0 is not a whole number"),
        id="table-float",
    ),
    case(
        routes(("10.0.0.0/8", "dev: eth0", "table: '100'")),
        E(10, 14, "spec.routes[0].table", "table '100' is text: write the number unquoted"),
        id="table-string-of-digits",
    ),
    case(
        routes(("10.0.0.0/8", "dev: eth0", "table: true")),
        E(10, 14, "spec.routes[0].table", "table True is not a whole number"),
        id="table-bool",
    ),
    case(
        routes(("10.0.0.0/8", "dev: eth0", "metric: 5.0")),
        E(10, 15, "spec.routes[0].metric", "expected a whole number, got 5.0"),
        id="metric-float",
    ),
    case(
        routes(("10.0.0.0/8", "dev: eth0", "metric: '5'")),
        E(10, 15, "spec.routes[0].metric", "expected a whole number, got '5'"),
        id="metric-string-of-digits",
    ),
    case(
        routes(("10.0.0.0/8", "dev: eth0", "metric: false")),
        E(10, 15, "spec.routes[0].metric", "expected a whole number, got false"),
        id="metric-bool",
    ),
    case(
        CLUSTER + doc("spec:", "  routes:", "    protocol: 193.0"),
        E(7, 15, "spec.routes.protocol", "expected a whole number, got 193.0"),
        id="protocol-float",
    ),
    case(
        CLUSTER + doc("spec:", "  routes:", "    protocol: '193'"),
        E(7, 15, "spec.routes.protocol", "expected a whole number, got '193'"),
        id="protocol-string-of-digits",
    ),
]

TABLES = [
    case(
        routes(("10.0.0.0/8", "dev: eth0", f"table: {table}")),
        E(10, 14, "spec.routes[0].table", reason),
        id=f"table-{table}",
    )
    for table, reason in [
        ("0", "table 0 is RT_TABLE_UNSPEC"),
        ("253", "table 253 is the kernel's default table"),
        ("255", "table 255 is the kernel's local table"),
        ("1107", "table 1107 is Kilo's return-route table"),
        ("local", "table local (255) is the kernel's local table"),
        ("default", "table default (253) is the kernel's default table"),
        ("4294967296", "table 4294967296 is outside 1..4294967295"),
    ]
]

PROTOCOLS = [
    case(
        CLUSTER + doc("spec:", "  routes:", f"    protocol: {number}"),
        E(7, 15, "spec.routes.protocol", f"protocol {number} is reserved for {name}"),
        id=f"protocol-{name}",
    )
    for number, name in [(2, "kernel"), (12, "bird"), (17, "mrouted"), (186, "bgp"), (192, "eigrp")]
]

DEVICES = [
    case(
        routes(("10.0.0.0/8", f"dev: {dev}")),
        E(9, 12, "spec.routes[0].dev", reason),
        id=f"dev-{id}",
    )
    for dev, reason, id in [
        ("'" + "\u00e9" * 8 + "'", "it is 16 bytes in UTF-8, Linux holds 1 to 15", "16-bytes"),
        ("abcdefghijklmnop", "it is 16 bytes in UTF-8", "16-chars"),
        ("'..'", "Linux refuses '.' and '..'", "dotdot"),
        ("'.'", "Linux refuses '.' and '..'", "dot"),
        ("eth0:1", "it contains '/' or ':'", "colon"),
        ("a/b", "it contains '/' or ':'", "slash"),
        ("'a b'", "it contains whitespace", "space"),
        ("'\u00e0'", "a UTF-8 byte 0xA0", "byte-0xa0"),
        ("''", "it is 0 bytes", "empty"),
    ]
]

VALID_DEVICES = [
    case(routes(("10.0.0.0/8", "dev: '" + "\u00e9" * 7 + "'")), id="dev-14-bytes"),
    case(routes(("10.0.0.0/8", "dev: abcdefghijklmno")), id="dev-15-chars"),
    case(routes(("10.0.0.0/8", "dev: cilium_tunl")), id="dev-cilium"),
]


DEFAULT_ROUTE = "is a default route (any destination wider than /8 is one, or part of one)"
KILO = "lies inside 10.4.0.0/16, Kilo's WireGuard subnet (the Cluster's mesh.subnet): the node "
NETWORK = doc(
    "spec:",
    "  mesh: {subnet: 10.8.0.0/16}",
    "  network:",
    "    podCIDRs: [10.244.0.0/16, 'fd00:10:244::/56']",
    "    serviceCIDRs: [10.96.0.0/16]",
)


def with_network(text: str, *expected: Expect, id: str) -> object:
    return pytest.param({"a.yaml": text, "cluster.yaml": CLUSTER + NETWORK}, expected, id=id)


PROTECTED = [
    case(routes(("0.0.0.0/0", "via: 192.0.2.1")), E(8, 11, "spec.routes[0].to", DEFAULT_ROUTE),
         id="ipv4-default"),
    case(routes(("::/0", "dev: eth0")), E(8, 11, "spec.routes[0].to", DEFAULT_ROUTE),
         id="ipv6-default"),
    case(
        routes(("0.0.0.0/1", "via: leader"), ("128.0.0.0/1", "via: leader")),
        E(8, 11, "spec.routes[0].to", "0.0.0.0/1 " + DEFAULT_ROUTE),
        E(10, 11, "spec.routes[1].to", "128.0.0.0/1 " + DEFAULT_ROUTE),
        id="default-in-two-halves",
    ),
    case(routes(("10.4.7.0/24", "via: leader")), E(8, 11, "spec.routes[0].to", KILO),
         id="inside-kilo-default-subnet"),
    case(routes(("10.4.0.0/16", "dev: eth0")), E(8, 11, "spec.routes[0].to", KILO),
         id="kilo-default-subnet-itself"),
    case(routes(("10.0.0.0/8", "via: leader"), ("10.5.0.0/16", "dev: eth0")),
         id="covering-or-beside-kilo-is-fine"),
    with_network(
        routes(("10.8.1.0/24", "dev: eth0"), ("10.4.7.0/24", "dev: eth0")),
        E(8, 11, "spec.routes[0].to", "lies inside 10.8.0.0/16, Kilo's WireGuard subnet"),
        id="inside-the-cluster-mesh-subnet",
    ),
    with_network(
        routes(("10.244.3.0/24", "via: leader"), ("fd00:10:244:3::/64", "dev: eth1")),
        E(8, 11, "spec.routes[0].to", "inside 10.244.0.0/16, the cluster's pod CIDR (the Cluster"),
        E(10, 11, "spec.routes[1].to", "inside fd00:10:244::/56, the cluster's pod CIDR"),
        id="inside-the-cluster-pod-cidrs",
    ),
    with_network(
        routes(("10.96.0.10", "dev: cilium_host")),
        E(8, 11, "spec.routes[0].to", "inside 10.96.0.0/16, the cluster's service CIDR"),
        id="inside-the-cluster-service-cidr",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        *SAME_SLOT, *OTHER_SLOTS, *ZONE_IDS, *NUMBERS, *TABLES, *PROTOCOLS, *DEVICES,
        *VALID_DEVICES, *PROTECTED,
    ],
)  # fmt: skip
def test_routes(workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]) -> None:
    check_case(workdir, files, expected)


@pytest.mark.parametrize(
    ("fields", "valid"),
    [
        ({"dev": "\u00e9" * 7}, True),
        ({"dev": "\u00e9" * 8}, False),
        ({"dev": "\u00e0"}, False),
        ({"dev": "eth0", "table": 1107}, False),
        ({"dev": "eth0", "table": 255}, False),
        ({"dev": "eth0", "table": "local"}, False),
        ({"dev": "eth0", "table": 254.0}, False),
        ({"dev": "eth0", "table": 100}, True),
        ({"gateway": "fe80::1%v0", "dev": "v0"}, False),
        ({"dev": "eth0", "protocol": 17}, False),
        ({"dev": "eth0", "protocol": 200}, True),
    ],
)
def test_the_agent_applies_the_same_rules(
    workdir: Path, fields: dict[str, object], valid: bool
) -> None:
    """What validate refuses the agent refuses too, and the other way round."""
    dst = "fe80::/64" if "gateway" in fields else "10.0.0.0/8"
    try:
        KernelRoute.build(dst, **fields)  # type: ignore[arg-type]
        agent_accepts = True
    except InvalidRouteError:
        agent_accepts = False
    entry = [f"dev: '{fields['dev']}'"]
    if "gateway" in fields:
        entry.append(f"via: {fields['gateway']}")
    if "table" in fields:
        entry.append(f"table: {fields['table']}")
    files = {"a.yaml": routes((dst, *entry))}
    if "protocol" in fields:
        files["c.yaml"] = CLUSTER + doc("spec:", "  routes:", f"    protocol: {fields['protocol']}")
    write_tree(workdir / "sites", files)
    report = validate_json("sites")
    assert agent_accepts is valid
    assert report.data["valid"] is valid, report.errors
