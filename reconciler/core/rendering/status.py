"""``topoctl status`` for people: the controller's status document as a few lines and a
table of sites. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def status_text(doc: Mapping[str, Any]) -> str:
    """``topoctl status`` for people."""
    lines = [
        f"revision:  {doc.get('revision') or '(none applied)'}"
        + (f"  applied {doc['appliedAt']}" if doc.get("appliedAt") else "")
    ]
    refused = doc.get("refused")
    if refused:
        errors = (refused.get("errors") or {}).get("items") or []
        lines.append(f"refused:   {refused.get('revision')} at {refused.get('at', '?')}")
        lines += [f"           {e}" for e in errors[:5]]
    failed = (doc.get("lifecycle") or {}).get("lastError")
    if failed:
        lines.append(f"lifecycle: failing since {doc['lifecycle'].get('at', '?')}: {failed}")
    cluster = doc.get("cluster") or {}
    unassigned = (cluster.get("unassigned") or {}).get("count", 0)
    lines.append(f"nodes:     {cluster.get('nodes', 0)} ({unassigned} claimed by no site)")
    header = ("site", "members", "pending", "leader", "predicted", "conflicts", "agents ready")
    rows = [header]
    for name, site in sorted((doc.get("sites") or {}).items()):
        agents = site.get("agents") or {}
        members = (site.get("members") or {}).get("count", 0)
        rows.append(
            (
                name,
                str(members),
                str((site.get("pending") or {}).get("count", 0)),
                (site.get("leader") or {}).get("current") or "-",
                (site.get("leader") or {}).get("predicted")
                or ("unknown" if (site.get("leader") or {}).get("unknown") else "-"),
                str((site.get("conflicts") or {}).get("count", 0)),
                f"{agents.get('ready', 0)}/{members}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines.append("")
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    for name, site in sorted((doc.get("sites") or {}).items()):
        leader = site.get("leader") or {}
        if leader.get("unknown"):
            lines.append(f"{name}: leader unknown: {leader['unknown']}")
            lines += [f"  {n}" for n in (leader.get("notReady") or {}).get("items") or []]
            if leader.get("held"):
                lines.append(f"  routes via the leader stand as last published: {leader['held']}")
        if site.get("lastError"):
            lines.append(f"{name}: last error: {site['lastError']}")
        for line in ((site.get("flapping") or {}).get("items") or [])[:5]:
            lines.append(f"{name}: another writer keeps changing {line}")
    return "\n".join(lines)
