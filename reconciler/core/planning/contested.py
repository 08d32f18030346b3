"""A key another field manager keeps writing: one write of git's value, then a conflict.

topoctl writes a key git declares (or removes a Kilo key git does not declare) once per
value of git and per other writer; when another field manager (``metadata.managedFields``:
Talos, an operator, a person's ``kubectl annotate``) then writes it back, topoctl stops
writing that key on that node and reports a conflict naming the manager, instead of
fighting it, until git's value changes or another manager becomes the writer: then
topoctl writes once more. So each key of each node is written at most once per revision
of git and per other writer.

What topoctl wrote is kept in its ownership record, per key: a digest of git's value it
wrote and the manager it wrote against (``topoctl`` where nobody else owned the key).
That is recorded with each write of a node whose API server keeps managedFields (a
snapshot file keeps none: there is no other writer to know of). A key written before
this record existed is held when its owner is another manager that wrote after
topoctl's last write to the node (topoctl's writes are guarded by the resourceVersion,
so none is computed without seeing that rewrite); managedFields times are to the
second, so a rewrite within the second of that write gets one more write first.

Labels and annotations only: ``spec.taints`` is one atomic field in managedFields (a
single manager owns the whole list), so it names no writer of one taint.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import blake2b

from reconciler.model.state import NodeState
from reconciler.model.writers import AGENT_MANAGER, FIELD_MANAGER

OWN_MANAGERS = frozenset({FIELD_MANAGER, AGENT_MANAGER})
Wrote = tuple[str, str]  # (the manager written against, or topoctl; digest of git's value)


def digest(value: str | None) -> str:
    """A short digest of git's value of a key (``-`` for "absent")."""
    return "-" if value is None else blake2b(value.encode(), digest_size=6).hexdigest()


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether topoctl writes the key, who holds it otherwise, and what to record."""

    writer: str | None  # the other manager the key is left to; None: topoctl writes
    wrote: Wrote | None  # for the ownership record (None: nothing)


def contest(
    node: NodeState, kind: str, key: str, want: str | None, owned: bool, wrote: Wrote | None
) -> Verdict:
    """Decide a write of ``want`` (None: removal) to ``key`` (``kind``: annotation or
    label), which topoctl ``owned`` or not, given what topoctl recorded writing."""
    wanted = digest(want)
    current = wrote if wrote is not None and wrote[1] == wanted else None
    writer = node.writers.writer(kind, key)
    if writer is None or writer in OWN_MANAGERS:
        if node.writers.recorded:  # an API server that keeps managedFields
            return Verdict(None, (FIELD_MANAGER, wanted))
        return Verdict(None, current)
    if current is not None and current[0] in (writer, FIELD_MANAGER):
        return Verdict(writer, (writer, wanted))  # written once already; it wrote back
    if wrote is None and owned and node.writers.wrote_after(writer, FIELD_MANAGER):
        return Verdict(writer, (writer, wanted))  # it rewrote what topoctl set before
    # the one write over this writer's value: a first adoption, or git or the writer
    # changed since
    return Verdict(None, (writer, wanted))


def kept(wrote: Wrote, want: str | None) -> bool:
    """Whether the record of a key not written now still stands (git's value unchanged)."""
    return wrote[1] == digest(want)
