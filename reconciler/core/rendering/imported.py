"""``topoctl import`` as text: the ``sites/*.yaml`` files (ruamel.yaml, with comments that
say where they came from and what to look at) and the report printed beside them.

Deterministic: the same nodes give the same bytes (no time stamps; sites, nodes and keys
in a fixed order), so an import can be diffed against the last one.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable, Sequence

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from reconciler.core.adoption.values import (
    Adoption,
    Carried,
    ImportedCluster,
    ImportedSite,
    Note,
    NoteKind,
    PoolGuess,
)
from reconciler.core.planning.plan import Change, Plan
from reconciler.model.topology import API_VERSION

SCHEMA_LINE = "yaml-language-server: $schema=../schema/topology.schema.json"
WIDTH = 88
CLUSTER_FILE = "cluster.yaml"


def site_file(site: str) -> str:
    """The file a site is written to."""
    return f"{site}.yaml"


def _dump(document: CommentedMap | CommentedSeq) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _comment_lines(lines: Iterable[str], indent: str = "") -> str:
    out = []
    for line in lines:
        wrapped = textwrap.wrap(line, WIDTH - len(indent) - 2, break_on_hyphens=False) or [""]
        out.append(f"{indent}# {wrapped[0]}".rstrip())
        out += [f"{indent}#   {more}" for more in wrapped[1:]]
    return "\n".join(out) + "\n" if out else ""


def _header(source: str, what: str, notes: Sequence[Note]) -> str:
    lines = [
        SCHEMA_LINE,
        f"{what}, written by `topoctl import` from {source}: what Kilo reads on the live "
        "nodes today. Review it, then `topoctl plan` shows what applying it would change.",
    ]
    if notes:
        lines += ["", "From the import:"]
        lines += [f"- {note.line()}" for note in notes]
    return _comment_lines(lines)


def cluster_text(cluster: ImportedCluster, source: str, notes: Sequence[Note]) -> str:
    """The Cluster document."""
    mesh = CommentedMap()
    mesh["granularity"] = cluster.granularity or "location"
    if cluster.subnet:
        mesh["subnet"] = cluster.subnet
    if cluster.granularity is None:
        mesh.yaml_add_eol_comment("Kilo wrote none on the nodes: its default", "granularity")
    spec = CommentedMap(mesh=mesh)
    doc = CommentedMap(apiVersion=API_VERSION, kind="Cluster")
    doc["metadata"] = CommentedMap(name=cluster.name)
    doc["spec"] = spec
    tail = _comment_lines(
        [
            "The other settings keep their defaults (docs/topology.md): the node agent's "
            "address detection and uninitialized taint, network ranges no route may enter, "
            "node lifecycle guard rails.",
        ]
    )
    return _header(source, "Cluster settings", notes) + _dump(doc) + tail


def _carried_into(target: CommentedMap, carried: Carried) -> None:
    if carried.labels:
        target["labels"] = CommentedMap(sorted(carried.labels.items()))
    if carried.annotations:
        target["annotations"] = CommentedMap(sorted(carried.annotations.items()))
    if carried.taints:
        taints = CommentedSeq()
        for taint in carried.taints:
            item = CommentedMap(key=taint.key)
            if taint.value:
                item["value"] = taint.value
            item["effect"] = taint.effect
            item.fa.set_flow_style()
            taints.append(item)
        target["taints"] = taints


def _pool(pool: PoolGuess) -> CommentedMap:
    selector = CommentedMap()
    if pool.match_labels:
        selector["matchLabels"] = CommentedMap(sorted(pool.match_labels.items()))
    selector["namePattern"] = pool.name_pattern
    out = CommentedMap(name=pool.name)
    out["selector"] = selector
    return out


def site_text(site: ImportedSite, source: str, notes: Sequence[Note]) -> str:
    """One Site document, with the pools it is not sure of as comments."""
    spec = CommentedMap()
    if site.leaders:
        leaders = CommentedSeq(site.leaders)
        leaders.fa.set_flow_style()
        spec["leader"] = leaders
    if site.keepalive is not None:
        spec["persistentKeepalive"] = site.keepalive
    if site.allowed_location_ips:
        spec["allowedLocationIPs"] = CommentedSeq(site.allowed_location_ips)
    _carried_into(spec, site.carried)
    nodes = CommentedSeq()
    for listed in site.nodes:
        entry = CommentedMap(name=listed.name)
        if listed.endpoint is not None:
            entry["endpoint"] = listed.endpoint
        if listed.internal_ip is not None:
            entry["internalIP"] = listed.internal_ip
        if listed.keepalive is not None:
            entry["persistentKeepalive"] = listed.keepalive
        _carried_into(entry, listed.carried)
        nodes.append(entry)
    if nodes:
        spec["nodes"] = nodes
    sure = [p for p in site.pools if p.sure]
    if sure:
        pools = CommentedSeq()
        for pool in sure:
            pools.append(_pool(pool))
        spec["pools"] = pools
    doc = CommentedMap(apiVersion=API_VERSION, kind="Site")
    doc["metadata"] = CommentedMap(name=site.name)
    doc["spec"] = spec
    head = _header(
        source, f"Kilo location {site.name} ({_count(len(site.members), 'node')})", notes
    )
    return head + _dump(doc) + _proposals(site.pools, bool(sure))


def _proposals(pools: Sequence[PoolGuess], after_pools: bool) -> str:
    """Pools the import is not sure of, as YAML to uncomment under spec."""
    unsure = [p for p in pools if not p.sure]
    if not unsure:
        return ""
    lines = ["Proposed pools (uncomment to use; members listed above keep their entries):"]
    if not after_pools:
        lines.append("pools:")
    for pool in unsure:
        body = _dump(CommentedSeq([_pool(pool)])).rstrip("\n").split("\n")
        body[0] += f"  # {pool.doubt} (now: {', '.join(pool.nodes)})"
        lines += body
    return "".join(f"  # {line}\n" for line in lines)


def files(adoption: Adoption, source: str) -> dict[str, str]:
    """Every file the import writes, by name: the cluster's, then one per site."""
    out = {CLUSTER_FILE: cluster_text(adoption.cluster, source, adoption.notes_of(None))}
    for site in adoption.sites:
        out[site_file(site.name)] = site_text(site, source, adoption.notes_of(site.name))
    return out


