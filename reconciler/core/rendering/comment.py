"""The plan as one pull-request comment: what the pull request changes first, then the
plan, grouped, and under the forge's size limit by construction.

Order is priority: the verdict (summary, the time Kilo's freshness was judged at,
errors, leader changes, leaders unknown), what the pull request changes in the desired
state (``--base``, grouped), the plan per site (one line for all the sites with nothing
to do), the lifecycle's decisions, the mesh (a Mermaid diagram),
then each site's details (its groups of nodes with identical changes, and their lines),
then the notes. Each part goes in whole or not at all: a table ends with a row that
counts the rows it has no room for, a site's details fall back to their table alone,
and whatever is left out is counted at the end, which says where the full plan is.
Nothing is ever cut inside a code block, a table row or a ``<details>``.

Sizes are UTF-8 bytes (see :mod:`markdown`); :data:`BUDGET` leaves room for the marker
line by which the posted comment is found again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler.core.planning.plan import DesiredDelta, LeaderPrediction, Plan
from reconciler.core.rendering import lifecycle as lifecycle_lines
from reconciler.core.rendering.groups import NO_SITE, Group, delta_groups, plan_groups, some
from reconciler.core.rendering.markdown import cell, clip, code, fence, html, row, size, table
from reconciler.core.rendering.plans import (
    leader_news,
    notes,
    summary_line,
    time_text,
    unknown_lines,
)

GITHUB_LIMIT = 65_536  # GitHub's largest comment body (GitLab's notes allow 1,000,000)
MARKER = "<!-- topoctl-plan -->"  # how the one comment of a pull request is found again
BUDGET = GITHUB_LIMIT - size(MARKER) - 1  # the marker and its newline go first
DEFAULT_FULL_PLAN = "`topoctl plan --format json` prints it whole"

SHOWN = 10  # errors, leader changes, lines of a table cell... shown before "and N more"
LINE = 300  # characters of one free-text line (an error, a warning) at most
FOOTER = 600  # characters of the caller's closing line at most
LEFT_OUT = 1500  # characters of the list of what was left out at most
GRAPH = 16 * 1024  # the largest diagram a comment shows (a larger one would crowd it out)
MIN_LIMIT = 16 * 1024  # the verdict, the closing lines and a little of the rest


@dataclass
class _Comment:
    """The parts so far, the room left, and what did not fit."""

    room: int
    parts: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    def fits(self, text: str) -> bool:
        return size(text) + 2 <= self.room  # parts are joined by a blank line

    def add(self, text: str, what: str = "") -> bool:
        """Add the part when it fits; else count it as left out (when it has a name)."""
        if not self.fits(text):
            if what:
                self.left_out.append(what)
            return False
        self.parts.append(text)
        self.room -= size(text) + 2
        return True


def comment(
    plan: Plan,
    deltas: Sequence[DesiredDelta] | None = None,
    *,
    graph: str | None = None,
    limit: int = BUDGET,
    full_plan: str = DEFAULT_FULL_PLAN,
    footer: str = "",
) -> str:
    """The comment, at most ``limit`` bytes. ``deltas`` None: no base was given (the
    section is left out); ``graph``: a Mermaid diagram of the mesh; ``full_plan``:
    markdown that says where the whole plan is; ``footer``: a closing line."""
    if limit < MIN_LIMIT:
        raise ValueError(f"a comment's limit must be at least {MIN_LIMIT} bytes, not {limit}")
    full_plan, footer = clip(full_plan, LINE), clip(footer, FOOTER)
    closing = _closing(["|" * LEFT_OUT], full_plan, footer)  # the longest it can be
    out = _Comment(room=limit - size(closing) - 2)
    if not out.add(_head(plan)):
        out.add(_head(plan, brief=True))  # fits: MIN_LIMIT has room for it
    if deltas is not None:
        out.add(_what_changes(plan, deltas, out.room - 2), "what the pull request changes")
    out.add(_by_site(plan, out.room - 2), "the table of sites")
    decided = lifecycle_lines.lines(plan.lifecycle)
    if decided:
        title = "**Lifecycle** (sites that delete unreachable nodes)"
        out.add(_listing(title, decided), "the lifecycle's decisions")
    if graph is not None:
        if size(graph) <= GRAPH:
            out.add(_mesh(graph), "the mesh diagram (topoctl graph draws it)")
        else:
            out.left_out.append("the mesh diagram, too large for a comment (topoctl graph)")
    _add_sites(out, plan_groups(plan.nodes, plan.pools))
    rest = notes(plan)
    if rest:
        out.add(
            _listing("<details><summary>notes</summary>\n", rest, closing="\n</details>"),
            (_count(len(rest), "note")),
        )
    return "\n\n".join([*out.parts, _closing(out.left_out, full_plan, footer)]).strip() + "\n"


def _closing(left_out: Sequence[str], full_plan: str, footer: str) -> str:
    """What was left out and where the whole plan is (when something was), the footer."""
    end = []
    if left_out:
        what = cell(clip("; ".join(left_out), LEFT_OUT))
        end.append(f"---\n**Left out to fit in one comment**: {what}. The full plan: {full_plan}.")
    if footer:
        end.append(footer)
    return "\n\n".join(end)


def _add_sites(out: _Comment, groups: Sequence[Group]) -> None:
    """Every site's details that fit: first each site's table (a row a group), then, in
    site order while there is room, each with its lines too. Sites with no room even
    for their table are counted as left out."""
    sites = sorted({g.site for g in groups})
    mine = {site: [g for g in groups if g.site == site] for site in sites}
    brief: dict[str, str] = {}
    cut: list[tuple[str, int]] = []  # sites left out, and their nodes
    for site in sites:
        text = _site_details(site, mine[site], lines=False)
        if out.fits(text):
            brief[site] = text
            out.room -= size(text) + 2
        else:
            cut.append((site, sum(len(g.nodes) for g in mine[site])))
    short = 0  # sites shown with their table only
    for site, text in brief.items():
        full = _site_details(site, mine[site], lines=True)
        if size(full) - size(text) <= out.room:
            out.room -= size(full) - size(text)
            out.parts.append(full)
        else:
            out.parts.append(text)
            short += 1
    if cut:
        nodes = sum(n for _, n in cut)
        out.left_out.append(
            f"the details of {_count(len(cut), 'site')} ({_count(nodes, 'node')}: "
            f"{some([s for s, _ in cut], 5)})"
        )
    if short:
        out.left_out.append(f"the lines of each change in {_count(short, 'site')} (tables only)")


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def _head(plan: Plan, *, brief: bool = False) -> str:
    """Title, verdict, the time Kilo's freshness was judged at, errors, leader changes
    and leaders unknown (up to :data:`SHOWN` each; ``brief``: title, verdict and time
    only)."""
    lines = [
        f"### topoctl plan: cluster {code(clip(plan.cluster, 100))}",
        "",
        f"**{summary_line(plan)}**",
        "",
        f"<sub>now: {html(time_text(plan.now))}</sub>",
    ]
    if brief:
        return "\n".join(lines)
    for error in plan.errors[:SHOWN]:
        lines += ["", "> [!CAUTION]", f"> {cell(clip(error, LINE))}"]
    if len(plan.errors) > SHOWN:
        lines += ["", "> [!CAUTION]", f"> … and {_count(len(plan.errors) - SHOWN, 'more error')}."]
    moves = [p for p in plan.leaders if p.changes]
    if len(moves) <= 3:
        for move in moves:
            lines += ["", "> [!WARNING]", f"> {_leader_warning(move)}"]
    else:  # one warning, a line a site
        lines += [
            "",
            "> [!WARNING]",
            f"> Kilo's leader changes in {_count(len(moves), 'site')}: tunnels to these "
            "locations drop while Kilo reconfigures.",
        ]
        for move in moves[:SHOWN]:
            before, after = move.current or "(none)", move.predicted or "(none)"
            lines.append(f"> - {code(move.site)}: {cell(clip(f'{before} → {after}', LINE))}")
        if len(moves) > SHOWN:
            lines.append(f"> - … and {_count(len(moves) - SHOWN, 'more site')}")
    return "\n".join(lines + _unknown_notes([p for p in plan.leaders if p.unknown]))


def _unknown_notes(unknown: Sequence[LeaderPrediction]) -> list[str]:
    """A note a site whose leader cannot be predicted (why, what keeps each node from
    leading, what stands); past three sites, one note with a line a site."""
    lines: list[str] = []
    if len(unknown) <= 3:
        for site in unknown:
            first, *rest = unknown_lines(site)
            lines += ["", "> [!NOTE]", f"> Site {code(site.site)}: {cell(clip(first[2:], LINE))}"]
            lines += [f"> - {cell(clip(line.strip(), LINE))}" for line in rest]
        return lines
    lines += [
        "",
        "> [!NOTE]",
        f"> Kilo's leader is unknown in {_count(len(unknown), 'site')}: routes via the "
        "leader stand there as last published; nothing is withdrawn.",
    ]
    for site in unknown[:SHOWN]:
        lines.append(f"> - {code(site.site)}: {cell(clip(site.unknown, LINE))}")
    if len(unknown) > SHOWN:
        lines.append(f"> - … and {_count(len(unknown) - SHOWN, 'more site')}")
    return lines


def _leader_warning(move: LeaderPrediction) -> str:
    return f"Leader change in {code(move.site)}: {cell(clip(leader_news(move), 2 * LINE))}."


def _group_cell(group: Group) -> str:
    """``14 nodes of pool `fsn1/workers``` with its first names, or ``node `x```."""
    count = len(group.nodes)
    if count == 1:
        return f"node {code(group.nodes[0])}"
    if group.pool is not None:
        what = f"{count} nodes of pool {code(f'{group.site}/{group.pool}')}"
    elif group.site == NO_SITE:
        what = f"{count} nodes no site claims"
    else:
        what = f"{count} listed nodes of {code(group.site)}"
    return f"{what}<br><sub>{cell(clip(some(group.nodes, 5), LINE))}</sub>"


def _lines_cell(lines: Sequence[str]) -> str:
    shown = [code(clip(line, LINE)) for line in lines[:SHOWN]]
    if len(lines) > SHOWN:
        shown.append(f"… and {len(lines) - SHOWN} more")
    return "<br>".join(shown)


def _rows_that_fit(
    header: Sequence[str],
    rows: Sequence[tuple[Sequence[str], int]],
    room: int,
    more: str,
    aligns: str = "",
) -> str:
    """A table with the rows that fit in ``room``, the last row counting the others
    (``more`` names them: "groups" or "sites"); each row comes with its node count."""
    lines = table(header, [], aligns)
    used = size("\n".join(lines))
    for i, (cells, _nodes) in enumerate(rows):
        line = row(cells)
        left = rows[i + 1 :]
        reserve = 0 if not left else 200 + 4 * len(header)
        if used + size(line) + 1 + reserve > room:
            left = rows[i:]
            nodes = sum(n for _, n in left)
            filler = [f"… {_count(len(left), more)} ({_count(nodes, 'node')}) more"]
            lines.append(row(filler + [""] * (len(header) - 1)))
            break
        lines.append(line)
        used += size(line) + 1
    return "\n".join(lines)


def _what_changes(plan: Plan, deltas: Sequence[DesiredDelta], room: int) -> str:
    """What the pull request changes in the desired state, a row per group of nodes."""
    title = "#### What this pull request changes"
    if not deltas:
        return f"{title}\n\nNothing in the desired state of any node."
    groups = delta_groups(deltas, plan.members, plan.pools)
    nodes = sum(len(g.nodes) for g in groups)
    intro = f"The desired state of {_count(nodes, 'node')}, before → after:"
    rows = [((_group_cell(g), _lines_cell(g.lines)), len(g.nodes)) for g in groups]
    head = f"{title}\n\n{intro}\n\n"
    return head + _rows_that_fit(("nodes", "change"), rows, room - size(head), "group")


def _by_site(plan: Plan, room: int) -> str:
    """A row per site with something to do; one line for the others."""
    leaders = {p.site: p for p in plan.leaders}
    sites = sorted({n.site for n in plan.nodes} | set(leaders) | set(plan.sites))
    rows: list[tuple[Sequence[str], int]] = []
    idle: list[str] = []
    for site in sites:
        nodes = [n for n in plan.nodes if n.site == site]
        changing = sum(1 for n in nodes if n.writes)
        writes = sum(len(n.writes) for n in nodes)
        conflicts = sum(len(n.conflicts) for n in nodes)
        p = leaders.get(site)
        if not (changing or conflicts or (p is not None and (p.changes or p.unknown))):
            idle.append(site)
            continue
        now, after = (p.current, p.predicted) if p else (None, None)
        if p is not None and p.granularity != "location":
            now = after = f"each node ({p.granularity})"
        elif p is not None and p.unknown:
            after = "unknown"
        mark = " :warning:" if p is not None and p.changes else ""
        rows.append(
            (
                (
                    code(site),
                    str(changing),
                    str(writes),
                    str(conflicts),
                    cell(now or "-"),
                    cell(after or "-") + mark,
                ),
                changing,
            )
        )
    parts = ["#### The plan, by site"]
    tail = ""
    if idle:
        tail = f"Nothing to do in {_count(len(idle), 'site')}: {cell(clip(some(idle), LINE))}."
    if rows:
        header = ("site", "nodes to change", "keys", "conflicts", "leader now", "leader after")
        room -= size(parts[0]) + size(tail) + 8
        parts.append(_rows_that_fit(header, rows, room, "site", "lrrrll"))
    if tail:
        parts.append(tail)
    return "\n\n".join(parts)


def _site_details(site: str, groups: Sequence[Group], *, lines: bool) -> str:
    """A site's groups as a table (what changes, in a few words), and with ``lines``
    their lines as a diff."""
    nodes = sum(len(g.nodes) for g in groups)
    out = [
        f"<details><summary><code>{html(site)}</code>: {_count(nodes, 'node')}, "
        f"{_count(len(groups), 'group')}</summary>",
        "",
        *table(("nodes", "what changes"), [(_group_cell(g), cell(g.shape)) for g in groups]),
    ]
    if lines:
        diff: list[str] = []
        for group in groups:
            names = f": {some(group.nodes, 5)}" if len(group.nodes) > 1 else ""
            diff.append(f"# {group.label}{names}")
            for line in group.lines:
                sign = {"~": "!", "!": "!"}.get(line[0], line[0])  # diff colours: ! is orange
                diff.append(f"{sign}{line[1:]}" if line[0] != "#" else f"#   {line[2:]}")
        out += ["", fence(diff, "diff")]
    out += ["", "</details>"]
    return "\n".join(out)


def _mesh(graph: str) -> str:
    return "\n".join(
        [
            "<details open><summary>The mesh once the plan is applied</summary>",
            "",
            fence(graph.rstrip("\n").splitlines(), "mermaid"),
            "",
            "</details>",
        ]
    )


def _listing(title: str, items: Sequence[str], closing: str = "") -> str:
    """A title and a bullet a line, at most 5 x :data:`SHOWN` of them."""
    shown = [f"- {cell(clip(item, LINE))}" for item in items[: 5 * SHOWN]]
    if len(items) > 5 * SHOWN:
        shown.append(f"- … and {len(items) - 5 * SHOWN} more")
    return "\n".join([title, "", *shown]) + closing
