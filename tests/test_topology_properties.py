"""Properties of the topology contract, checked on generated input (hypothesis).

- Any valid topology, dumped to YAML (all fields, or only the ones that differ from the
  defaults) and loaded back through the loader, is the same topology.
- Canonical forms (CIDRs, host CIDRs, IPs, endpoints, durations) are idempotent.
- The loader never raises, whatever the bytes.
"""

from __future__ import annotations

import io
import ipaddress
import os
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.core.loading.load import SourceFile, load
from reconciler.model import keys, routerules
from reconciler.model import topology as t
from reconciler.model.addresses import (
    canonical_cidr,
    canonical_endpoint,
    host_cidr,
    ip_address,
    parse_endpoint,
)
from reconciler.model.routerules import RESERVED_TABLES, slot
from reconciler.model.types import MIN_LIFECYCLE_AFTER, duration, duration_seconds

# `make test` runs the "ci" profile (tests/conftest.py): fixed seeds, these bounded counts.
# `make fuzz` runs the "fuzz" profile: random seeds, the profile's (much larger) count.
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


def examples(bounded: int) -> int:
    """``bounded`` examples under `make test`; the fuzz profile's count under `make fuzz`."""
    return settings().max_examples if FUZZ else bounded


SETTINGS = settings(
    max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- building blocks -------------------------------------------------------------------

LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
ALNUM = LOWER + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def word(edge: str, middle: str, max_size: int = 14) -> st.SearchStrategy[str]:
    """``edge`` characters at both ends, ``middle`` ones inside (cheaper than from_regex)."""
    ends = st.sampled_from(edge)
    inner = st.text(alphabet=middle, max_size=max_size)
    return st.one_of(ends, st.builds(lambda a, m, b: a + m + b, ends, inner, ends))


dns_label = word(LOWER, LOWER + "-")
dns_subdomain = st.lists(dns_label, min_size=1, max_size=3).map(".".join)
qualified_name = word(ALNUM, ALNUM + "-_.")
key_prefix = st.sampled_from(["", "example.com/", "node.kubernetes.io/", "a-b.c.d/"])
user_key = st.builds(lambda prefix, name: prefix + name, key_prefix, qualified_name)
# Values that YAML would read as something other than text unless the dumper quotes them.
tricky = ["", "true", "no", "NULL", "123", "1e3", "0x1F", "1_000", "0o17", "2024-01-01"]
label_value = st.sampled_from(tricky) | word(ALNUM, ALNUM + "-_.", max_size=20)
# ruamel's emitter writes NEL and the Unicode line/paragraph separators unescaped and its
# reader folds them into spaces: a YAML library quirk, not the loader's, so left out.
annotation_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x85\u2028\u2029"), max_size=40
)
annotation_value = st.sampled_from([*tricky, "~", "- a", "a: b", "[x]", "#"]) | annotation_text

