"""Rules across fields, documents and files (docs/topology.md "Validation"), and warnings."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

from reconciler.core.kilo.node import is_public
from reconciler.core.loading.yamldoc import YamlDocument
from reconciler.model import routerules
from reconciler.model import topology as t
from reconciler.model.addresses import parse_endpoint
from reconciler.model.diagnostics import Diagnostic
from reconciler.model.names import MAX_ANNOTATIONS_BYTES, annotations_bytes
from reconciler.model.route import Route

Located = tuple[t.Site, YamlDocument]


def check(
    clusters: Sequence[tuple[t.Cluster, YamlDocument]], sites: Sequence[Located]
) -> list[Diagnostic]:
    """Every cross-document error and warning, in no particular order."""
    found: list[Diagnostic] = []
    found += _one_cluster(clusters)
    found += _unique_sites(sites)
    found += _unique_nodes(sites)
    found += _allowed_ips_disjoint(sites)
    for site, doc in sites:
        found += _site_rules(site, doc)
        found += _routes_sharing_a_slot(site, doc)
        found += _site_warnings(site, doc)
        found += _merged_annotations(site, doc)
        found += _lifecycle_reaches_gateways(site, doc)
    found += _routes_kilo_already_routes(sites)
    found += _routes_into_protected_ranges(clusters[0][0] if clusters else t.Cluster(), sites)
    return found


def _where(doc: YamlDocument) -> str:
    line, _ = doc.positions.at(())
    return f"{doc.file}:{line}"


def _one_cluster(clusters: Sequence[tuple[t.Cluster, YamlDocument]]) -> Iterator[Diagnostic]:
    if len(clusters) > 1:
        first = clusters[0][1]
        for _, doc in clusters[1:]:
            yield doc.diagnostic(
                ("kind",),
                f"a second Cluster document (the first is at {_where(first)}): keep one",
                "cluster-unique",
            )


def _unique_sites(sites: Sequence[Located]) -> Iterator[Diagnostic]:
    seen: dict[str, YamlDocument] = {}
    for site, doc in sites:
        if site.name in seen:
            yield doc.diagnostic(
                ("metadata", "name"),
                f"site {site.name!r} is defined twice "
                f"(also at {_where(seen[site.name])}): site names are Kilo "
                "locations and must be unique",
                "site-unique",
            )
        else:
            seen[site.name] = doc


def _unique_nodes(sites: Sequence[Located]) -> Iterator[Diagnostic]:
    owner: dict[str, tuple[str, YamlDocument]] = {}
    for site, doc in sites:
        in_site: set[str] = set()
        for i, node in enumerate(site.spec.nodes):
            path = ("spec", "nodes", i, "name")
            if node.name in in_site:
                yield doc.diagnostic(
                    path, f"node {node.name!r} is listed twice in this site", "node-unique"
                )
            elif node.name in owner and owner[node.name][0] != site.name:
                other, other_doc = owner[node.name]
                yield doc.diagnostic(
                    path,
                    f"node {node.name!r} is also listed in site "
                    f"{other!r} ({_where(other_doc)}): a node belongs to one "
                    "location",
                    "node-unique",
                )
            in_site.add(node.name)
            owner.setdefault(node.name, (site.name, doc))


def _allowed_ips_disjoint(sites: Sequence[Located]) -> Iterator[Diagnostic]:
    claimed: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    for site, doc in sites:
        for i, cidr in enumerate(site.spec.allowed_location_ips):
            net = ipaddress.ip_network(cidr)
            for other_net, other_site in claimed:
                if (
                    other_site != site.name
                    and net.version == other_net.version
                    and net.overlaps(other_net)
                ):
                    yield doc.diagnostic(
                        ("spec", "allowedLocationIPs", i),
                        f"{cidr} overlaps "
                        f"{other_net} of site {other_site!r}: Kilo would drop "
                        "one of them by sort order",
                        "allowed-ips-overlap",
                    )
        claimed += [(ipaddress.ip_network(c), site.name) for c in site.spec.allowed_location_ips]


def _site_rules(site: t.Site, doc: YamlDocument) -> Iterator[Diagnostic]:
    names = {node.name for node in site.spec.nodes}
    for i, leader in enumerate(site.spec.leader):
        if leader not in names:
            yield doc.diagnostic(
                ("spec", "leader", i),
                f"leader {leader!r} is not listed in "
                "this site's nodes - add it under nodes (with its endpoint)",
                "leader-unknown",
            )
    pools: set[str] = set()
    for i, pool in enumerate(site.spec.pools):
        if pool.name in pools:
            yield doc.diagnostic(
                ("spec", "pools", i, "name"),
                f"pool {pool.name!r} is defined twice in this site",
                "pool-unique",
            )
        pools.add(pool.name)


def _merged_annotations(site: t.Site, doc: YamlDocument) -> Iterator[Diagnostic]:
    """A member node gets the site's annotations merged with its own (or its pool's)."""
    spec = site.spec
    members = [("nodes", i, n.annotations) for i, n in enumerate(spec.nodes)]
    members += [("pools", i, p.annotations) for i, p in enumerate(spec.pools)]
    for kind, i, own in members:
        size = annotations_bytes({**spec.annotations, **own})
        if own and size > MAX_ANNOTATIONS_BYTES:
            yield doc.diagnostic(
                ("spec", kind, i, "annotations"),
                f"with the site's annotations, these hold {size} bytes of keys and values; "
                f"Kubernetes refuses a node whose annotations exceed {MAX_ANNOTATIONS_BYTES} "
                "bytes (256 KiB)",
                "annotations-size",
                key=True,
            )


def _site_warnings(site: t.Site, doc: YamlDocument) -> Iterator[Diagnostic]:
    spec = site.spec
    reachable = False
    for i, node in enumerate(spec.nodes):
        if node.endpoint is None:
            continue
        endpoint = parse_endpoint(node.endpoint)
        if not endpoint.is_ip:
            yield doc.diagnostic(
                ("spec", "nodes", i, "endpoint"),
                f"{node.endpoint!r} is a DNS "
                "name: if it ever fails to resolve, Kilo stops updating the "
                "whole mesh on every node - prefer an IP address",
                "dns-endpoint",
                warning=True,
            )
        reachable = reachable or not endpoint.is_ip or is_public(endpoint.host)
    keepalive = spec.persistent_keepalive is not None or any(
        n.persistent_keepalive is not None for n in spec.nodes
    )
    if not reachable and not keepalive:
        yield doc.diagnostic(
            ("metadata", "name"),
            f"site {site.name!r} has no node with a "
            "public endpoint and no persistentKeepalive: if it is behind NAT, "
            "no other location can open a tunnel to it - set "
            "persistentKeepalive (e.g. 25) or a public endpoint",
            "nat-unreachable",
            warning=True,
        )
    candidates = sorted(set(spec.leader), key=lambda n: n.encode())
    if len(candidates) > 1:
        first = candidates[0]
        yield doc.diagnostic(
            ("spec", "leader"),
            f"{len(candidates)} leader candidates: Kilo "
            f"picks the first Ready one by name ({first!r} while it is up)",
            "many-leaders",
            warning=True,
        )


def _lifecycle_reaches_gateways(site: t.Site, doc: YamlDocument) -> Iterator[Diagnostic]:
    """``scope: all`` lets deletion reach named nodes; the gateways and leader candidates
    among them are kept only while they are protected, so say which ones they are."""
    policy = site.spec.lifecycle
    if not policy.delete_unreachable or policy.scope != "all":
        return
    exposed = [
        n.name for n in site.spec.nodes if n.endpoint is not None or n.name in site.spec.leader
    ]
    if not exposed:
        return
    yield doc.diagnostic(
        ("spec", "lifecycle", "scope"),
        f"scope 'all' lets dead-node deletion reach this site's named gateway and leader "
        f"nodes ({', '.join(exposed[:5])}{', ...' if len(exposed) > 5 else ''}): the "
        "predicted Kilo leader and pinned candidates are kept, a gateway that is neither "
        "is not - use scope 'pools' unless named nodes are disposable too",
        "lifecycle-scope-all",
        warning=True,
    )


def _routes_kilo_already_routes(sites: Sequence[Located]) -> Iterator[Diagnostic]:
    routed = [
        (ipaddress.ip_network(cidr), cidr, site.name)
        for site, _ in sites
        for cidr in site.spec.allowed_location_ips
    ]
    for site, doc in sites:
        for i, route in enumerate(site.spec.routes):
            dst = ipaddress.ip_network(route.to)
            for net, cidr, other in routed:
                if other != site.name and net.version == dst.version and net.overlaps(dst):
                    yield doc.diagnostic(
                        ("spec", "routes", i, "to"),
                        f"{route.to} overlaps {cidr}, which Kilo already routes to site "
                        f"{other!r} (its allowedLocationIPs)",
                        "route-kilo-overlap",
                        warning=True,
                    )


def _routes_into_protected_ranges(
    cluster: t.Cluster, sites: Sequence[Located]
) -> Iterator[Diagnostic]:
    """Routes the node agent would refuse, as far as the Cluster document knows its ranges
    (the agent's own flags may name more)."""
    spec = cluster.spec
    named = (
        ((spec.mesh.subnet,), "Kilo's WireGuard subnet (the Cluster's mesh.subnet)"),
        (spec.network.pod_cidrs, "the cluster's pod CIDR (the Cluster's network.podCIDRs)"),
        (spec.network.service_cidrs, "the cluster's service CIDR (network.serviceCIDRs)"),
    )
    protected = [
        routerules.ProtectedRange(ipaddress.ip_network(cidr, strict=False), what)
        for cidrs, what in named
        for cidr in cidrs
    ]
    for site, doc in sites:
        for i, route in enumerate(site.spec.routes):
            why = routerules.never_routed(ipaddress.ip_network(route.to), protected)
            if why is not None:
                yield doc.diagnostic(
                    ("spec", "routes", i, "to"),
                    f"{route.to} lies {why}: the node agent refuses such a route, and every "
                    "other route of the node with it",
                    "route-protected",
                )


def _routes_sharing_a_slot(site: t.Site, doc: YamlDocument) -> Iterator[Diagnostic]:
    """Two routes for one kernel slot on one node: the agent could keep neither."""
    seen: dict[tuple[int, str, int], list[tuple[int, Route]]] = {}
    for i, route in enumerate(site.spec.routes):
        slot = routerules.slot(route.to, route.table_id, route.metric)
        for j, other in seen.get(slot, ()):
            if _route_holders(route) & _route_holders(other):
                line, _ = doc.positions.at(("spec", "routes", j))
                table, dst, metric = slot
                written = {route.metric, other.metric}
                same = " (IPv6 metric 0 is 1024)" if written != {metric} else ""
                yield doc.diagnostic(
                    ("spec", "routes", i, "to"),
                    f"spec.routes[{j}] (line {line}) already holds this slot: {dst} in table "
                    f"{table} with metric {metric}{same}. A node keeps one route per slot: "
                    "merge the two, or give this one another metric or table",
                    "route-slot",
                )
                break
        seen.setdefault(slot, []).append((i, route))


def _route_holders(route: Route) -> frozenset[str]:
    """Which of a site's nodes get the route: the leader, the others, or both."""
    if route.on != "all":
        return frozenset({route.on})
    if route.via == "leader":
        return frozenset({"non-leaders"})  # the leader does not route via itself
    return frozenset({"leader", "non-leaders"})
