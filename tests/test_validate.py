"""One case per rule and per warning of docs/topology.md "Validation", through `topoctl validate`.

Each case writes a few files under ``sites/``, runs the real CLI (JSON and text output),
and expects exactly these diagnostics: file, line, column, field path and part of the
message. A Site document written by ``site(...)`` has its first body line on line 6.

More (several files and documents, output formats, git revisions, limits) is in
tests/validate/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.validate.support import CLUSTER, E, Expect, W, check_case, doc, site

KEEPALIVE = "  persistentKeepalive: 25"  # keeps the NAT warning out of cases about other things
HEAD = ("apiVersion: topoctl.io/v1alpha1", "kind: Site", "metadata:", "  name: edge")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one(text: str, *expected: Expect, id: str) -> object:
    """A case made of the single file sites/a.yaml."""
    return pytest.param({"a.yaml": text}, expected, id=id)


def two(a: str, b: str, *expected: Expect, id: str) -> object:
    """A case made of sites/a.yaml and sites/b.yaml."""
    return pytest.param({"a.yaml": a, "b.yaml": b}, expected, id=id)


def node_with(field: str) -> str:
    """A site with one node, gw, and ``field`` of that node on line 9 (its key at column 7)."""
    return site(KEEPALIVE, "  nodes:", "    - name: gw", f"      {field}")


def with_endpoint(value: str) -> str:
    """A site whose one node has ``endpoint: value`` (the value is at line 8, column 17)."""
    return site("  nodes:", "    - name: gw", f"      endpoint: {value}")


def bad_endpoint(value: str, fragment: str) -> object:
    return one(
        with_endpoint(value),
        E(8, 17, "spec.nodes[0].endpoint", fragment),
        id=f"endpoint-{value.strip(chr(39))}",
    )


def with_internal_ip(value: str) -> str:
    """The node's internalIP value is at line 9, column 19."""
    return site(KEEPALIVE, "  nodes:", "    - name: gw", f"      internalIP: {value}")


def route(*lines: str) -> str:
    """A site with one route; ``to`` is at line 8, column 11, the next lines follow."""
    return site(KEEPALIVE, "  routes:", *lines)


