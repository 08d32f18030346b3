"""Names, keys and values by Kubernetes' own rules, matched whole (a final newline fails).

``re.match`` with ``$`` accepts a value ending in one newline, so a site name from a
block scalar became ``kilo.squat.ai/location: "site-a\\n"`` and a label value
``"infra\\n"`` validated, then failed every apply with HTTP 422. Each case goes through
the CLI: exit code, file:line:col, field path and message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.adapters.files import read_directory
from reconciler.core.loading.load import load
from tests.validate.support import (
    CLUSTER,
    SITES,
    E,
    Expect,
    check_case,
    doc,
    invoke,
    site,
    write_tree,
)

KEEPALIVE = "  persistentKeepalive: 25"
LF = "U+000A LINE FEED"


def one(text: str, *expected: Expect, id: str) -> object:
    return pytest.param({"a.yaml": text}, expected, id=id)


FINAL_NEWLINE = [
    one(site(KEEPALIVE, name='"edge\\n"'), E(4, 9, "metadata.name", LF), id="site-name"),
    one(
        doc(
            "apiVersion: topoctl.io/v1alpha1",
            "kind: Site",
            "metadata:",
            "  name: |",
            "    site-a",
            "spec:",
            KEEPALIVE,
        ),
        E(4, 9, "metadata.name", f"'site-a\\n' ({LF} at position 7)"),
        id="site-name-from-a-block-scalar",
    ),
    one(
        site(KEEPALIVE, "  nodes:", '    - name: "gw-1\\n"'),
        E(8, 13, "spec.nodes[0].name", f"({LF} at position 5) is not a valid node name"),
        id="node-name",
    ),
    one(
        site(KEEPALIVE, '  leader: ["gw\\n"]', "  nodes: [{name: gw}]"),
        E(7, 12, "spec.leader[0]", LF),
        id="leader-name",
    ),
    one(
        site(KEEPALIVE, '  labels: {tier: "infra\\n"}'),
        E(7, 18, "spec.labels.tier", f"'infra\\n' ({LF} at position 6) is not a valid label"),
        id="label-value",
    ),
    one(
        site(KEEPALIVE, '  labels: {"tier\\n": infra}'),
        E(7, 12, 'spec.labels["tier\\n"]', "is not a valid label key"),
        id="label-key-name",
    ),
    one(
        site(KEEPALIVE, '  labels: {"example.com\\n/tier": infra}'),
        E(7, 12, 'spec.labels["example.com\\n/tier"]', "the prefix before '/'"),
        id="label-key-prefix",
    ),
    one(
        site(KEEPALIVE, '  annotations: {"note\\n": text}'),
        E(7, 17, 'spec.annotations["note\\n"]', "is not a valid annotation key"),
        id="annotation-key",
    ),
    one(
        site(KEEPALIVE, '  taints: [{key: "dedicated\\n", effect: NoSchedule}]'),
        E(7, 18, "spec.taints[0].key", "is not a valid label key"),
        id="taint-key",
    ),
    one(
        site(KEEPALIVE, '  taints: [{key: dedicated, value: "gw\\n", effect: NoSchedule}]'),
        E(7, 36, "spec.taints[0].value", "is not a valid label value"),
        id="taint-value",
    ),
    one(
        site(
            KEEPALIVE,
            "  pools:",
            '    - name: "workers\\n"',
            "      selector: {namePattern: edge-*}",
        ),
        E(8, 13, "spec.pools[0].name", LF),
        id="pool-name",
    ),
    one(
        site(
            KEEPALIVE,
            "  pools:",
            "    - name: workers",
            '      selector: {matchLabels: {role: "worker\\n"}}',
        ),
        E(9, 38, "spec.pools[0].selector.matchLabels.role", "is not a valid label value"),
        id="selector-label-value",
    ),
]


@pytest.mark.parametrize(("files", "expected"), FINAL_NEWLINE)
def test_a_final_newline_is_refused(
    workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]
) -> None:
    check_case(workdir, files, expected)


def test_endpoints_and_durations_are_trimmed_not_refused(workdir: Path) -> None:
    """Their canonical form drops surrounding whitespace: what Kilo gets has no newline."""
    text = site(
        KEEPALIVE,
        "  lifecycle:",
        '    after: "10m\\n"',
        "  nodes:",
        '    - {name: gw, endpoint: "gw.example.com\\n"}',
    )
    write_tree(workdir / SITES, {"a.yaml": text})
    files, notes = read_directory(Path(SITES))
    result = load(files, notes)
    assert result.topology is not None, result.diagnostics
    spec = result.topology.sites[0].spec
    assert (spec.lifecycle.after, spec.nodes[0].endpoint) == ("10m", "gw.example.com")


KUBERNETES_RULES = [
    one(
        site(KEEPALIVE, "  labels: {tier: " + "v" * 64 + "}"),
        E(7, 18, "spec.labels.tier", "at most 63"),
        id="label-value-64-characters",
    ),
    one(
        site(KEEPALIVE, "  labels: {tier: " + "v" * 63 + "}"),
        id="label-value-63-characters",
    ),
    one(
        site(KEEPALIVE, "  labels: {tier: -infra}"),
        E(7, 18, "spec.labels.tier", "starting and ending with a letter or digit"),
        id="label-value-leading-dash",
    ),
    one(
        site(KEEPALIVE, "  labels: {tier: 'a b'}"),
        E(7, 18, "spec.labels.tier", "is not a valid label value"),
        id="label-value-with-a-space",
    ),
    one(
        site(
            KEEPALIVE, "  taints: [{key: dedicated, value: " + "g" * 64 + ", effect: NoSchedule}]"
        ),
        E(7, 36, "spec.taints[0].value", "at most 63"),
        id="taint-value-64-characters",
    ),
    one(
        site(KEEPALIVE, "  taints: [{key: dedicated, value: a_b.c-d, effect: NoExecute}]"),
        id="taint-value-with-every-allowed-character",
    ),
    one(
        site(KEEPALIVE, "  labels: {Example.com/tier: infra}"),
        E(7, 12, 'spec.labels["Example.com/tier"]', "lowercase DNS subdomain"),
        id="label-key-prefix-uppercase",
    ),
    one(
        site(KEEPALIVE, "  labels: {" + "p" * 254 + "/tier: infra}"),
        E(7, 12, 'spec.labels["' + "p" * 254 + '/tier"]', "at most 253 characters"),
        id="label-key-prefix-too-long",
    ),
    one(
        site(KEEPALIVE, "  annotations: {ex_ample.com/note: text}"),
        E(7, 17, 'spec.annotations["ex_ample.com/note"]', "lowercase DNS subdomain"),
        id="annotation-key-prefix-not-a-subdomain",
    ),
    one(
        site(KEEPALIVE, "  annotations: {example.com/note: 'any text\\n is fine: #!'}"),
        id="annotation-value-is-free-text",
    ),
    one(
        site(KEEPALIVE, "  annotations: {big: " + "x" * (256 * 1024) + "}"),
        E(7, 16, "spec.annotations", "Kubernetes refuses a node whose annotations exceed"),
        id="annotations-over-256-KiB",
    ),
    one(
        site(KEEPALIVE, "  annotations: {big: " + "x" * (256 * 1024 - 3) + "}"),
        id="annotations-of-exactly-256-KiB",
    ),
    one(
        site(
            KEEPALIVE,
            "  annotations: {site-note: " + "x" * (200 * 1024) + "}",
            "  nodes:",
            "    - name: gw",
            "      annotations: {node-note: " + "y" * (100 * 1024) + "}",
        ),
        E(10, 7, "spec.nodes[0].annotations", "with the site's annotations"),
        id="annotations-over-256-KiB-once-merged",
    ),
]


@pytest.mark.parametrize(("files", "expected"), KUBERNETES_RULES)
def test_keys_and_values_follow_kubernetes(
    workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]
) -> None:
    check_case(workdir, files, expected)


ODD_CHARACTERS = [
    one(
        site(KEEPALIVE, name="edge-\u0430"),  # CYRILLIC SMALL LETTER A
        E(4, 9, "metadata.name", "(U+0430 CYRILLIC SMALL LETTER A at position 6)"),
        id="site-name-cyrillic-a",
    ),
    one(
        site(KEEPALIVE, "  nodes:", "    - name: gw\u2010a"),  # HYPHEN, not HYPHEN-MINUS
        E(8, 13, "spec.nodes[0].name", "(U+2010 HYPHEN at position 3)"),
        id="node-name-unicode-hyphen",
    ),
    one(
        site(KEEPALIVE, "  labels: {tier: \u0456nfra}"),  # CYRILLIC ... UKRAINIAN I
        E(7, 18, "spec.labels.tier", "U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I"),
        id="label-value-cyrillic-i",
    ),
    one(
        site(KEEPALIVE, "  nodes:", "    - {name: gw, endpoint: gw.ex\u0430mple.com}"),
        E(8, 28, "spec.nodes[0].endpoint", "(U+0430 CYRILLIC SMALL LETTER A at position 6)"),
        id="endpoint-cyrillic-a",
    ),
    one(
        site(KEEPALIVE, "  lifecycle:", "    after: \u0661\u0660m"),  # ARABIC-INDIC 1 and 0
        E(8, 12, "spec.lifecycle.after", "U+0661 ARABIC-INDIC DIGIT ONE at position 1"),
        id="duration-arabic-indic-digits",
    ),
    one(
        site(KEEPALIVE, "  lifecycle:", "    after: \uff11\uff10m"),  # FULLWIDTH 1 and 0
        E(8, 12, "spec.lifecycle.after", "U+FF11 FULLWIDTH DIGIT ONE"),
        id="duration-fullwidth-digits",
    ),
    one(
        site(KEEPALIVE, "  lifecycle:", "    after: 1\u0665m"),  # a 5 in another script
        E(8, 12, "spec.lifecycle.after", "at position 2"),
        id="duration-mixed-digits",
    ),
]


@pytest.mark.parametrize(("files", "expected"), ODD_CHARACTERS)
def test_odd_characters_are_named(
    workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]
) -> None:
    check_case(workdir, files, expected)


MAPPED = "IPv4-mapped IPv6 address"
IPV4_MAPPED = [
    one(
        site(KEEPALIVE, "  nodes:", "    - {name: gw, internalIP: '::ffff:10.0.0.1'}"),
        E(
            8,
            30,
            "spec.nodes[0].internalIP",
            f"{MAPPED}: Kilo and the kernel would treat it as IPv6",
        ),
        id="internal-ip",
    ),
    one(
        site(KEEPALIVE, "  nodes:", "    - {name: gw, internalIP: '::FFFF:a00:1'}"),
        E(8, 30, "spec.nodes[0].internalIP", "write 10.0.0.1"),
        id="internal-ip-hex-spelling",
    ),
    one(
        site(KEEPALIVE, "  nodes:", "    - {name: gw, internalIP: '::ffff:10.0.0.1/128'}"),
        E(8, 30, "spec.nodes[0].internalIP", "write 10.0.0.1/32"),
        id="internal-ip-as-cidr",
    ),
    one(
        site(KEEPALIVE, "  allowedLocationIPs: ['::ffff:192.168.0.0/112']"),
        E(7, 24, "spec.allowedLocationIPs[0]", "write 192.168.0.0/16"),
        id="allowed-location-ips",
    ),
    one(
        CLUSTER + doc("spec:", "  addresses:", "    externalIPTarget: '::ffff:8.8.8.8'"),
        E(7, 23, "spec.addresses.externalIPTarget", "write 8.8.8.8"),
        id="address-target",
    ),
    one(
        site(KEEPALIVE, "  nodes:", "    - {name: gw, internalIP: '::1:ffff:10.0.0.1'}"),
        id="not-mapped-only-similar",
    ),
]


@pytest.mark.parametrize(("files", "expected"), IPV4_MAPPED)
def test_ipv4_mapped_addresses_ask_for_the_ipv4_form(
    workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]
) -> None:
    check_case(workdir, files, expected)


# Every setting is acted on now (mesh.granularity by the planner, lifecycle.* by plan and
# apply --probe): none of them may draw a "has no effect" warning.
ACTED_ON = [
    one(site(KEEPALIVE, "  lifecycle:", "    deleteUnreachable: true"), id="site-lifecycle"),
    one(site(KEEPALIVE, "  lifecycle: {scope: all, after: 5m}"), id="site-lifecycle-scope"),
    one(
        CLUSTER + doc("spec:", "  lifecycle:", "    maxDeletionsPerHour: 3"),
        id="cluster-lifecycle",
    ),
    one(CLUSTER + doc("spec:", "  mesh:", "    granularity: full"), id="mesh-granularity"),
    one(CLUSTER + doc("spec:", "  mesh:", "    granularity: cross"), id="mesh-granularity-cross"),
]


@pytest.mark.parametrize(("files", "expected"), ACTED_ON)
def test_settings_that_are_acted_on_do_not_warn(
    workdir: Path, files: dict[str, str], expected: tuple[Expect, ...]
) -> None:
    check_case(workdir, files, expected)


@pytest.mark.parametrize("interval", ["\u0661\u0660s", "\u0661\u0660", "\uff11\uff10m"])
def test_agent_interval_takes_ascii_digits_only(interval: str) -> None:
    result = invoke("agent", "--node", "gw", "--once", "--interval", interval)
    assert result.exit_code == 2
    assert f"--interval {interval!r}: write e.g. 10s, 1m or 30" in result.output
