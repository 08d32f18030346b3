"""A :class:`~reconciler.core.rendering.mesh.Picture` of the mesh as Mermaid (GitHub and
GitLab render it in a comment) or Graphviz DOT. Each location is a subgraph labelled with
its name and allowed-location-ips; the leader has a thick border, a node the plan writes
is amber, a leader change is red; tunnels are links between leaders (or segments)."""

from __future__ import annotations

import hashlib
import re

from reconciler.core.rendering.mesh import Box, Location, Picture

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
CHANGED, LEADER_CHANGE = "#fff3cd", "#f8d7da"


def _id(prefix: str, key: str) -> str:
    """An identifier both languages take, unique per key (a hash against collisions)."""
    digest = hashlib.sha1(key.encode()).hexdigest()[:6]
    return f"{prefix}_{_UNSAFE.sub('_', key)[:40]}_{digest}"


def _location_label(loc: Location) -> str:
    parts = [loc.name]
    if loc.allowed_ips:
        parts.append(", ".join(loc.allowed_ips))
    if loc.leader_changes:
        parts.append(f"leader {loc.leader_now or 'none'} → {loc.leader or 'none'}")
    if loc.leader_live is not None and loc.leader_live != loc.leader_now:
        parts.append(f"live leader {loc.leader_live}")
    return " · ".join(parts)


def _mermaid_text(text: str) -> str:
    """A label inside double quotes: quotes and markup characters as entities."""
    return (
        text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def mermaid(mesh: Picture) -> str:
    """A Mermaid flowchart of the mesh."""
    out = ["flowchart LR"]
    classes: dict[str, list[str]] = {"leader": [], "changed": [], "leaderchange": []}
    for loc in mesh.locations:
        sid = _id("s", loc.name)
        out.append(f'  subgraph {sid}["{_mermaid_text(_location_label(loc))}"]')
        for box in loc.boxes:
            bid = _id("n", box.key)
            shape = ('(["', '"])') if box.leader else ('["', '"]')
            out.append(f"    {bid}{shape[0]}{_mermaid_text(box.label)}{shape[1]}")
            for name, on in (
                ("leader", box.leader),
                ("changed", box.changed and not box.leader_change),
                ("leaderchange", box.leader_change),
            ):
                if on:
                    classes[name].append(bid)
        out.append("  end")
    for a, b in mesh.tunnels:
        out.append(f"  {_id('n', a)} <--> {_id('n', b)}")
    if mesh.hub:
        hub = _id("hub", mesh.cluster)
        out.append(f'  {hub}(("{_mermaid_text(mesh.hub)}"))')
        out += [f"  {hub} <--> {_id('n', key)}" for key in mesh.hub_ends]
    out += [
        "  classDef leader stroke-width:3px",
        f"  classDef changed fill:{CHANGED},stroke:#d39e00",
        f"  classDef leaderchange fill:{LEADER_CHANGE},stroke:#d00,stroke-width:3px,color:#900",
    ]
    out += [f"  class {','.join(ids)} {name}" for name, ids in classes.items() if ids]
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_box(box: Box) -> str:
    attrs = [f"label={_dot_text(box.label)}"]
    if box.leader:
        attrs.append("penwidth=3")
    if box.leader_change:
        attrs += [
            "color=red",
            "fontcolor=red",
            f'fillcolor="{LEADER_CHANGE}"',
            'style="rounded,filled"',
        ]
    elif box.changed:
        attrs += [f'fillcolor="{CHANGED}"', 'style="rounded,filled"']
    return f"    {_id('n', box.key)} [{', '.join(attrs)}];"


def dot(mesh: Picture) -> str:
    """A Graphviz graph of the mesh (``dot -Tsvg``)."""
    out = [
        f"graph {_dot_text('mesh ' + mesh.cluster)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style=rounded, fontname="Helvetica"];',
        f"  label={_dot_text(f'{mesh.cluster}: Kilo mesh, granularity {mesh.granularity}')};",
    ]
    for loc in mesh.locations:
        out.append(f"  subgraph {_id('cluster', loc.name)} {{")
        out.append(f"    label={_dot_text(_location_label(loc))};")
        if loc.leader_changes:
            out.append("    color=red;")
        out += [_dot_box(box) for box in loc.boxes]
        out.append("  }")
    for a, b in mesh.tunnels:
        out.append(f"  {_id('n', a)} -- {_id('n', b)};")
    if mesh.hub:
        hub = _id("hub", mesh.cluster)
        out.append(f"  {hub} [shape=ellipse, label={_dot_text(mesh.hub)}];")
        out += [f"  {hub} -- {_id('n', key)};" for key in mesh.hub_ends]
    out.append("}")
    return "\n".join(out) + "\n"