SYNTAX_AND_STRUCTURE = [
    one(
        site("  nodes:", "\t- name: gw"),
        E(7, 1, "", "YAML syntax: found character"),
        id="yaml-syntax-tab",
    ),
    one(
        site("  labels:", "    tier: web: frontend"),
        E(7, 14, "", "YAML syntax: mapping values are not allowed here"),
        id="yaml-syntax-mapping-value",
    ),
    one(
        node_with("endpont: 203.0.113.1"),
        E(9, 7, "spec.nodes[0].endpont", "unknown field 'endpont' - did you mean 'endpoint'?"),
        id="unknown-field-with-hint",
    ),
    one(
        doc(*HEAD, "spek: {}"),
        E(5, 1, "spek", "unknown field 'spek' - did you mean 'spec'?"),
        id="unknown-top-level-field",
    ),
    one(
        site(KEEPALIVE, "  nodes: gw"),
        E(7, 10, "spec.nodes", "expected a list, got 'gw'"),
        id="wrong-type-list",
    ),
    one(
        route("    - to: 10.0.0.0/8", "      dev: eth0", "      onlink: yes"),
        E(10, 15, "spec.routes[0].onlink", "expected true or false, got 'yes'"),
        id="wrong-type-bool",
    ),
    one(
        route("    - to: 10.0.0.0/8", "      dev: eth0", "      metric: high"),
        E(10, 15, "spec.routes[0].metric", "expected a whole number, got 'high'"),
        id="wrong-type-int",
    ),
    one(
        site(KEEPALIVE, "  lifecycle: [10m]"),
        E(7, 14, "spec.lifecycle", "expected a mapping"),
        id="wrong-type-mapping",
    ),
    one(
        site(KEEPALIVE, "spec: {}"),
        E(7, 1, "", 'found duplicate key "spec"'),
        id="duplicate-key-top-level",
    ),
    one(
        site("  labels:", "    tier: 1"),
        E(7, 11, "spec.labels.tier", 'must be text: quote it, e.g. "1"'),
        id="wrong-type-label-value-number",
    ),
    one(
        site("  annotations:", "    example.com/managed: true"),
        E(7, 26, 'spec.annotations["example.com/managed"]', 'quote it, e.g. "true"'),
        id="wrong-type-annotation-value-boolean",
    ),
    one(
        site("  labels:", "    true: web"),
        E(7, 5, "spec.labels.True", "expected text, got true"),
        id="wrong-type-key-not-text",
    ),
    one(
        doc(*HEAD, "  name: core"),
        E(5, 3, "", 'found duplicate key "name"'),
        id="duplicate-key",
    ),
    one(
        site("  nodes:", "    - name: gw", "      name: gw-2"),
        E(8, 7, "", 'found duplicate key "name"'),
        id="duplicate-key-in-list-item",
    ),
    one(
        doc("kind: Site", "metadata:", "  name: edge"),
        E(1, 1, "apiVersion", "apiVersion is missing - write apiVersion: topoctl.io/v1alpha1"),
        id="document-without-apiVersion",
    ),
    one(
        doc("apiVersion: topoctl.io/v1", "kind: Site", "metadata:", "  name: edge"),
        E(1, 13, "apiVersion", "apiVersion is 'topoctl.io/v1' - write apiVersion"),
        id="document-wrong-apiVersion",
    ),
    one(
        doc("apiVersion: topoctl.io/v1alpha1", "metadata:", "  name: edge"),
        E(1, 1, "kind", "kind is missing - write kind: Site or kind: Cluster"),
        id="document-without-kind",
    ),
    one(
        doc("apiVersion: topoctl.io/v1alpha1", "kind: Location", "metadata:", "  name: edge"),
        E(2, 7, "kind", "'Location' is not a topoctl kind"),
        id="document-wrong-kind",
    ),
    one(
        doc("- apiVersion: topoctl.io/v1alpha1", "  kind: Site"),
        E(1, 1, "", "a document must be a mapping"),
        id="document-not-a-mapping",
    ),
    one(
        doc("apiVersion: topoctl.io/v1alpha1", "kind: Site"),
        E(1, 1, "", "missing required field 'metadata'"),
        id="site-without-metadata",
    ),
    two(
        CLUSTER,
        "# the second one\n" + CLUSTER,
        E(3, 7, "kind", "a second Cluster document (the first is at sites/a.yaml:1)", "b.yaml"),
        id="two-cluster-documents",
    ),
    one(
        CLUSTER + doc("spec:", "  mesh:", "    port: 70000"),
        E(7, 11, "spec.mesh.port", "70000 is out of range: it must be at most 65535"),
        id="cluster-mesh-port-out-of-range",
    ),
    one(
        CLUSTER + doc("spec:", "  mesh:", "    port: '51820'"),
        E(7, 11, "spec.mesh.port", "expected a whole number, got '51820'"),
        id="cluster-mesh-port-quoted",
    ),
    one(
        CLUSTER + doc("spec:", "  routes:", "    protocol: 4"),
        E(7, 15, "spec.routes.protocol", "protocol 4 is reserved for static (Kilo's routes)"),
        id="cluster-route-protocol-reserved",
    ),
    one(
        CLUSTER + doc("spec:", "  lifecycle:", "    maxUnreachableFraction: '0.5'"),
        E(7, 29, "spec.lifecycle.maxUnreachableFraction", "expected a number, got '0.5'"),
        id="cluster-fraction-not-a-number",
    ),
]

