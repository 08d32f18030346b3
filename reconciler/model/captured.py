"""When a snapshot's nodes were read: the ``topoctl.io/captured-at`` annotation.

``topoctl snapshot`` writes it on the List's own ``metadata.annotations``, as RFC 3339
UTC (``2026-11-27T12:00:05Z``, as Kubernetes writes times), and an offline plan judges
Kilo's freshness at it. kubectl takes the file as it is: its schema validation of a
``List`` reads only the items (k8s.io/kubectl pkg/validation/schema.go ``validateList``),
and the List itself is never sent to a server.
"""

from __future__ import annotations

from datetime import UTC, datetime

FORMAT_EXAMPLE = "2026-11-27T12:00:05Z"


def render(at: int) -> str:
    """The annotation's value for unix second ``at``."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: object) -> int:
    """The unix second the annotation says; ValueError naming what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"expected a time like {FORMAT_EXAMPLE}, got {type(value).__name__}")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:60]!r} is not a time like {FORMAT_EXAMPLE} (RFC 3339)") from None
    if at.tzinfo is None:
        raise ValueError(f"{value[:60]!r} has no time zone: write it in UTC, {FORMAT_EXAMPLE}")
    return int(at.timestamp())
