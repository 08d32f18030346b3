"""The import use case (``topoctl import``): a running cluster's nodes -> ``sites/*.yaml``.

The files are checked before anyone sees them: loaded by the same code as ``validate``
(every value written must be one it accepts) and planned against the very nodes they came
from, so the report can say what applying them would change - nothing Kilo or Kubernetes
reads, except what a note explains. Writing the files is the caller's (an entry point).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.core.adoption.adopt import adopt
from reconciler.core.adoption.values import Adoption
from reconciler.core.kilo.freshness import Reference
from reconciler.core.loading.load import SourceFile, load
from reconciler.core.planning.plan import Change, Plan
from reconciler.core.rendering import imported
from reconciler.core.rendering.validation import text as diagnostics_text
from reconciler.model import keys
from reconciler.model.diagnostics import errors, warnings
from reconciler.model.state import NodeState
from reconciler.ports import ClusterReader
from reconciler.usecases.plan import plan_nodes


class InvalidImportError(Exception):
    """The files an import would write do not pass ``validate``: a fault in topoctl."""


@dataclass(frozen=True)
class ImportResult:
    """The import, its files by name, and their plan against the same nodes."""

    adoption: Adoption
    files: dict[str, str]
    plan: Plan
    visible: tuple[Change, ...]  # writes Kilo or Kubernetes would read differently
    warnings: tuple[str, ...]  # what validate warns about the imported topology

    def report(self, written: Sequence[str]) -> str:
        """The report for a person, naming the files as ``written``."""
        return imported.report(self.adoption, written, self.plan, self.visible, self.warnings)


def import_nodes(
    nodes: Sequence[NodeState], source: str, cluster_name: str, now: Reference | None = None
) -> ImportResult:
    """The import of ``nodes``, checked as described above. ``source`` names where the
    nodes came from (the files' header says it); Kilo's freshness is judged at ``now``
    (None: the nodes' median check-in), for the import and its plan alike."""
    adoption = adopt(nodes, cluster_name, now.at if now is not None else None)
    files = imported.files(adoption, source)
    loaded = load(SourceFile(name, text.encode()) for name, text in files.items())
    if loaded.topology is None:
        problems = diagnostics_text(errors(loaded.diagnostics), files)
        raise InvalidImportError(f"the imported topology does not pass validate:\n{problems}")
    _, plan = plan_nodes(loaded.topology, nodes, now)
    visible = tuple(
        change
        for node in plan.writes
        for change in node.writes
        if not change.key.startswith(keys.TOPOCTL) and not change.same_for_kilo
    )
    return ImportResult(
        adoption,
        files,
        plan,
        visible,
        tuple(f"{d.location}: {d.message}" for d in warnings(loaded.diagnostics)),
    )


def import_cluster(
    reader: ClusterReader, source: str, cluster_name: str, now: Reference | None = None
) -> ImportResult:
    """The import of every node the reader lists."""
    return import_nodes(reader.list_nodes(), source, cluster_name, now)
