"""Render a plan: text (rich markup, coloured on a TTY) and json; the markdown of a
pull-request comment is :mod:`comment`'s.

The JSON is documented in the README and versioned with ``format_version``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from reconciler.core.kilo.freshness import Reference, TimeSource
from reconciler.core.planning.plan import (
    PLAN_FORMAT_VERSION,
    Change,
    DesiredDelta,
    LeaderPrediction,
    NodePlan,
    Plan,
)
from reconciler.core.rendering import lifecycle as lifecycle_lines
from reconciler.core.rendering.groups import delta_groups, plan_groups, some
from reconciler.core.rendering.lines import STYLES
from reconciler.model import captured


def escape(text: str) -> str:
    """Rich markup escaping, imported only when text output is rendered (rich is slow
    to import, and json and markdown output never need it)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


_SOURCES = {
    TimeSource.CLOCK: "the clock of the machine that planned",
    TimeSource.CAPTURED: "the snapshot's capture time",
    TimeSource.MEDIAN: "the median last-seen of the nodes: the snapshot records no capture time",
}


def time_text(now: Reference) -> str:
    """The time Kilo's freshness was judged at, and where it came from."""
    if now.at is None:
        return "none (no clock, no Kilo check-in: Kubernetes' Ready stands in for Kilo's)"
    return f"{captured.render(now.at)} ({_SOURCES[now.source]})"


def counts(plan: Plan) -> Counter[str]:
    """Changes by action (conflicts included)."""
    return Counter(c.verb for n in plan.nodes for c in n.changes)


def summary_line(plan: Plan) -> str:
    """The closing line: what apply would do."""
    c = counts(plan)
    writes = sum(v for k, v in c.items() if k != "conflict")
    parts = [
        f"{c[a]} to {a.replace('-', ' ')}"
        for a in ("set", "update", "adopt", "remove", "remove-mirror")
        if c[a]
    ]
    changed = len(plan.writes)
    head = (
        f"Plan: {changed} node{'s' * (changed != 1)} to change, {writes} key"
        f"{'s' * (writes != 1)}" + (f" ({', '.join(parts)})" if parts else "")
    )
    extra = []
    if plan.conflicts:
        extra.append(f"{len(plan.conflicts)} conflict{'s' * (len(plan.conflicts) != 1)}")
    moves = [p for p in plan.leaders if p.changes]
    if moves:
        extra.append(f"{len(moves)} leader change{'s' * (len(moves) != 1)}")
    unknown = [p for p in plan.leaders if p.unknown]
    if unknown:
        extra.append(f"{len(unknown)} leader{'s' * (len(unknown) != 1)} unknown")
    if plan.errors:
        extra.append(f"{len(plan.errors)} error{'s' * (len(plan.errors) != 1)}")
    if deleting := lifecycle_lines.summary(plan.lifecycle):
        extra.insert(0, deleting)
    if not plan.has_changes and not plan.conflicts and not plan.errors:
        return "No changes. The cluster matches the topology."
    return head + (f"; {', '.join(extra)}" if extra else "") + "."