SITES_AND_NODES = [
    two(
        site(KEEPALIVE),
        site(KEEPALIVE),
        E(4, 9, "metadata.name", "site 'edge' is defined twice (also at sites/a.yaml:1)", "b.yaml"),
        id="site-name-unique-across-files",
    ),
    one(
        site(KEEPALIVE, name="Edge_1"),
        E(4, 9, "metadata.name", "'Edge_1' is not a DNS-1123 label"),
        id="site-name-not-dns-1123",
    ),
    one(
        site(KEEPALIVE, name="edge.fsn1"),
        E(4, 9, "metadata.name", "is not a DNS-1123 label"),
        id="site-name-dotted",
    ),
    one(
        site(KEEPALIVE, name="e" * 64),
        E(4, 9, "metadata.name", "at most 63 characters"),
        id="site-name-too-long",
    ),
    one(
        site(KEEPALIVE, "  nodes:", "    - name: gw", "    - name: gw"),
        E(9, 13, "spec.nodes[1].name", "node 'gw' is listed twice in this site"),
        id="node-twice-in-one-site",
    ),
    two(
        site(KEEPALIVE, "  nodes:", "    - name: gw", name="fsn1"),
        site(KEEPALIVE, "  nodes:", "    - name: gw", name="ams1"),
        E(8, 13, "spec.nodes[0].name", "also listed in site 'fsn1' (sites/a.yaml:1)", "b.yaml"),
        id="node-in-two-sites",
    ),
    one(
        site(KEEPALIVE, "  nodes:", "    - name: GW_1"),
        E(8, 13, "spec.nodes[0].name", "'GW_1' is not a valid node name"),
        id="node-name-not-dns-1123",
    ),
    one(
        site(KEEPALIVE, "  leader: [gw-2]", "  nodes:", "    - name: gw"),
        E(7, 12, "spec.leader[0]", "leader 'gw-2' is not listed in this site's nodes"),
        id="leader-not-in-nodes",
    ),
]

ENDPOINTS = [
    bad_endpoint("GW.example.com:51820", "only accepts lowercase DNS names"),
    bad_endpoint("gw.example.com.:51820", "drop the trailing dot"),
    bad_endpoint("gw.example.com.", "drop the trailing dot"),
    bad_endpoint("gw_1.example.com", "is not host:port"),
    bad_endpoint("203.0.113.1:0", "the port must be a number from 1 to 65535"),
    bad_endpoint("203.0.113.1:65536", "the port must be a number from 1 to 65535"),
    bad_endpoint("203.0.113.1:http", "the port must be a number from 1 to 65535"),
    bad_endpoint("'203.0.113.1:\u0665\u0661\u0668\u0662\u0660'", "the port must be a number"),
    bad_endpoint("0.0.0.0:51820", "0.0.0.0 is unspecified"),
    bad_endpoint("'[::]:51820'", ":: is unspecified"),
    bad_endpoint("127.0.0.1:51820", "127.0.0.1 is a loopback address"),
    bad_endpoint("'[::1]:51820'", "::1 is a loopback address"),
    bad_endpoint("'[::ffff:127.0.0.1]:51820'", "is a loopback address"),
    bad_endpoint("169.254.10.1:51820", "169.254.10.1 is a link-local address"),
    bad_endpoint("'[fe80::1]:51820'", "fe80::1 is a link-local address"),
    bad_endpoint("224.0.0.1:51820", "224.0.0.1 is a multicast address"),
    bad_endpoint("'[ff02::1]:51820'", "ff02::1 is a multicast address"),
    bad_endpoint("2001:db8::1", "must be bracketed - write [2001:db8::1]:51820"),
    bad_endpoint("2001:db8::1:51820", "must be bracketed - write [2001:db8::1]:51820"),
    bad_endpoint("'[2001:db8::1'", "missing ']'"),
    bad_endpoint("'[gw.example.com]:51820'", "'gw.example.com' is not an IPv6 address"),
    bad_endpoint("51820", "expected text, got 51820"),
]

