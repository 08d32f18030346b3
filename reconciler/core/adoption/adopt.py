"""Live nodes -> the sites and cluster settings that declare what Kilo reads on them.

A site per Kilo location (the ``kilo.squat.ai/location`` annotation, else Kilo's fallback,
the ``topology.kubernetes.io/region`` label) whose name is a DNS-1123 label; its members
with the values Kilo reads (:mod:`.readings`); pinned leaders (Kilo reads the key's
presence); the keepalive on the site when every member has the same; the location's
allowed IPs (Kilo routes the union over the location's nodes); pools guessed from names
and instance types (:mod:`.pools`); what topoctl's ownership record says it set; and
notes on everything left out, read otherwise than it seems, or managed by Talos.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from reconciler.core.adoption.pools import guess_pools
from reconciler.core.adoption.readings import NodeKilo, read_node, refusal, site_name_refusal
from reconciler.core.adoption.values import (
    Adoption,
    Carried,
    ImportedCluster,
    ImportedSite,
    ListedNode,
    Note,
    NoteKind,
)
from reconciler.core.kilo.freshness import reference
from reconciler.core.kilo.leader import PER_NODE
from reconciler.core.kilo.node import go_cidr, kilo_location, kilo_node
from reconciler.core.loading.rules import overlap_message
from reconciler.core.planning.owned import owned_record
from reconciler.model import keys
from reconciler.model.names import annotation_key, annotation_value, label_key, label_value
from reconciler.model.state import NodeState

GRANULARITIES = ("location", "full", "cross")
_TALOS_KINDS = (("label", "labels"), ("annotation", "annotations"), ("taint", "taints"))


def adopt(nodes: Iterable[NodeState], cluster_name: str, now: int | None = None) -> Adoption:
    """The import of these live nodes, Kilo's freshness judged at ``now`` (None: the
    nodes' median check-in), as a plan judges it."""
    nodes = sorted(nodes, key=lambda n: n.name.encode())
    notes: list[Note] = []
    cluster = _cluster(nodes, cluster_name, notes)
    by_location: dict[str, list[NodeState]] = {}
    for node in nodes:
        by_location.setdefault(kilo_location(node), []).append(node)
    reads: dict[str, list[tuple[NodeState, NodeKilo]]] = {}
    for location, located in sorted(by_location.items()):
        if not _valid_location(location, located, notes):
            continue
        for node in located:
            read, about = read_node(node, location)
            notes += about
            if read is not None:
                reads.setdefault(location, []).append((node, read))
    _overlaps(reads, notes)
    at = reference(nodes, now).at
    sites = []
    for location, members in sorted(reads.items()):
        site = _site(location, members, nodes, cluster.granularity, at, notes)
        if site is not None:
            sites.append(site)
    imported = {m for s in sites for m in s.members}
    left_out = tuple(n.name for n in nodes if n.name not in imported)
    notes += _talos(nodes, imported)
    return Adoption(cluster, tuple(sites), tuple(notes), len(nodes), left_out)


# --- the Cluster document --------------------------------------------------------------


