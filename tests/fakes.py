"""In-memory fakes of the ports that keep state in the API: the status ConfigMap's store
and an Event sink. They behave as the adapters do where the code under test can tell
(a stale resourceVersion is a ConflictError, a missing object reads as None)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reconciler.model.records import EventRecord, StatusRecord
from reconciler.ports import ConflictError


class MemoryStatusStore:
    """The StatusStore port over a dict; counts the writes it took."""

    def __init__(
        self, data: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None
    ) -> None:
        self.data: dict[str, str] | None = dict(data) if data is not None else None
        self.annotations: dict[str, str] = dict(annotations or {})
        self.version = 1
        self.writes = 0

    def read(self) -> StatusRecord | None:
        if self.data is None:
            return None
        return StatusRecord(dict(self.data), str(self.version), dict(self.annotations))

    def write(
        self,
        data: Mapping[str, str],
        resource_version: str | None,
        annotations: Mapping[str, str] | None = None,
    ) -> StatusRecord:
        exists = self.data is not None
        if (resource_version is None) == exists or (
            resource_version is not None and resource_version != str(self.version)
        ):
            raise ConflictError(f"configmap: resourceVersion {resource_version} is stale")
        self.data, self.version, self.writes = dict(data), self.version + 1, self.writes + 1
        self.annotations = dict(annotations or {})
        return StatusRecord(dict(data), str(self.version), dict(self.annotations))

    def annotate(self, key: str, value: str) -> None:
        """Another client's patch of one annotation (``kubectl annotate``)."""
        if self.data is None:
            self.data = {}
        self.annotations[key] = value
        self.version += 1


class MemoryEvents:
    """The EventSink port: every event created, in order; ``on_create`` sees each first
    (it may raise, as a failing API would)."""

    def __init__(self, on_create: Callable[[EventRecord], None] | None = None) -> None:
        self.created: list[EventRecord] = []
        self.on_create = on_create

    def create(self, event: EventRecord) -> str:
        if self.on_create is not None:
            self.on_create(event)
        self.created.append(event)
        return f"event-{len(self.created)}"

    def update_series(self, name: str, event: EventRecord) -> None:
        """Series are not kept."""
