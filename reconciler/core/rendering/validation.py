"""Render diagnostics and a topology summary for a terminal, GitHub Actions or machines."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.core.loading.load import LoadResult
from reconciler.model.diagnostics import Diagnostic, errors, warnings
from reconciler.model.topology import Topology

VALIDATE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class SiteSummary:
    """One line of the topology summary."""

    name: str
    file: str
    nodes: tuple[str, ...]
    pools: tuple[tuple[str, str], ...]  # (name, selector as text)
    leaders: tuple[str, ...]
    allowed_location_ips: tuple[str, ...]
    routes: int


def summarize(topology: Topology) -> list[SiteSummary]:
    """What each site declares, for people to read."""
    out = []
    for site in topology.sites:
        spec = site.spec
        out.append(
            SiteSummary(
                name=site.name,
                file=topology.files.get(site.name, ""),
                nodes=tuple(node.name for node in spec.nodes),
                pools=tuple((p.name, _selector(p.selector)) for p in spec.pools),
                leaders=spec.leader,
                allowed_location_ips=spec.allowed_location_ips,
                routes=len(spec.routes),
            )
        )
    return out


SHOWN_MEMBERS = 10


def first_of(items: Sequence[str], limit: int = SHOWN_MEMBERS) -> list[str]:
    """At most ``limit`` items, then ``… and 9,990 more``: a table row stays readable."""
    if len(items) <= limit:
        return list(items)
    return [*items[:limit], f"… and {len(items) - limit:,} more"]


def _selector(selector: Any) -> str:
    parts = [f"{k}={v}" for k, v in sorted(selector.match_labels.items())]
    if selector.name_pattern:
        parts.append(f"name~{selector.name_pattern}")
    return ", ".join(parts)


def text(diagnostics: Sequence[Diagnostic], sources: Mapping[str, str] | None = None) -> str:
    """Compiler-style lines, each with the source line and a caret under the column."""
    lines: list[str] = []
    for d in diagnostics:
        lines.append(str(d))
        source = (sources or {}).get(d.file)
        if source is not None and d.line > 0:
            all_lines = source.splitlines()
            if d.line <= len(all_lines):
                code, caret = _excerpt(all_lines[d.line - 1], max(d.col - 1, 0))
                lines.append(f"    {code}")
                lines.append("    " + " " * caret + "^")
    return "\n".join(lines)


EXCERPT = 100  # characters of a long source line shown around the column


def _excerpt(code: str, at: int) -> tuple[str, int]:
    """The source line, or a window of it around ``at``; and where the caret goes."""
    if len(code) <= 2 * EXCERPT:
        return code, at
    start = max(0, min(at - EXCERPT // 2, len(code) - EXCERPT))
    window = code[start : start + EXCERPT]
    head = "…" if start else ""
    tail = f"…({len(code)} chars)" if start + EXCERPT < len(code) else ""
    return head + window + tail, at - start + len(head)


def verdict(result: LoadResult) -> str:
    """One closing line: valid or not, with counts."""
    n_err, n_warn = len(errors(result.diagnostics)), len(warnings(result.diagnostics))
    warn = f", {n_warn} warning{'s' * (n_warn != 1)}" if n_warn else ""
    if n_err:
        return f"invalid: {n_err} error{'s' * (n_err != 1)}{warn} in {result.files} file(s)"
    assert result.topology is not None
    sites = result.topology.sites
    nodes = sum(len(s.spec.nodes) for s in sites)
    pools = sum(len(s.spec.pools) for s in sites)
    return (
        f"valid: {len(sites)} site{'s' * (len(sites) != 1)}, {nodes} named node"
        f"{'s' * (nodes != 1)}, {pools} pool{'s' * (pools != 1)} in {result.files} "
        f"file(s){warn}"
    )


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(diagnostics: Sequence[Diagnostic]) -> str:
    """GitHub Actions workflow commands: annotations on the changed lines of a PR."""
    out = []
    for d in diagnostics:
        props = [f"file={_escape_property(d.file)}"]
        if d.line > 0:
            props += [f"line={d.line}", f"col={d.col}"]
        props.append(f"title={_escape_property('topoctl ' + d.code)}")
        where = f"{d.path}: " if d.path else ""
        out.append(f"::{d.severity} {','.join(props)}::{_escape_data(where + d.message)}")
    return "\n".join(out)


def as_json(result: LoadResult) -> str:
    """The documented, versioned JSON report of ``topoctl validate --format json``."""

    def item(d: Diagnostic) -> dict[str, Any]:
        return {
            "file": d.file,
            "line": d.line,
            "column": d.col,
            "path": d.path,
            "code": d.code,
            "message": d.message,
        }

    payload: dict[str, Any] = {
        "format_version": VALIDATE_FORMAT_VERSION,
        "valid": result.ok,
        "files": result.files,
        "errors": [item(d) for d in errors(result.diagnostics)],
        "warnings": [item(d) for d in warnings(result.diagnostics)],
        "sites": [
            {
                "name": s.name,
                "file": s.file,
                "nodes": list(s.nodes),
                "pools": [{"name": n, "selector": sel} for n, sel in s.pools],
                "leaders": list(s.leaders),
                "allowedLocationIPs": list(s.allowed_location_ips),
                "routes": s.routes,
            }
            for s in (summarize(result.topology) if result.topology else [])
        ],
    }
    return json.dumps(payload, indent=2)