label_maps = st.dictionaries(user_key, label_value, max_size=2)
annotation_maps = st.dictionaries(user_key, annotation_value, max_size=2)
taint = st.fixed_dictionaries(
    {"key": user_key, "effect": st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"])},
    optional={"value": label_value},
)
taints = st.lists(taint, max_size=1)


def _usable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """What an endpoint may be: not unspecified, loopback, link-local or multicast."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_unspecified or ip.is_loopback or ip.is_link_local or ip.is_multicast)


def _not_mapped(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """IPv4-mapped IPv6 addresses are refused (the IPv4 form is asked for)."""
    return not (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None)


addresses = st.ip_addresses().filter(_not_mapped)
endpoint_ip4 = st.ip_addresses(v=4).filter(_usable)
endpoint_ip6 = st.ip_addresses(v=6).filter(_usable)
port = st.integers(1, 65535)


@st.composite
def endpoints(draw: st.DrawFn) -> str:
    """Any form docs/topology.md allows, with or without a port."""
    kind = draw(st.sampled_from(["ip4", "ip6", "dns"]))
    if kind == "ip4":
        host = str(draw(endpoint_ip4))
    elif kind == "ip6":
        host = f"[{draw(endpoint_ip6)}]"
    else:
        host = draw(dns_subdomain)
    return host + (f":{draw(port)}" if draw(st.booleans()) else "")


def networks_in(parent: str) -> st.SearchStrategy[str]:
    """Networks inside ``parent``, as text with no host bits set."""
    net = ipaddress.ip_network(parent)
    return st.builds(
        lambda offset, plen: str(
            ipaddress.ip_network((int(net.network_address) + offset, plen), strict=False)
        ),
        st.integers(0, net.num_addresses - 1),
        st.integers(net.prefixlen, net.max_prefixlen),
    )


def networks(version: Literal[4, 6]) -> st.SearchStrategy[str]:
    """Any IPv4 or IPv6 network, as text with no host bits set."""
    bits = 32 if version == 4 else 128
    return st.builds(
        lambda ip, plen: str(ipaddress.ip_network((ip, plen), strict=False)),
        st.ip_addresses(v=version),
        st.integers(0, bits),
    ).filter(lambda net: not _mapped_network(net))


def _mapped_network(text: str) -> bool:
    net = ipaddress.ip_network(text)
    return isinstance(net, ipaddress.IPv6Network) and net.subnet_of(
        ipaddress.IPv6Network("::ffff:0:0/96")
    )


any_network = networks(4) | networks(6)


def _routable(text: str) -> bool:
    """Neither a default route nor inside Kilo's default subnet: the agent takes it."""
    kilo = routerules.ProtectedRange(ipaddress.ip_network(keys.KILO_DEFAULT_SUBNET), "Kilo's")
    return routerules.never_routed(ipaddress.ip_network(text), (kilo,)) is None


@st.composite
def routes(draw: st.DrawFn) -> dict[str, Any]:
    to = draw(any_network.filter(_routable))
    family = ipaddress.ip_network(to).version
    gateways = st.ip_addresses(v=family).filter(_not_mapped).map(str)
    via = draw(st.none() | st.just("leader") | gateways)
    route: dict[str, Any] = {"to": to}
    if via is not None:
        route["via"] = via
    if via is None or draw(st.booleans()):
        route["dev"] = draw(st.text(alphabet=LOWER + "_", min_size=1, max_size=15))
    if draw(st.booleans()):
        route["onlink"] = draw(st.booleans())
    on = ["all", "non-leaders"] if via == "leader" else ["all", "leader", "non-leaders"]
    route["on"] = draw(st.sampled_from(on))
    route["metric"] = draw(st.integers(0, 0xFFFFFFFF))
    route["table"] = draw(
        st.just("main") | st.integers(1, 0xFFFFFFFF).filter(lambda n: n not in RESERVED_TABLES)
    )
    return route


def _slot(route: dict[str, Any]) -> tuple[int, str, int]:
    """Two routes of a site may not share a kernel slot (validate refuses it)."""
    table = 254 if route["table"] == "main" else route["table"]
    return slot(route["to"], table, route["metric"])


durations = st.builds(
    lambda h, m, s: (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else ""),
    st.integers(0, 48),
    st.integers(0, 59),
    st.integers(0, 59),
).filter(lambda text: bool(text) and duration_seconds(text) >= MIN_LIFECYCLE_AFTER)


@st.composite
def sites(draw: st.DrawFn, index: int, name: str) -> dict[str, Any]:
    """A valid Site; node names and allowedLocationIPs are kept apart per ``index``."""
    node_names = draw(st.lists(dns_subdomain, max_size=3, unique=True))
    nodes = []
    for base in node_names:
        node: dict[str, Any] = {"name": f"{base}.s{index}"}
        if draw(st.booleans()):
            node["endpoint"] = draw(endpoints())
        if draw(st.booleans()):
            node["internalIP"] = str(draw(addresses))
        if draw(st.booleans()):
            node["persistentKeepalive"] = draw(st.integers(1, 65535))
        node["labels"] = draw(label_maps)
        node["annotations"] = draw(annotation_maps)
        node["taints"] = draw(taints)
        nodes.append(node)
    pools = []
    for pool_name in draw(st.lists(dns_label, max_size=2, unique=True)):
        selector: dict[str, Any] = {}
        if draw(st.booleans()):
            selector["namePattern"] = draw(st.text(alphabet=LOWER + "*?-", min_size=1, max_size=12))
        if not selector or draw(st.booleans()):
            selector["matchLabels"] = draw(
                st.dictionaries(user_key, label_value, min_size=1, max_size=2)
            )
        pools.append(
            {
                "name": pool_name,
                "selector": selector,
                "labels": draw(label_maps),
                "annotations": draw(annotation_maps),
                "taints": draw(taints),
            }
        )
    names = [n["name"] for n in nodes]
    spec: dict[str, Any] = {
        "leader": draw(st.lists(st.sampled_from(names), unique=True, max_size=2)) if names else [],
        "allowedLocationIPs": draw(
            st.lists(
                networks_in(f"10.{index}.0.0/16") | networks_in(f"2001:db8:{index:x}::/48"),
                max_size=3,
            )
        ),
        "labels": draw(label_maps),
        "annotations": draw(annotation_maps),
        "taints": draw(taints),
        "nodes": nodes,
        "pools": pools,
        "routes": draw(st.lists(routes(), max_size=2, unique_by=_slot)),
        "lifecycle": {
            "deleteUnreachable": draw(st.booleans()),
            "after": draw(durations),
            "scope": draw(st.sampled_from(["pools", "all"])),
        },
    }
    if draw(st.booleans()):
        spec["persistentKeepalive"] = draw(st.integers(1, 65535))
    return {"apiVersion": t.API_VERSION, "kind": "Site", "metadata": {"name": name}, "spec": spec}


clusters = st.fixed_dictionaries(
    {"apiVersion": st.just(t.API_VERSION), "kind": st.just("Cluster")},
    optional={
        "metadata": st.fixed_dictionaries({"name": annotation_text}),
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "mesh": st.fixed_dictionaries(
                    {},
                    optional={
                        "granularity": st.sampled_from(["location", "full", "cross"]),
                        "port": port,
                    },
                ),
                "addresses": st.fixed_dictionaries(
                    {},
                    optional={
                        "externalIPTarget": st.none() | addresses.map(str),
                        "internalIPTarget": st.none() | addresses.map(str),
                    },
                ),
                "uninitializedTaint": st.sampled_from(["remove", "keep"]),
                "unassignedNodes": st.sampled_from(["ignore", "warn", "error"]),
                "lifecycle": st.fixed_dictionaries(
                    {},
                    optional={
                        "maxUnreachableFraction": st.floats(0, 1),
                        "maxDeletionsPerHour": st.integers(0, 1000),
                        "protect": st.fixed_dictionaries({"matchLabels": label_maps}),
                    },
                ),
                "routes": st.fixed_dictionaries(
                    {
                        "protocol": st.integers(1, 255).filter(
                            lambda p: p not in t.RESERVED_PROTOCOLS
                        )
                    }
                ),
            },
        ),
    },
)


