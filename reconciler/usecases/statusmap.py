"""The status ConfigMap (``topoctl-status`` in the lease namespace) and its one owner.

Several writers share the ConfigMap: the controller's status, the hourly deletion
record (written by the controller's lifecycle and by ``topoctl apply`` alike), and a
standby replica's webhook requests. Every read and write of it goes through
:class:`StatusConfigMap`: each change is a read-modify-write of its own keys under the
ConfigMap's resourceVersion, read again and retried when someone wrote in between, so
no writer loses another's keys.

Keys: ``status.json`` (the status document), ``revision`` and ``appliedAt`` (the
revision in force: a replica that starts while the newest is refused converges to it),
``deletions`` (the deletion record, :mod:`reconciler.core.lifecycle.record`),
``fetchRequestedAt`` (a standby's verified webhook, for the holder to fetch at once) and
``suspend`` (what ``topoctl suspend`` stopped, :mod:`reconciler.model.suspension`).
The annotation ``topoctl.io/requested-at`` is ``topoctl reconcile``'s request (as Flux's
``reconcile.fluxcd.io/requestedAt``: any new value asks for a fetch and a full plan,
which the status echoes as ``lastHandledReconcileAt``); a write keeps the annotations
it read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.lifecycle.record import DeletionRecord
from reconciler.model.suspension import Suspension
from reconciler.ports import BackendError, ConflictError, StatusStore

STATUS_NAME = "topoctl-status"
DOC_KEY = "status.json"
REVISION_KEY = "revision"
APPLIED_KEY = "appliedAt"
RECORD_KEY = "deletions"
FETCH_KEY = "fetchRequestedAt"
SUSPEND_KEY = "suspend"
REQUESTED_AT = "topoctl.io/requested-at"  # an annotation, as Flux's requestedAt
HANDLED_KEY = "lastHandledReconcileAt"  # in the status document: the request last handled
OWN_KEYS = (DOC_KEY, REVISION_KEY, APPLIED_KEY)  # the status proper; the rest is shown apart
ATTEMPTS = 3  # read-modify-write rounds before giving up on a ConfigMap that keeps moving

Data = dict[str, str]


class StatusConfigMap:
    """Every key of the status ConfigMap, read and written through one StatusStore."""

    def __init__(self, store: StatusStore) -> None:
        self.store = store

    def _data(self) -> Data:
        current = self.store.read()
        return dict(current.data) if current is not None else {}

    def _update(self, change: Callable[[Data], Data]) -> bool:
        """Write ``change(data)`` under the resourceVersion read; True when written, False
        when it changed nothing. Raises BackendError when the write fails, or when the
        ConfigMap kept changing for :data:`ATTEMPTS` rounds."""
        return self._update_both(lambda data, notes: (change(data), notes))

    def _update_both(self, change: Callable[[Data, Data], tuple[Data, Data]]) -> bool:
        """:meth:`_update` of the data and the annotations together."""
        for _attempt in range(ATTEMPTS):
            current = self.store.read()
            data = dict(current.data) if current is not None else {}
            notes = dict(current.annotations) if current is not None else {}
            wanted, wanted_notes = change(dict(data), dict(notes))
            if current is not None and (wanted, wanted_notes) == (data, notes):
                return False
            try:
                version = current.resource_version if current else None
                self.store.write(wanted, version, wanted_notes)
                return True
            except ConflictError:
                continue  # someone wrote it meanwhile: read it again
        raise BackendError(f"configmap {STATUS_NAME}: it kept changing under {ATTEMPTS} writes")

    # --- the status document -------------------------------------------------------

    def publish(self, doc: str, revision: str, applied_at: str) -> bool:
        """The controller's status document and the revision in force; True when written
        (False: it says that already)."""
        own = {DOC_KEY: doc, REVISION_KEY: revision, APPLIED_KEY: applied_at}
        return self._update(lambda data: {**data, **own})

    def revision_in_force(self) -> str | None:
        """The revision the status records as applied, if any."""
        return self._data().get(REVISION_KEY) or None

    def read_status(self) -> dict[str, Any] | None:
        """The published status (``topoctl status``), other keys under ``other``; None
        when the ConfigMap does not exist."""
        current = self.store.read()
        if current is None:
            return None
        try:
            doc = json.loads(current.data.get(DOC_KEY) or "{}")
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        shown = (*OWN_KEYS, SUSPEND_KEY)
        extra = {k: v for k, v in current.data.items() if k not in shown}
        suspension = Suspension.parse(current.data.get(SUSPEND_KEY)).as_status()
        requested = current.annotations.get(REQUESTED_AT)
        return {
            **doc,
            **({"other": extra} if extra else {}),
            **({"suspendRecorded": suspension} if suspension else {}),
            **({"reconcileRequestedAt": requested} if requested else {}),
        }

    # --- the deletion record -------------------------------------------------------

    def read_record(self) -> DeletionRecord:
        """The deletion record (empty when there is none; unreadable text gives an
        unreadable record, which leaves no budget)."""
        return DeletionRecord.parse(self._data().get(RECORD_KEY))

    def update_record(self, change: Callable[[DeletionRecord], DeletionRecord]) -> None:
        """Store ``change(record)``, the record read again on every attempt, so two
        writers sharing the budget never lose each other's entries."""

        def put(data: Data) -> Data:
            record = change(DeletionRecord.parse(data.get(RECORD_KEY)))
            if not record.readable:
                return data  # only a person can tell what an unreadable record held
            return {**data, RECORD_KEY: record.render()}

        self._update(put)

    # --- fetch requests ------------------------------------------------------------

    def request_fetch(self, at: str) -> None:
        """A standby's verified webhook, for the holder (which looks here) to fetch."""
        self._update(lambda data: {**data, FETCH_KEY: at})

    def fetch_requested(self) -> str:
        """When a fetch was last requested through the ConfigMap ("" never)."""
        return self._data().get(FETCH_KEY, "")

    # --- suspend, resume, reconcile (the Flux gestures) ------------------------------

    def suspension(self) -> Suspension:
        """What is suspended (nothing, when the ConfigMap does not exist)."""
        return Suspension.parse(self._data().get(SUSPEND_KEY))

    def update_suspension(self, change: Callable[[Suspension], Suspension]) -> Suspension:
        """Store ``change(suspension)``, read again on every attempt; what was stored.
        The ConfigMap is created when it does not exist yet."""
        stored = Suspension()

        def put(data: Data) -> Data:
            nonlocal stored
            stored = change(Suspension.parse(data.get(SUSPEND_KEY)))
            if not stored.active:
                return {k: v for k, v in data.items() if k != SUSPEND_KEY}
            return {**data, SUSPEND_KEY: stored.render()}

        self._update(put)
        return stored

    def request_reconcile(self, at: str) -> None:
        """``topoctl reconcile``: a new ``topoctl.io/requested-at``."""
        self._update_both(lambda data, notes: (data, {**notes, REQUESTED_AT: at}))

    def requests(self) -> Requests:
        """What a person or a standby asked of the controller, in one read."""
        current = self.store.read()
        if current is None:
            return Requests()
        try:
            doc = json.loads(current.data.get(DOC_KEY) or "{}")
        except ValueError:
            doc = {}
        handled = doc.get(HANDLED_KEY) if isinstance(doc, dict) else None
        return Requests(
            fetch=current.data.get(FETCH_KEY, ""),
            reconcile=current.annotations.get(REQUESTED_AT, ""),
            handled=str(handled or ""),
            suspension=Suspension.parse(current.data.get(SUSPEND_KEY)),
        )


@dataclass(frozen=True)
class Requests:
    """The status ConfigMap's requests, as read at once: a standby's fetch request, a
    reconcile request and the one the status says was last handled, and what is
    suspended."""

    fetch: str = ""
    reconcile: str = ""
    handled: str = ""
    suspension: Suspension = field(default_factory=Suspension)