ADDRESSES = [
    one(
        with_internal_ip("10.0.0.0/24"),
        E(9, 19, "spec.nodes[0].internalIP", "is a network, not one node's address"),
        id="internalIP-network",
    ),
    one(
        with_internal_ip("10.0.0.7/24"),
        E(
            9,
            19,
            "spec.nodes[0].internalIP",
            "interface address with its prefix; internalIP is "
            "the node's address alone - write 10.0.0.7 (Kilo gets it as 10.0.0.7/32)",
        ),
        id="internalIP-host-bits",
    ),
    one(
        with_internal_ip("10.0.0.300"),
        E(9, 19, "spec.nodes[0].internalIP", "'10.0.0.300' is not an IP address or CIDR"),
        id="internalIP-not-an-address",
    ),
    one(
        site(KEEPALIVE, "  allowedLocationIPs: [10.1.0.1/16]"),
        E(7, 24, "spec.allowedLocationIPs[0]", "has host bits set - write 10.1.0.0/16"),
        id="allowedLocationIPs-host-bits",
    ),
    one(
        site(KEEPALIVE, "  allowedLocationIPs: [10.1.0.0/33]"),
        E(7, 24, "spec.allowedLocationIPs[0]", "is not an IP address or CIDR"),
        id="allowedLocationIPs-bad-prefix",
    ),
    two(
        site(KEEPALIVE, "  allowedLocationIPs: [10.0.0.0/8]", name="fsn1"),
        site(KEEPALIVE, "  allowedLocationIPs: [192.168.0.0/16, 10.1.0.0/16]", name="ams1"),
        E(
            7,
            40,
            "spec.allowedLocationIPs[1]",
            "10.1.0.0/16 overlaps 10.0.0.0/8 of site 'fsn1'",
            "b.yaml",
        ),
        id="allowedLocationIPs-overlap-between-sites",
    ),
    two(
        site(KEEPALIVE, "  allowedLocationIPs: ['2001:db8::/32']", name="fsn1"),
        site(KEEPALIVE, "  allowedLocationIPs: ['2001:db8:1::/48']", name="ams1"),
        E(7, 24, "spec.allowedLocationIPs[0]", "overlaps 2001:db8::/32 of site 'fsn1'", "b.yaml"),
        id="allowedLocationIPs-overlap-ipv6",
    ),
    one(
        route("    - to: 172.16.0.1/12", "      dev: eth0"),
        E(8, 11, "spec.routes[0].to", "has host bits set - write 172.16.0.0/12"),
        id="route-to-host-bits",
    ),
    one(
        route("    - to: 172.16.0.0/12x", "      dev: eth0"),
        E(8, 11, "spec.routes[0].to", "is not an IP address or CIDR"),
        id="route-to-not-a-cidr",
    ),
    one(
        route("    - to: 10.0.0.0/8"),
        E(8, 11, "spec.routes[0].to", "a route needs `via` (a gateway or leader), `dev`, or both"),
        id="route-without-via-or-dev",
    ),
]

