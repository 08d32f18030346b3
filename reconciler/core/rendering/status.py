"""``topoctl status`` for people: the controller's status document as a few lines and a
table of sites. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _scope(scope: str) -> str:
    return "the whole cluster" if scope == "*" else f"site {scope}"


def _hold(hold: Mapping[str, Any]) -> str:
    why = f": {hold['reason']}" if hold.get("reason") else ""
    return f"by {hold.get('by') or '?'} at {hold.get('at') or '?'}{why}"


def suspension_lines(doc: Mapping[str, Any]) -> list[str]:
    """What is suspended, as the controller enforces it and as it is recorded (the two
    differ for the two seconds before the controller looks)."""
    enforced: Mapping[str, Any] = doc.get("suspended") or {}
    recorded: Mapping[str, Any] = doc.get("suspendRecorded") or {}
    lines = []
    drift = doc.get("driftNodes", 0)
    for scope, hold in sorted(enforced.items()):
        lines.append(
            f"SUSPENDED: {_scope(scope)} {_hold(hold)} - nothing is written there"
            + (
                " (resume recorded, not seen by the controller yet)"
                if scope not in recorded
                else ""
            )
        )
    if enforced:
        lines.append(f"           {drift} node(s) drift from git, unwritten (topoctl resume)")
    for scope, hold in sorted(recorded.items()):
        if scope not in enforced:
            lines.append(
                f"suspend recorded: {_scope(scope)} {_hold(hold)} (not seen by the controller yet)"
            )
    return lines


def status_text(doc: Mapping[str, Any]) -> str:
    """``topoctl status`` for people."""
    lines = [*suspension_lines(doc)]
    lines.append(
        f"revision:  {doc.get('revision') or '(none applied)'}"
        + (f"  applied {doc['appliedAt']}" if doc.get("appliedAt") else "")
    )
    requested, handled = doc.get("reconcileRequestedAt"), doc.get("lastHandledReconcileAt")
    if requested:
        state = "handled" if requested == handled else "not handled yet"
        lines.append(f"reconcile: requested {requested}, {state}")
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
        drift = site.get("drift") or {}
        if site.get("suspended") and drift.get("count"):
            lines.append(f"{name}: suspended, {drift['count']} node(s) drift from git:")
            items = drift.get("items") or []
            lines += [f"  {item}" for item in items[:10]]
            if drift["count"] > min(len(items), 10):
                lines.append(f"  ... and {drift['count'] - min(len(items), 10)} more")
    return "\n".join(lines)