def _cluster(nodes: Sequence[NodeState], name: str, notes: list[Note]) -> ImportedCluster:
    """Kilo's --mesh-granularity, which it writes on every node, and its --subnet, which
    the WireGuard addresses it writes (``wireguard-ip``) fall in."""
    written = Counter(
        n.annotations[keys.KILO_GRANULARITY]
        for n in nodes
        if keys.KILO_GRANULARITY in n.annotations
    )
    granularity = None
    if written:
        value, _ = written.most_common(1)[0]
        if len(written) > 1:
            seen = ", ".join(f"{v!r} on {c}" for v, c in sorted(written.items()))
            notes.append(
                Note(
                    NoteKind.CHOICE,
                    None,
                    (),
                    f"{keys.KILO_GRANULARITY} differs between nodes ({seen}): Kilo's agents do "
                    f"not all run with the same --mesh-granularity; imported {value!r}",
                    "run Kilo with one granularity, then set mesh.granularity to it",
                )
            )
        if value in GRANULARITIES:
            granularity = value
        else:
            notes.append(
                Note(
                    NoteKind.CHOICE,
                    None,
                    (),
                    f"{keys.KILO_GRANULARITY}: {value!r} is none of {', '.join(GRANULARITIES)}; "
                    "mesh.granularity left at its default (location)",
                    "set mesh.granularity to what Kilo runs with",
                )
            )
    networks = Counter(
        str(interface.network)
        for n in nodes
        if (interface := go_cidr(n.annotations.get(keys.KILO_WIREGUARD_IP, ""))) is not None
    )
    subnet = None
    if len(networks) == 1:
        (only,) = networks
        subnet = only if only != keys.KILO_DEFAULT_SUBNET else None
    elif networks:
        notes.append(
            Note(
                NoteKind.CHOICE,
                None,
                (),
                f"the WireGuard addresses Kilo wrote fall in several networks "
                f"({', '.join(sorted(networks))}); mesh.subnet left at its default",
                "set mesh.subnet to Kilo's --subnet",
            )
        )
    return ImportedCluster(name, granularity, subnet)


# --- sites -----------------------------------------------------------------------------


def _valid_location(location: str, located: Sequence[NodeState], notes: list[Note]) -> bool:
    names = tuple(n.name for n in located)
    if location == "":
        notes.append(
            Note(
                NoteKind.LEFT_OUT,
                None,
                names,
                f"{_nodes_have(names)} no Kilo location (no {keys.KILO_LOCATION}, no "
                "topology.kubernetes.io/region label, or an empty annotation): Kilo groups "
                f"them in one unnamed location; not imported ({_some(names)})",
                f"to adopt them, name their location (kubectl annotate node {_listed(names)} "
                f"{keys.KILO_LOCATION}=<site> - Kilo then rebuilds their tunnels) and import "
                "again",
            )
        )
        return False
    why = site_name_refusal(location)
    if why is None:
        return True
    notes.append(
        Note(
            NoteKind.LEFT_OUT,
            None,
            names,
            f"Kilo location {location!r} cannot be a site's name: {why}; its nodes are not "
            f"imported ({_some(names)})",
            f"rename the location on its nodes (kubectl annotate node {_listed(names)} "
            f"{keys.KILO_LOCATION}=<name> --overwrite - Kilo rebuilds the location's tunnels) "
            "and import again",
        )
    )
    return False


def _overlaps(reads: dict[str, list[tuple[NodeState, NodeKilo]]], notes: list[Note]) -> None:
    """Allowed IPs that overlap another location's: ``validate`` refuses them (Kilo drops
    one by sort order), so the later location's nodes carrying them are left out."""
    claimed: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = []
    for location in sorted(reads):
        members = reads[location]
        mine = {cidr for _, read in members for cidr in read.allowed}
        clashes = {}
        for cidr in mine:
            net = ipaddress.ip_network(cidr)
            for other, site in claimed:
                if net.version == other.version and net.overlaps(other):
                    clashes[cidr] = overlap_message(cidr, str(other), site)
        for node, read in list(members):
            found = [clashes[c] for c in read.allowed if c in clashes]
            if found:
                members.remove((node, read))
                notes.append(
                    Note(
                        NoteKind.LEFT_OUT,
                        location,
                        (node.name,),
                        f"{keys.KILO_ALLOWED_LOCATION_IPS} on {node.name}: {found[0]}; "
                        "not imported",
                        "keep one location's claim, fix the annotation, and import again",
                    )
                )
        claimed += [
            (ipaddress.ip_network(c), location) for _, read in members for c in read.allowed
        ]