NUMBERS_AND_KEYS = [
    one(
        site("  persistentKeepalive: '20s'"),
        E(
            6,
            24,
            "spec.persistentKeepalive",
            "is not a whole number of seconds; Kilo would read it as 0",
        ),
        id="keepalive-with-unit-quoted",
    ),
    one(
        site("  persistentKeepalive: 20s"),
        E(6, 24, "spec.persistentKeepalive", "turn keepalive off - write 20"),
        id="keepalive-with-unit",
    ),
    one(
        site("  persistentKeepalive: 0"),
        E(6, 24, "spec.persistentKeepalive", "0 is out of range: keepalive is 1 to 65535 seconds"),
        id="keepalive-zero",
    ),
    one(
        site("  persistentKeepalive: 65536"),
        E(6, 24, "spec.persistentKeepalive", "65536 is out of range"),
        id="keepalive-too-large",
    ),
    one(
        site("  persistentKeepalive: true"),
        E(6, 24, "spec.persistentKeepalive", "true is not a whole number of seconds"),
        id="keepalive-boolean",
    ),
    one(
        node_with("persistentKeepalive: 0"),
        E(9, 28, "spec.nodes[0].persistentKeepalive", "0 is out of range"),
        id="keepalive-on-node",
    ),
    one(
        site(KEEPALIVE, "  labels:", "    'tier one': web"),
        E(8, 5, 'spec.labels["tier one"]', "is not a valid label key: the name part"),
        id="label-key-invalid",
    ),
    one(
        site(KEEPALIVE, "  labels:", "    Example.com/tier: web"),
        E(8, 5, 'spec.labels["Example.com/tier"]', "the prefix before '/' must be a lowercase"),
        id="label-key-prefix-uppercase",
    ),
    one(
        site(KEEPALIVE, "  labels:", f"    {'t' * 64}: web"),
        E(8, 5, f"spec.labels.{'t' * 64}", "must be 1-63 characters"),
        id="label-key-name-too-long",
    ),
    one(
        site(KEEPALIVE, "  labels:", "    tier: web tier"),
        E(8, 11, "spec.labels.tier", "'web tier' is not a valid label value"),
        id="label-value-invalid",
    ),
    one(
        site(KEEPALIVE, "  labels:", f"    tier: {'w' * 64}"),
        E(8, 11, "spec.labels.tier", "is not a valid label value (at most 63"),
        id="label-value-too-long",
    ),
    one(
        site(KEEPALIVE, "  annotations:", "    example.com/a/b: x"),
        E(8, 5, 'spec.annotations["example.com/a/b"]', "is not a valid annotation key"),
        id="annotation-key-invalid",
    ),
    one(
        site(KEEPALIVE, "  taints:", "    - key: a b", "      effect: NoSchedule"),
        E(8, 12, "spec.taints[0].key", "'a b' is not a valid label key"),
        id="taint-key-invalid",
    ),
    one(
        site(
            KEEPALIVE,
            "  taints:",
            "    - key: dedicated",
            "      value: gw only",
            "      effect: NoSchedule",
        ),
        E(9, 14, "spec.taints[0].value", "'gw only' is not a valid label value"),
        id="taint-value-invalid",
    ),
    one(
        site(KEEPALIVE, "  taints:", "    - key: dedicated", "      effect: Sometimes"),
        E(
            9,
            15,
            "spec.taints[0].effect",
            "expected 'NoSchedule', 'PreferNoSchedule' or 'NoExecute'",
        ),
        id="taint-effect-invalid",
    ),
    one(
        site(KEEPALIVE, "  taints:", "    - key: dedicated"),
        E(8, 7, "spec.taints[0]", "missing required field 'effect'"),
        id="taint-effect-missing",
    ),
    one(
        site(KEEPALIVE, "  annotations:", "    kilo.squat.ai/leader: 'true'"),
        E(8, 5, 'spec.annotations["kilo.squat.ai/leader"]', "kilo.squat.ai/* keys are written by"),
        id="reserved-kilo-annotation-on-site",
    ),
    one(
        site(KEEPALIVE, "  labels:", "    kilo.squat.ai/location: edge"),
        E(8, 5, 'spec.labels["kilo.squat.ai/location"]', "is reserved"),
        id="reserved-kilo-label-on-site",
    ),
    one(
        site(KEEPALIVE, "  labels:", "    topoctl.io/owned: x"),
        E(8, 5, 'spec.labels["topoctl.io/owned"]', "topoctl.io/* keys are written by topoctl"),
        id="reserved-topoctl-label-on-site",
    ),
    one(
        node_with("annotations: {kilo.squat.ai/force-endpoint: '203.0.113.9:51820'}"),
        E(9, 21, 'spec.nodes[0].annotations["kilo.squat.ai/force-endpoint"]', "is reserved"),
        id="reserved-kilo-annotation-on-node",
    ),
    one(
        site(
            KEEPALIVE,
            "  pools:",
            "    - name: workers",
            "      selector: {namePattern: 'w-*'}",
            "      annotations: {topoctl.io/agent: x}",
        ),
        E(10, 21, 'spec.pools[0].annotations["topoctl.io/agent"]', "is reserved"),
        id="reserved-topoctl-annotation-on-pool",
    ),
]

