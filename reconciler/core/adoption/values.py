"""What an import found: the sites and cluster settings it declares, and its notes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.model.state import TaintValue


class NoteKind(enum.Enum):
    """What a note tells, from the most to the least pressing."""

    LEFT_OUT = "left out"  # nodes not imported: git cannot say what Kilo reads there
    MISREAD = "misread"  # a hand-set value Kilo reads otherwise than it seems to mean
    SPREAD = "spread"  # declared on more nodes than carry it today, read alike by Kilo
    TALOS = "talos"  # keys Talos manages: imported as they are, changed in Talos
    CHOICE = "choice"  # a setting import had to choose (granularity, subnet)


@dataclass(frozen=True)
class Note:
    """One thing a person should know about the import, with what to do."""

    kind: NoteKind
    site: str | None  # the site it concerns; None: the cluster, or no site
    nodes: tuple[str, ...]
    text: str  # what is there and how Kilo reads it
    fix: str = ""  # what to do about it, if anything

    def line(self) -> str:
        """The note as one sentence (or two)."""
        return f"{self.text} - {self.fix}" if self.fix else self.text


@dataclass(frozen=True)
class Carried:
    """Labels, annotations and taints topoctl's ownership record says it set: declared
    again, so the plan leaves them as they are."""

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[TaintValue, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.labels or self.annotations or self.taints)


@dataclass(frozen=True)
class ListedNode:
    """A member listed by name, with the values Kilo reads on it today."""

    name: str
    endpoint: str | None = None  # host:port
    internal_ip: str | None = None  # the address alone
    keepalive: int | None = None  # where it differs from the site's
    carried: Carried = field(default_factory=Carried)


@dataclass(frozen=True)
class PoolGuess:
    """Nodes that look like one autoscaled group: a shared name prefix and instance type."""

    name: str
    name_pattern: str
    match_labels: Mapping[str, str]
    nodes: tuple[str, ...]
    sure: bool  # its selector claims exactly these nodes: written as a pool
    doubt: str = ""  # why it is only proposed (a YAML comment)


@dataclass(frozen=True)
class ImportedSite:
    """One Kilo location as a Site."""

    name: str
    members: tuple[str, ...]  # every imported member, by name
    nodes: tuple[ListedNode, ...]  # the members listed by name, in the order written
    leaders: tuple[str, ...]  # pinned leader candidates, in the order written
    keepalive: int | None
    allowed_location_ips: tuple[str, ...]
    pools: tuple[PoolGuess, ...]  # sure pools and proposals
    carried: Carried = field(default_factory=Carried)  # common to every member


@dataclass(frozen=True)
class ImportedCluster:
    """The Cluster document: what Kilo's own annotations say of its flags."""

    name: str
    granularity: str | None  # None: Kilo wrote none (its default, location)
    subnet: str | None  # None: Kilo's default, or unknown


@dataclass(frozen=True)
class Adoption:
    """The whole import: the cluster, its sites, and the notes."""

    cluster: ImportedCluster
    sites: tuple[ImportedSite, ...]
    notes: tuple[Note, ...]
    nodes: int  # live nodes read
    left_out: tuple[str, ...]  # live nodes no site imports

    def notes_of(self, site: str | None) -> tuple[Note, ...]:
        """The notes about one site (None: about the cluster or no site)."""
        return tuple(n for n in self.notes if n.site == site)