# --- the report --------------------------------------------------------------------------

_SECTIONS = (
    (NoteKind.LEFT_OUT, "Not imported (no site claims these nodes, so no plan touches them)"),
    (
        NoteKind.MISREAD,
        "Read by Kilo otherwise than the text seems to mean (imported as Kilo reads it)",
    ),
    (NoteKind.SPREAD, "Declared on more nodes than carry it today"),
    (NoteKind.TALOS, "Managed by Talos"),
    (NoteKind.CHOICE, "Cluster settings"),
)


def report(
    adoption: Adoption,
    written: Sequence[str],
    plan: Plan,
    visible: Sequence[Change],
    warnings: Sequence[str],
) -> str:
    """What the import did and what it could not carry over, for a terminal or a log."""
    out = [
        f"topoctl import: {_count(adoption.nodes, 'node')} read, "
        f"{_count(len(adoption.sites), 'site')}, {_count(len(adoption.left_out), 'node')} "
        "not imported",
    ]
    out += [f"  {path}" for path in written]
    for kind, title in _SECTIONS:
        notes = [n for n in adoption.notes if n.kind is kind]
        if notes:
            out += ["", f"{title}:"]
            out += [_bullet(n.line()) for n in notes]
    if warnings:
        out += ["", "validate warns about the imported topology:"]
        out += [_bullet(w) for w in warnings]
    out += ["", _verdict(plan, visible)]
    return "\n".join(out) + "\n"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _bullet(text: str) -> str:
    return textwrap.fill(
        text, WIDTH, initial_indent="  - ", subsequent_indent="    ", break_on_hyphens=False
    )


def _verdict(plan: Plan, visible: Sequence[Change]) -> str:
    from reconciler.core.rendering.plans import summary_line

    head = f"`topoctl plan` of these files against the same nodes: {summary_line(plan)}"
    if not visible:
        return textwrap.fill(
            head + " Nothing Kilo or Kubernetes reads changes: topoctl's own records "
            "(topoctl.io/owned, topoctl.io/agent) and rewrites Kilo reads the same way.",
            WIDTH,
        )
    lines = [textwrap.fill(head + " Read differently once applied (see the notes above):", WIDTH)]
    for change in visible:
        lines.append(f"  - {change.node}: {change.verb} {change.key} ({_values(change)})")
    return "\n".join(lines)


def _values(change: Change) -> str:
    return f"{change.before!r} -> {change.after!r}"