ROUTES_LIFECYCLE_POOLS = [
    one(
        route("    - to: 10.0.0.0/8", "      via: leader", "      on: leader"),
        E(9, 12, "spec.routes[0].via", "the leader cannot route via itself"),
        id="route-via-leader-on-leader",
    ),
    one(
        route("    - to: 10.0.0.0/8", "      via: 2001:db8::1"),
        E(9, 12, "spec.routes[0].via", "`via: 2001:db8::1` is IPv6 but `to: 10.0.0.0/8` is IPv4"),
        id="route-via-ipv6-for-ipv4",
    ),
    one(
        route("    - to: 2001:db8::/32", "      via: 10.0.0.1"),
        E(9, 12, "spec.routes[0].via", "`via: 10.0.0.1` is IPv4 but `to: 2001:db8::/32` is IPv6"),
        id="route-via-ipv4-for-ipv6",
    ),
    one(
        route("    - to: 10.0.0.0/8", "      via: gateway"),
        E(9, 12, "spec.routes[0].via", "'gateway' is not an IP address"),
        id="route-via-not-an-address",
    ),
    one(
        site(KEEPALIVE, "  lifecycle:", "    after: 30s"),
        E(8, 12, "spec.lifecycle.after", "'30s' is too short: wait at least 2m"),
        id="lifecycle-after-too-short",
    ),
    one(
        site(KEEPALIVE, "  lifecycle:", "    after: 1m59s"),
        E(8, 12, "spec.lifecycle.after", "too short"),
        id="lifecycle-after-just-under-two-minutes",
    ),
    one(
        site(KEEPALIVE, "  lifecycle:", "    after: 10"),
        E(8, 12, "spec.lifecycle.after", "10 has no unit - write e.g. '10m' or '10s'"),
        id="lifecycle-after-without-unit",
    ),
    one(
        site(KEEPALIVE, "  lifecycle:", "    after: soon"),
        E(8, 12, "spec.lifecycle.after", "'soon' is not a duration"),
        id="lifecycle-after-not-a-duration",
    ),
    one(
        site(KEEPALIVE, "  pools:", "    - name: workers", "      selector: {}"),
        E(9, 17, "spec.pools[0].selector", "an empty selector would claim every node"),
        id="pool-selector-empty",
    ),
    one(
        site(
            KEEPALIVE,
            "  pools:",
            "    - name: workers",
            "      selector:",
            "        matchLabels: {}",
            "        namePattern: ''",
        ),
        E(10, 9, "spec.pools[0].selector", "an empty selector would claim every node"),
        id="pool-selector-with-empty-fields",
    ),
    one(
        site(KEEPALIVE, "  pools:", "    - name: workers"),
        E(8, 7, "spec.pools[0]", "missing required field 'selector'"),
        id="pool-selector-missing",
    ),
    one(
        site(KEEPALIVE, "  pools:", "    - name: w", "      selector: {namePattern: 'FSN1-w-*'}"),
        E(
            9,
            31,
            "spec.pools[0].selector.namePattern",
            "'FSN1-w-*' can never match a node name (lowercase letters, digits, '-' and '.') "
            "- did you mean 'fsn1-w-*'?",
        ),
        id="pool-name-pattern-uppercase",
    ),
    one(
        site(KEEPALIVE, "  pools:", "    - name: w", "      selector: {namePattern: 'fsn1_w*'}"),
        E(9, 31, "spec.pools[0].selector.namePattern", "'fsn1_w*' can never match a node name"),
        id="pool-name-pattern-impossible-character",
    ),
    one(
        site(
            KEEPALIVE,
            "  pools:",
            "    - {name: workers, selector: {namePattern: 'a-*'}}",
            "    - {name: workers, selector: {namePattern: 'b-*'}}",
        ),
        E(9, 14, "spec.pools[1].name", "pool 'workers' is defined twice in this site"),
        id="pool-name-twice-in-one-site",
    ),
]

WARNINGS = [
    one(
        site("  nodes:", "    - name: gw", "      endpoint: 10.0.0.1:51820"),
        W(4, 9, "metadata.name", "no node with a public endpoint and no persistentKeepalive"),
        id="warn-nat-private-endpoint",
    ),
    one(
        site("  nodes:", "    - name: gw"),
        W(4, 9, "metadata.name", "no other location can open a tunnel to it"),
        id="warn-nat-no-endpoint",
    ),
    one(
        site("  nodes:", "    - name: gw", "      endpoint: '[fd00::1]:51820'"),
        W(4, 9, "metadata.name", "no node with a public endpoint"),
        id="warn-nat-ipv6-fd00",
    ),
    one(
        site(
            KEEPALIVE,
            "  leader: [gw-b, gw-a]",
            "  nodes:",
            "    - name: gw-a",
            "    - name: gw-b",
        ),
        W(
            7,
            11,
            "spec.leader",
            "2 leader candidates: Kilo picks the first Ready one by name ('gw-a'",
        ),
        id="warn-several-leaders",
    ),
    one(
        with_endpoint("gw.example.com:51820"),
        W(8, 17, "spec.nodes[0].endpoint", "'gw.example.com:51820' is a DNS name"),
        id="warn-dns-endpoint",
    ),
    two(
        site(KEEPALIVE, "  allowedLocationIPs: [10.0.0.0/8]", name="fsn1"),
        site(KEEPALIVE, "  routes:", "    - to: 10.20.0.0/16", "      dev: eth0", name="ams1"),
        W(8, 11, "spec.routes[0].to", "which Kilo already routes to site 'fsn1'", "b.yaml"),
        id="warn-route-over-other-sites-allowedLocationIPs",
    ),
]

