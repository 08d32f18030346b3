"""What a change to git alters: per node and key, the desired value at a base revision
beside the desired value at the head (the PR comment's "desired changes")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from reconciler.core.kilo.freshness import NO_TIME, Reference
from reconciler.core.planning.desired import DesiredNode
from reconciler.core.planning.diff import taint_text
from reconciler.core.planning.plan import DesiredDelta
from reconciler.core.planning.planner import Planner
from reconciler.model.state import NodeState
from reconciler.model.topology import Topology


def desired_changes(
    base: Topology, head: Topology, nodes: Iterable[NodeState], now: Reference = NO_TIME
) -> list[DesiredDelta]:
    """Per node and key: desired at the base revision vs desired at the head, Kilo's
    freshness judged at ``now`` for both (the head's plan's time)."""
    states = list(nodes)
    at, source = now.at, now.source
    before = Planner(base, states, at, source).desired()
    after = Planner(head, states, at, source).desired()
    out: list[DesiredDelta] = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        for kind, get in (("annotation", _annotations), ("label", _labels), ("taint", _taints)):
            old, new = get(b), get(a)
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    out.append(DesiredDelta(name, kind, key, old.get(key), new.get(key)))
    return out


def _annotations(d: DesiredNode | None) -> Mapping[str, str]:
    return d.annotations if d else {}


def _labels(d: DesiredNode | None) -> Mapping[str, str]:
    return d.labels if d else {}


def _taints(d: DesiredNode | None) -> Mapping[str, str]:
    return {k: taint_text(t) or "" for k, t in d.taints.items()} if d else {}