def text(plan: Plan, deltas: Sequence[DesiredDelta] = (), *, markup: bool = True) -> str:
    """Per site, per node, one line a key: rich markup for a terminal, or (``markup``
    False) the same text plain, as rich prints it where it does not colour."""
    esc = escape if markup else _same

    def styled(style: str, line: str) -> str:
        return f"[{style}]{esc(line)}[/]" if markup else line

    out = [
        f"{styled('bold', 'topoctl plan')}: cluster {esc(plan.cluster)}, "
        f"{len(plan.members)} member node(s) in {len(plan.sites)} site(s)",
        styled("dim", f"now: {time_text(plan.now)}"),
        "",
    ]
    for error in plan.errors:
        out.append(f"{styled('bold red', 'error:')} {esc(error)}")
    if plan.errors:
        out.append("")
    leaders = {p.site: p for p in plan.leaders}
    by_site: dict[str, list[NodePlan]] = {}
    for node in plan.nodes:
        by_site.setdefault(node.site, [])
        if node.changes:
            by_site[node.site].append(node)
    for site in sorted(set(by_site) | set(leaders)):
        nodes = by_site.get(site, [])
        pred = leaders.get(site)
        if not nodes and not (pred and (pred.changes or pred.unknown)):
            continue
        head = styled("bold", f"site {site}")
        if pred is not None:
            head += f"  leader: {esc(leader_text(pred))}"
            if pred.changes:
                head += "  " + styled("bold red", f"LEADER CHANGE: {leader_news(pred)}")
        out.append(head)
        if pred is not None and pred.unknown:
            out += ["  " + styled("yellow", esc(line)) for line in unknown_lines(pred)]
        for group in plan_groups(nodes, plan.pools):  # nodes with identical changes: once
            named = f": {some(group.nodes)}" if len(group.nodes) > 1 else ""
            out.append("  " + styled("bold", f"~ {group.label}{named}"))
            for line in group.lines:
                if line.startswith("#"):
                    out.append("          " + styled("dim", line))
                else:
                    out.append("      " + styled(STYLES[line[0]], line))
        out.append("")
    decided = lifecycle_lines.lines(plan.lifecycle)
    if decided:
        out.append(styled("bold", "lifecycle") + " (sites that delete unreachable nodes)")
        out += [f"  {esc(line)}" for line in decided]
        out.append("")
    out += _lists(plan, deltas, markup=markup)
    out.append(styled("bold", summary_line(plan)))
    return "\n".join(out)


def _same(text: str) -> str:
    return text


def notes(plan: Plan, esc: Callable[[str], str] = _same) -> list[str]:
    """A line for each node claimed twice, pending, or whose agent reports a problem,
    and for each warning."""
    out: list[str] = []
    for node, sites in sorted(plan.claimed_twice.items()):
        out.append(
            f"! node {esc(node)} is claimed by several sites ({esc(', '.join(sites))}): "
            "left untouched"
        )
    for site, names in sorted(plan.pending.items()):
        out.append(
            f"pending in {esc(site)} (listed in git, not registered yet): {esc(', '.join(names))}"
        )
    for node, problem in sorted(plan.agent_problems.items()):
        out.append(f"agent on {esc(node)} reports TopologyReady=False: {esc(problem)}")
    for warning in plan.warnings:
        out.append(f"warning: {esc(warning)}")
    return out


def _lists(plan: Plan, deltas: Sequence[DesiredDelta], *, markup: bool) -> list[str]:
    esc = escape if markup else _same
    out = notes(plan, esc)
    if deltas:
        out.append(
            f"this change to the topology alters the desired state of "
            f"{len({d.node for d in deltas})} node(s):"
        )
        for group in delta_groups(deltas, plan.members, plan.pools):
            if len(group.nodes) == 1:
                out += [f"  {esc(group.nodes[0])}: {esc(line)}" for line in group.lines]
            else:
                out.append(f"  {esc(group.label)} ({esc(some(group.nodes))}):")
                out += [f"    {esc(line)}" for line in group.lines]
    if out:
        out.append("")
    return out


def leader_text(prediction: LeaderPrediction) -> str:
    """Who leads the location once the plan is applied."""
    if prediction.granularity != "location":
        return f"every node leads its own segment (granularity {prediction.granularity})"
    if prediction.unknown:
        silent = prediction.silent_for
        return "unknown" + (f" (Kilo silent for {silent} s)" if silent is not None else "")
    return prediction.predicted or "(none)"


def unknown_lines(prediction: LeaderPrediction, shown: int = 10) -> list[str]:
    """Why no leader can be predicted, what keeps each node from leading, and what
    stands meanwhile."""
    out = [f"? leader unknown: {prediction.unknown}"]
    out += [f"    {line}" for line in prediction.not_ready[:shown]]
    if len(prediction.not_ready) > shown:
        out.append(f"    ... and {len(prediction.not_ready) - shown} more")
    via = f": via {prediction.held}" if prediction.held else ""
    out.append(f"    routes via the leader stand as last published{via}; nothing is withdrawn")
    return out