def _site(
    name: str,
    members: Sequence[tuple[NodeState, NodeKilo]],
    everyone: Sequence[NodeState],
    granularity: str | None,
    reference: int | None,
    notes: list[Note],
) -> ImportedSite | None:
    members = list(members)
    leaders = [read.name for _, read in members if read.leader]
    anchor = None
    if granularity in PER_NODE:
        anchor, members = _one_carrier(name, members, leaders, notes)
        leaders = [read.name for _, read in members if read.leader]
    if not members:
        return None
    reads = [read for _, read in members]
    keepalives = {read.keepalive for read in reads}
    site_keepalive = keepalives.pop() if len(keepalives) == 1 else None
    allowed = _union(reads)
    if allowed and granularity not in PER_NODE:
        _spread_note(name, members, allowed, reference, notes)
    carried = {read.name: _carried(node) for node, read in members}
    common = _common(list(carried.values()))
    pools = guess_pools([node for node, _ in members], everyone)
    pooled = {n for pool in pools if pool.sure for n in pool.nodes}
    listed = []
    for _, read in members:
        own_keepalive = read.keepalive if site_keepalive is None else None
        extra = _minus(carried[read.name], common)
        needs_name = (
            read.name not in pooled
            or read.leader
            or read.endpoint
            or read.internal_ip
            or own_keepalive is not None
            or read.name == anchor
            or extra
        )
        if needs_name:
            listed.append(
                ListedNode(read.name, read.endpoint, read.internal_ip, own_keepalive, extra)
            )
    if anchor is not None:  # the first listed node (or leader) carries the allowed IPs
        listed.sort(key=lambda n: n.name != anchor)
        leaders.sort(key=lambda n: n != anchor)
    return ImportedSite(
        name=name,
        members=tuple(read.name for read in reads),
        nodes=tuple(listed),
        leaders=tuple(leaders),
        keepalive=site_keepalive,
        allowed_location_ips=allowed,
        pools=tuple(pools),
        carried=common,
    )


def _union(reads: Sequence[NodeKilo]) -> tuple[str, ...]:
    """The location's allowed IPs as Kilo gathers them: its nodes by name, each node's in
    order, each CIDR once (pkg/mesh/topology.go)."""
    out: dict[str, None] = {}
    for read in sorted(reads, key=lambda r: r.name.encode()):
        out.update(dict.fromkeys(read.allowed))
    return tuple(out)


def _spread_note(
    site: str,
    members: Sequence[tuple[NodeState, NodeKilo]],
    allowed: tuple[str, ...],
    reference: int | None,
    notes: list[Note],
) -> None:
    """Under ``location`` granularity Kilo routes the union of the location's Ready nodes'
    allowed IPs; the site puts it on every member, so that losing one loses none."""
    others = [read.name for _, read in members if read.allowed != allowed]
    if not others:
        return
    carriers = [node for node, read in members if read.allowed]
    ready = [n.name for n in carriers if kilo_node(n, reference).ready]
    today = (
        "Kilo routes them for the location through any Ready node that carries them, so "
        "this changes nothing it routes"
        if ready
        else "no node carrying them is Ready for Kilo, so Kilo routes none of them today: "
        "once the plan is applied it will"
    )
    notes.append(
        Note(
            NoteKind.SPREAD,
            site,
            tuple(others),
            f"{keys.KILO_ALLOWED_LOCATION_IPS} ({','.join(allowed)}) is not on every member "
            f"as it is: the site declares it on all of them, and the plan sets it on "
            f"{_some(others)}; {today}",
        )
    )


def _one_carrier(
    site: str,
    members: list[tuple[NodeState, NodeKilo]],
    leaders: list[str],
    notes: list[Note],
) -> tuple[str | None, list[tuple[NodeState, NodeKilo]]]:
    """Under ``full``/``cross`` granularity every node is a segment of its own and a site's
    allowed IPs go on one member (the first pinned leader, else the first listed node):
    the first carrier that can be that member stays, other carriers are left out."""
    carriers = [read for _, read in members if read.allowed]
    anchor = next((r.name for r in carriers if r.leader or not leaders), None)
    dropped = {r.name for r in carriers if r.name != anchor}
    for name in sorted(dropped):
        why = (
            f"another member ({anchor}) carries the site's allowed IPs"
            if anchor
            else "the site's first pinned leader would carry them instead"
        )
        notes.append(
            Note(
                NoteKind.LEFT_OUT,
                site,
                (name,),
                f"{keys.KILO_ALLOWED_LOCATION_IPS} on {name}: every node is a segment of its "
                f"own under this granularity and a site declares allowed IPs on one member, "
                f"but {why}; not imported",
                "put them on one node only (a pinned leader, if the location has any) and "
                "import again",
            )
        )
    return anchor, [(n, r) for n, r in members if r.name not in dropped]