VALID = [
    one(with_endpoint("203.0.113.1:51820"), id="endpoint-ipv4-with-port"),
    one(with_endpoint("203.0.113.1"), id="endpoint-bare-ipv4"),
    one(with_endpoint("'[2001:db8::1]:51820'"), id="endpoint-bracketed-ipv6"),
    one(with_endpoint("'[2001:db8::1]'"), id="endpoint-bare-bracketed-ipv6"),
    one(with_endpoint("100.64.0.1:51820"), id="endpoint-cgnat-counts-as-public"),
    one(with_endpoint("'[fd01::1]:51820'"), id="endpoint-fd01-counts-as-public-like-kilo"),
    one(
        with_endpoint("gw.example.com"),
        W(8, 17, "spec.nodes[0].endpoint", "is a DNS name"),
        id="endpoint-bare-dns-name",
    ),
    one(
        site(
            "  nodes:", "    - name: gw", "      endpoint: 10.0.0.1", "      persistentKeepalive: 5"
        ),
        id="nat-node-keepalive-is-enough",
    ),
    one(site("  persistentKeepalive: 1"), id="keepalive-lowest"),
    one(site("  persistentKeepalive: 65535"), id="keepalive-highest"),
    one(site(KEEPALIVE, "  lifecycle:", "    after: 1h30m"), id="lifecycle-after-1h30m"),
    one(site(KEEPALIVE, "  lifecycle:", "    after: 2m"), id="lifecycle-after-2m"),
    one(site(KEEPALIVE, "  labels:", "    node-role.example.com/gw: ''"), id="label-value-empty"),
    one(
        site(KEEPALIVE, "  allowedLocationIPs: [10.0.0.0/8, 10.1.0.0/16]"),
        id="allowedLocationIPs-may-overlap-within-one-site",
    ),
    one(
        site(KEEPALIVE, "  taints:", "    - {key: kilo.squat.ai/x, effect: NoSchedule}"),
        id="taint-keys-are-not-reserved",
    ),
    one(
        route("    - to: 10.0.0.0/8", "      via: leader", "      on: non-leaders"),
        id="route-via-leader-on-non-leaders",
    ),
    one(site(KEEPALIVE, "  nodes: []") + "---\n" + CLUSTER, id="site-and-cluster-in-one-file"),
    one(site(KEEPALIVE), id="smallest-site"),
    one(
        site(KEEPALIVE, "  pools:", "    - {name: gpu, selector: {namePattern: 'weu-[!a-c]?-*'}}"),
        id="pool-name-pattern-with-a-class",
    ),
    one(
        site(KEEPALIVE, "  leader: [gw, gw]", "  nodes:", "    - name: gw"),
        id="leader-named-twice-is-one-candidate",
    ),
    one("# nothing here yet\n", id="file-without-documents"),
]


@pytest.mark.parametrize(("files", "expected"), SYNTAX_AND_STRUCTURE)
def test_structure(workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]) -> None:
    check_case(workdir, files, expected)


@pytest.mark.parametrize(("files", "expected"), SITES_AND_NODES)
def test_sites_and_nodes(
    workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]
) -> None:
    check_case(workdir, files, expected)


@pytest.mark.parametrize(("files", "expected"), ENDPOINTS)
def test_endpoint_refused(
    workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]
) -> None:
    check_case(workdir, files, expected)


@pytest.mark.parametrize(("files", "expected"), ADDRESSES)
def test_addresses(workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]) -> None:
    check_case(workdir, files, expected)


@pytest.mark.parametrize(("files", "expected"), NUMBERS_AND_KEYS)
def test_numbers_and_keys(
    workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]
) -> None:
    check_case(workdir, files, expected)


@pytest.mark.parametrize(("files", "expected"), ROUTES_LIFECYCLE_POOLS)
def test_routes_lifecycle_pools(
    workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]
) -> None:
    check_case(workdir, files, expected)


@pytest.mark.parametrize(("files", "expected"), WARNINGS)
def test_warning(workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]) -> None:
    check_case(workdir, files, expected)


@pytest.mark.parametrize(("files", "expected"), VALID)
def test_valid(workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]) -> None:
    check_case(workdir, files, expected)