def leader_news(prediction: LeaderPrediction) -> str:
    """What a predicted leader change means for the location, in one sentence."""
    before, after = prediction.current, prediction.predicted
    if before is None:
        return (
            f"the Kilo location forms, led by {after}; its nodes leave the location they "
            "are in now, and their tunnels are rebuilt"
        )
    if after is None:
        return (
            f"{before} stops leading and no Ready node with an internal IP would lead: "
            "tunnels to this location drop"
        )
    return f"{before} -> {after}; tunnels to this location drop while Kilo reconfigures"


def as_json(plan: Plan, deltas: Sequence[DesiredDelta] = ()) -> bytes:
    """Stable machine-readable plan (format_version 1), UTF-8 with a closing newline."""
    c = counts(plan)

    payload: dict[str, Any] = {
        "format_version": PLAN_FORMAT_VERSION,
        "cluster": plan.cluster,
        "now": {
            "at": plan.now.at,
            "time": captured.render(plan.now.at) if plan.now.at is not None else None,
            "source": plan.now.source.value,
        },
        "summary": {
            "nodes_to_change": len(plan.writes),
            "changes": {a: c[a] for a in ("set", "update", "adopt", "remove", "remove-mirror")},
            "conflicts": len(plan.conflicts),
            "leader_changes": sum(1 for p in plan.leaders if p.changes),
            "errors": len(plan.errors),
            "has_changes": plan.has_changes,
        },
        "sites": _sites_json(plan),
        "changes": [_change(ch) for n in plan.nodes for ch in n.writes],
        "conflicts": [_change(ch) for ch in plan.conflicts]
        + [
            {"node": n, "sites": list(s), "kind": "membership"}
            for n, s in sorted(plan.claimed_twice.items())
        ],
        "pending": {k: list(v) for k, v in sorted(plan.pending.items())},
        "unassigned": list(plan.unassigned),
        "warnings": list(plan.warnings),
        "errors": list(plan.errors),
        "agent_problems": dict(sorted(plan.agent_problems.items())),
        "desired_changes": [
            {"node": d.node, "kind": d.kind, "key": d.key, "base": d.base, "head": d.head}
            for d in deltas
        ],
    }
    if plan.lifecycle is not None:
        payload["lifecycle"] = lifecycle_lines.as_data(plan.lifecycle)
        payload["summary"]["deletions"] = len(plan.lifecycle.deletions)
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def _change(ch: Change) -> dict[str, Any]:
    return {
        "node": ch.node,
        "site": ch.site,
        "kind": ch.kind,
        "key": ch.key,
        "action": ch.verb,
        "before": ch.before,
        "after": ch.after,
        "reason": ch.why,
    }


def _sites_json(plan: Plan) -> list[dict[str, Any]]:
    predictions = {p.site: p for p in plan.leaders}
    members: dict[str, list[str]] = {name: [] for name in plan.sites}
    for node, site in sorted(plan.members.items()):
        members.setdefault(site, []).append(node)
    out = []
    for name in plan.sites:
        prediction = predictions.get(name)
        leader = None
        if prediction is not None:
            leader = {
                "current": prediction.current,
                "predicted": prediction.predicted,
                "changes": prediction.changes,
                "predicted_internal_ip": prediction.predicted_internal_ip,
                "granularity": prediction.granularity,
                "unknown": prediction.unknown or None,
                "not_ready": list(prediction.not_ready),
                "silent_for": prediction.silent_for,
                "held": prediction.held or None,
            }
        out.append(
            {
                "name": name,
                "leader": leader,
                "members": members[name],
                "pending": list(plan.pending.get(name, ())),
            }
        )
    return out