# --- what topoctl set, and what Talos manages --------------------------------------------


def _carried(node: NodeState) -> Carried:
    """The labels, annotations and taints topoctl's ownership record says it set (and that
    Talos does not manage), as they are on the node."""
    record = owned_record(node.annotations)
    talos = {kind: node.talos_owned(kind) for kind, _ in _TALOS_KINDS}
    labels = {
        k: node.labels[k]
        for k in sorted(record["labels"])
        if k in node.labels and k not in talos["label"] and _fits(k, node.labels[k], "label")
    }
    annotations = {
        k: node.annotations[k]
        for k in sorted(record["annotations"])
        if k in node.annotations
        and not k.startswith((keys.KILO, keys.TOPOCTL))
        and k not in talos["annotation"]
        and _fits(k, node.annotations[k], "annotation")
    }
    live = {t.ident: t for t in node.taints}
    taints = tuple(
        live[i]
        for i in sorted(record["taints"])
        if i in live
        and live[i].key not in talos["taint"]
        and _fits(live[i].key, live[i].value, "label")
    )
    return Carried(labels, annotations, taints)


def _fits(key: str, value: str, kind: str) -> bool:
    rules = (label_key, label_value) if kind == "label" else (annotation_key, annotation_value)
    return refusal(rules[0], key) is None and refusal(rules[1], value) is None


def _common(every: Sequence[Carried]) -> Carried:
    """What every member carries alike: declared once on the site."""
    if not every:
        return Carried()
    labels = _shared([c.labels for c in every])
    annotations = _shared([c.annotations for c in every])
    taints = tuple(t for t in every[0].taints if all(t in c.taints for c in every[1:]))
    return Carried(labels, annotations, taints)


def _shared(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    first, rest = maps[0], maps[1:]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def _minus(mine: Carried, common: Carried) -> Carried:
    return Carried(
        {k: v for k, v in mine.labels.items() if k not in common.labels},
        {k: v for k, v in mine.annotations.items() if k not in common.annotations},
        tuple(t for t in mine.taints if t not in common.taints),
    )


def _talos(nodes: Sequence[NodeState], imported: set[str]) -> list[Note]:
    """A note per key Talos manages on imported nodes: Kilo keys are imported as they are
    (git must agree with the machine config), the rest are left to Talos."""
    found: dict[tuple[str, str], list[str]] = {}
    for node in nodes:
        if node.name not in imported:
            continue
        for kind, _ in _TALOS_KINDS:
            for key in sorted(node.talos_owned(kind)):
                found.setdefault((kind, key), []).append(node.name)
    out = []
    for (kind, key), names in sorted(found.items()):
        if kind == "annotation" and key in keys.KILO_USER_KEYS:
            text = (
                f"Talos manages annotation {key} on {_some(names)} (its machine config): "
                "imported as Kilo reads it"
            )
            fix = (
                "change it in the machine config as well as in git (`topoctl render talos` "
                "prints the patch); a value git changes alone is a reported conflict"
            )
        else:
            text = f"Talos manages {kind} {key} on {_some(names)}: left to Talos, not imported"
            fix = ""
        out.append(Note(NoteKind.TALOS, None, tuple(names), text, fix))
    return out


def _nodes_have(names: Sequence[str]) -> str:
    return f"{len(names)} nodes have" if len(names) != 1 else "1 node has"


def _listed(names: Sequence[str], shown: int = 5) -> str:
    """Node names as a command line takes them (the first few, then "...")."""
    return " ".join(names[:shown]) + (" ..." if len(names) > shown else "")


def _some(names: Sequence[str], shown: int = 5) -> str:
    listed = list(names[:shown])
    rest = len(names) - len(listed)
    return ", ".join(listed) + (f" and {rest} more" if rest else "")