@st.composite
def topologies(draw: st.DrawFn) -> tuple[t.Cluster | None, list[t.Site]]:
    names = draw(st.lists(dns_label, min_size=1, max_size=3, unique=True))
    site_models = [t.Site.model_validate(draw(sites(i, name))) for i, name in enumerate(names)]
    cluster = draw(st.none() | clusters)
    return (t.Cluster.model_validate(cluster) if cluster is not None else None), site_models


# --- helpers ---------------------------------------------------------------------------


def to_yaml(documents: list[dict[str, Any]]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump_all(documents, out)
    return out.getvalue()


def dumped(model: t.Cluster | t.Site, *, exclude_defaults: bool) -> dict[str, Any]:
    data = model.model_dump(mode="json", by_alias=True, exclude_defaults=exclude_defaults)
    # The header is required in files even though the models default it.
    return {"apiVersion": t.API_VERSION, "kind": model.kind, **data}


# --- properties ------------------------------------------------------------------------


@SETTINGS
@given(topology=topologies(), exclude_defaults=st.booleans(), one_file=st.booleans())
def test_dump_then_load_gives_the_same_topology(
    topology: tuple[t.Cluster | None, list[t.Site]], exclude_defaults: bool, one_file: bool
) -> None:
    cluster, site_models = topology
    models: list[t.Cluster | t.Site] = [*([cluster] if cluster else []), *site_models]
    documents = [dumped(m, exclude_defaults=exclude_defaults) for m in models]
    if one_file:
        files = [SourceFile("sites/all.yaml", to_yaml(documents).encode())]
    else:
        files = [
            SourceFile(f"sites/{i:02d}.yaml", to_yaml([d]).encode())
            for i, d in enumerate(documents)
        ]

    result = load(files)

    assert not [d for d in result.diagnostics if d.severity == "error"], result.diagnostics
    assert result.topology is not None
    assert result.topology.sites == tuple(site_models)
    assert result.topology.cluster == (cluster or t.Cluster())


@SETTINGS
@given(net=any_network, spelling=st.sampled_from(["plain", "upper", "exploded"]))
def test_canonical_cidr_is_idempotent(net: str, spelling: str) -> None:
    parsed = ipaddress.ip_network(net)
    text = {
        "plain": net,
        "upper": net.upper(),
        "exploded": parsed.exploded,
    }[spelling]
    once = canonical_cidr(text)
    assert canonical_cidr(once) == once
    assert ipaddress.ip_network(once) == parsed
    assert once == str(parsed)


@SETTINGS
@given(ip=addresses, suffix=st.booleans(), upper=st.booleans())
def test_host_cidr_and_ip_are_idempotent(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, suffix: bool, upper: bool
) -> None:
    text = str(ip) + (f"/{ip.max_prefixlen}" if suffix else "")
    text = text.upper() if upper else text
    host = host_cidr(text)
    assert host == f"{ip}/{ip.max_prefixlen}"  # /32 or /128, what Kilo reads
    assert host_cidr(host) == host
    plain = ip_address(str(ip).upper() if upper else str(ip))
    assert ip_address(plain) == plain == str(ip)


@SETTINGS
@given(endpoint=endpoints(), upper_ip6=st.booleans(), zeros=st.integers(0, 2))
def test_canonical_endpoint_is_idempotent(endpoint: str, upper_ip6: bool, zeros: int) -> None:
    text = endpoint.upper() if upper_ip6 and endpoint.startswith("[") else endpoint
    if ":" in text.rsplit("]", 1)[-1]:  # leading zeros in the port change nothing
        host, _, port_text = text.rpartition(":")
        text = f"{host}:{'0' * zeros}{port_text}"
    once = canonical_endpoint(text)
    assert canonical_endpoint(once) == once
    original, canonical = parse_endpoint(endpoint), parse_endpoint(once)
    assert (canonical.host, canonical.port, canonical.is_ip) == (
        original.host,
        original.port,
        original.is_ip,
    )
    rendered = canonical.render(51820)
    assert canonical_endpoint(rendered) == rendered


@SETTINGS
@given(text=durations)
def test_duration_is_idempotent(text: str) -> None:
    assert duration(duration(text)) == duration(text)


SAMPLE = (
    "apiVersion: topoctl.io/v1alpha1\nkind: Site\nmetadata:\n  name: edge\nspec:\n"
    "  persistentKeepalive: 25\n  allowedLocationIPs: [10.1.0.0/16]\n  nodes:\n"
    "    - name: gw\n      endpoint: '[2001:db8::1]:51820'\n      labels: {a: b}\n"
    "  routes:\n    - {to: 10.2.0.0/16, via: leader, on: non-leaders}\n"
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """The sample document with a few random edits: deletions and YAML-significant inserts."""
    text = SAMPLE
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
        else:
            piece = draw(st.text(alphabet="[]{}:,-?&*!|>'\"#%@` \t\n\\0aZ.~", max_size=4))
            text = text[:at] + piece + text[at:]
    return text.encode()


@settings(max_examples=examples(200), deadline=None)
@given(content=mutated() | st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_load_never_raises(content: bytes) -> None:
    result = load([SourceFile("sites/a.yaml", content)])
    for d in result.diagnostics:
        assert d.line >= 0 and d.col >= 0 and d.message
    assert result.ok == (result.topology is not None)
