"""What is suspended (``topoctl suspend``), as the status ConfigMap records it: the whole
cluster, or sites by name, each with who suspended it, when and why.

Recorded as JSON under the ConfigMap's ``suspend`` key::

    {"cluster": {"by": "alice@laptop", "at": "2026-12-07T23:40:00Z", "reason": "..."},
     "sites": {"fsn1": {"by": ..., "at": ..., "reason": ...}}}

Text that cannot be read as such suspends the whole cluster (:meth:`Suspension.parse`):
someone edited the key by hand, and only a person can tell what it meant, so nothing is
written until ``topoctl resume --all`` writes it anew.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

CLUSTER = "*"  # the scope of the whole cluster (no site has this name; the metric's label)


@dataclass(frozen=True)
class Hold:
    """One suspension: who, when (RFC 3339) and why."""

    by: str
    at: str
    reason: str = ""

    def describe(self) -> str:
        """``by alice at T: why`` for logs and the status."""
        why = f": {self.reason}" if self.reason else ""
        return f"by {self.by or '?'} at {self.at or '?'}{why}"

    def as_json(self) -> dict[str, str]:
        """The record's form."""
        return {"by": self.by, "at": self.at, "reason": self.reason}


@dataclass(frozen=True)
class Suspension:
    """The scopes suspended now (none: everything is written as usual)."""

    cluster: Hold | None = None
    sites: Mapping[str, Hold] = field(default_factory=dict)

    def covers(self, site: str) -> Hold | None:
        """The hold that stops writes to ``site`` (the cluster's first), or None."""
        return self.cluster or self.sites.get(site)

    @property
    def active(self) -> bool:
        """Whether anything is suspended."""
        return self.cluster is not None or bool(self.sites)

    def scopes(self) -> dict[str, Hold]:
        """Every suspended scope, :data:`CLUSTER` for the whole cluster."""
        found = {CLUSTER: self.cluster} if self.cluster is not None else {}
        return {**found, **dict(sorted(self.sites.items()))}

    def suspend(self, sites: tuple[str, ...], hold: Hold) -> Suspension:
        """Suspended ``sites`` too (none given: the whole cluster)."""
        if not sites:
            return replace(self, cluster=hold)
        return replace(self, sites={**self.sites, **{s: hold for s in sites}})

    def resume(self, sites: tuple[str, ...], everything: bool = False) -> Suspension:
        """``sites`` resumed (none given: the cluster's own hold; ``everything``: all)."""
        if everything:
            return Suspension()
        if not sites:
            return replace(self, cluster=None)
        return replace(self, sites={k: v for k, v in self.sites.items() if k not in sites})

    def render(self) -> str:
        """The record's text."""
        doc: dict[str, Any] = {
            "cluster": self.cluster.as_json() if self.cluster is not None else None,
            "sites": {k: v.as_json() for k, v in sorted(self.sites.items())},
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    def as_status(self) -> dict[str, Any] | None:
        """What the status document shows (None: nothing suspended)."""
        if not self.active:
            return None
        return {scope: hold.as_json() for scope, hold in self.scopes().items()}

    @classmethod
    def parse(cls, text: str | None) -> Suspension:
        """The record (absent or empty: nothing suspended; unreadable: the cluster)."""
        if not text:
            return cls()
        try:
            doc = json.loads(text)
            cluster = doc.get("cluster")
            sites = doc.get("sites") or {}
            if not isinstance(sites, dict):
                raise TypeError("sites is not a mapping")
            return cls(
                _hold(cluster) if cluster is not None else None,
                {str(name): _hold(value) for name, value in sites.items()},
            )
        except (ValueError, TypeError, AttributeError, KeyError) as err:
            why = f"the suspend record cannot be read ({err}): resume --all writes it anew"
            return cls(Hold("", "", why))


def _hold(value: Any) -> Hold:
    if not isinstance(value, dict):
        raise TypeError(f"{value!r} is not a mapping")
    by, at, reason = (str(value.get(k) or "") for k in ("by", "at", "reason"))
    return Hold(by, at, reason)
