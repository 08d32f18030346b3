"""The topology contract (docs/topology.md): pydantic models of the ``Cluster`` and ``Site``
kinds, and :class:`Topology`, the whole tree once loaded and validated.

Field names are the YAML's (camelCase aliases); every field has a description, which feeds
the JSON Schema in ``schema/``. Values Kilo reads are canonicalised by the types in
:mod:`reconciler.model.types`. Rules that span several fields or documents live in
:mod:`reconciler.core.loading.rules`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from reconciler.model import keys, routerules
from reconciler.model.base import Model
from reconciler.model.diagnostics import Diagnostic
from reconciler.model.invalid import fail
from reconciler.model.names import DNS_CHARS, annotations_size, label_key
from reconciler.model.route import Route, route_rule
from reconciler.model.types import (
    AnnotationKey,
    AnnotationValue,
    Cidr,
    DnsLabel,
    Duration,
    EndpointText,
    HostCidr,
    IPAddress,
    Keepalive,
    LabelKey,
    LabelValue,
    NodeName,
    Port,
    TaintKey,
    duration_seconds,
)

API_VERSION = "topoctl.io/v1alpha1"
RESERVED_PROTOCOLS = routerules.RESERVED_PROTOCOLS


# --- shared pieces -------------------------------------------------------------------


class Taint(Model):
    """A Kubernetes taint applied to member nodes."""

    key: TaintKey = Field(description="Taint key (Kubernetes qualified name).")
    value: LabelValue = Field("", description="Taint value (label-value rules); may be empty.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        description="What the taint does to pods that do not tolerate it."
    )


Labels = Annotated[
    dict[LabelKey, LabelValue],
    Field(description="Labels applied to every member node (merged site -> pool -> node)."),
]
Annotations = Annotated[
    dict[AnnotationKey, AnnotationValue],
    AfterValidator(annotations_size),
    Field(
        description="Annotations applied to every member node (merged site -> pool -> node); "
        "kilo.squat.ai/* and topoctl.io/* keys are refused."
    ),
]
Taints = Annotated[
    tuple[Taint, ...],
    Field(description="Taints applied to every member node (merged site -> pool -> node)."),
]


# --- Site ----------------------------------------------------------------------------


class SiteNode(Model):
    """A member node listed by exact name."""

    name: NodeName = Field(description="The Kubernetes node name.")
    endpoint: EndpointText | None = Field(
        None,
        description="WireGuard endpoint, host:port or host (the mesh port is added) -> "
        "kilo.squat.ai/force-endpoint. host is IPv4, [IPv6] or a lowercase DNS name.",
    )
    internal_ip: HostCidr | None = Field(
        None,
        alias="internalIP",
        description="The node's internal IP -> kilo.squat.ai/force-internal-ip, written as a "
        "/32 or /128 CIDR (Kilo ignores a bare IP).",
    )
    persistent_keepalive: Keepalive | None = Field(
        None, description="Seconds; overrides the site's value (for nodes behind NAT)."
    )
    labels: Labels = {}
    annotations: Annotations = {}
    taints: Taints = ()


_GLOB_CLASS = re.compile(r"\[!?\]?[^\]]*\]")


def _can_match_a_node_name(pattern: str) -> bool:
    """Whether the glob (fnmatchcase) has no literal character a node name cannot hold."""
    literal = _GLOB_CLASS.sub("", pattern).replace("*", "").replace("?", "")
    return set(literal) <= DNS_CHARS


class PoolSelector(Model):
    """Which live nodes a pool claims: all given conditions must hold."""

    match_labels: dict[Annotated[str, BeforeValidator(label_key)], LabelValue] = Field(
        {}, description="Labels the node must carry with these exact values."
    )
    name_pattern: str | None = Field(
        None, description="Shell-style glob on the node name, e.g. fsn1-worker-*."
    )

    @field_validator("name_pattern")
    @classmethod
    def _can_match(cls, pattern: str | None) -> str | None:
        if pattern and not _can_match_a_node_name(pattern):
            fixed = pattern.lower()
            hint = f" - did you mean {fixed!r}?" if _can_match_a_node_name(fixed) else ""
            raise fail(
                "name_pattern",
                "{pattern!r} can never match a node name (lowercase letters, digits, '-' and "
                "'.'){hint}",
                pattern=pattern,
                hint=hint,
            )
        return pattern

    @model_validator(mode="after")
    def _not_empty(self) -> PoolSelector:
        if not self.match_labels and not self.name_pattern:
            raise fail(
                "empty_selector",
                "an empty selector would claim every node in the cluster - give matchLabels, "
                "namePattern, or both",
            )
        return self


class Pool(Model):
    """Member nodes claimed by selector, typically autoscaled."""

    name: DnsLabel = Field(description="Pool name, unique within the site.")
    selector: PoolSelector = Field(description="Which nodes belong to the pool.")
    labels: Labels = {}
    annotations: Annotations = {}
    taints: Taints = ()


class SiteLifecycle(Model):
    """Deletion of dead member nodes."""

    delete_unreachable: StrictBool = Field(
        False, description="Delete member nodes that are NotReady and do not answer ICMP."
    )
    after: Duration = Field("10m", description="How long both must hold (at least 2m).")
    scope: Literal["pools", "all"] = Field(
        "pools", description="pools: only pool members; all: also nodes listed by name."
    )

    @property
    def after_seconds(self) -> int:
        """``after`` in seconds."""
        return duration_seconds(self.after)


class SiteSpec(Model):
    """One Kilo location."""

    leader: tuple[NodeName, ...] = Field(
        (), description="Nodes to pin as Kilo leader candidates (must be listed in nodes)."
    )
    persistent_keepalive: Keepalive | None = Field(
        None, description="Seconds, 1..65535; for nodes behind NAT."
    )
    allowed_location_ips: tuple[Cidr, ...] = Field(
        (),
        alias="allowedLocationIPs",
        description="CIDRs reachable through this location -> kilo.squat.ai/allowed-location-ips "
        "on every member (under mesh granularity full or cross, where each node is a "
        "segment, on one: the first pinned leader, else the first listed node present).",
    )
    labels: Labels = {}
    annotations: Annotations = {}
    taints: Taints = ()
    nodes: tuple[SiteNode, ...] = Field((), description="Members by exact name.")
    pools: tuple[Pool, ...] = Field((), description="Members by selector.")
    routes: tuple[Route, ...] = Field((), description="Routes the node agent keeps on members.")
    lifecycle: SiteLifecycle = Field(
        default_factory=SiteLifecycle, description="Deletion of dead member nodes."
    )


class SiteMetadata(Model):
    """Site identity."""

    name: DnsLabel = Field(description="The Kilo location; a DNS-1123 label, unique.")


class Site(Model):
    """A Kilo location and the nodes that belong to it."""

    api_version: Literal["topoctl.io/v1alpha1"] = Field("topoctl.io/v1alpha1", alias="apiVersion")
    kind: Literal["Site"] = "Site"
    metadata: SiteMetadata
    spec: SiteSpec = Field(default_factory=SiteSpec)

    @property
    def name(self) -> str:
        """The site's (Kilo location's) name."""
        return self.metadata.name


# --- Cluster -------------------------------------------------------------------------


class Mesh(Model):
    """Kilo's mesh settings, as the cluster runs it."""

    granularity: Literal["location", "full", "cross"] = Field(
        "location", description="Kilo --mesh-granularity."
    )
    port: Port = Field(51820, description="Kilo's WireGuard port, for endpoints without one.")
    subnet: Cidr = Field(
        keys.KILO_DEFAULT_SUBNET,
        description="Kilo --subnet: its WireGuard addresses. No route may point inside it "
        "(set the node agent's --kilo-subnet to the same).",
    )


class Addresses(Model):
    """What the node agent detects (local-ccm compatible)."""

    external_ip_target: IPAddress | None = Field(
        "8.8.8.8",
        alias="externalIPTarget",
        description="Source address of the route to it becomes ExternalIP; null disables.",
    )
    internal_ip_target: IPAddress | None = Field(
        None,
        alias="internalIPTarget",
        description="Same for InternalIP; null disables.",
    )


class Network(Model):
    """The cluster's own address ranges: no route may point inside them."""

    pod_cidrs: tuple[Cidr, ...] = Field(
        (),
        alias="podCIDRs",
        description="The cluster's pod CIDRs (kube-controller-manager --cluster-cidr), e.g. "
        "Cozystack's 10.244.0.0/16. Routes inside them are errors; give the node agent the "
        "same (--pod-cidr), which refuses them whatever it is told.",
    )
    service_cidrs: tuple[Cidr, ...] = Field(
        (),
        alias="serviceCIDRs",
        description="The cluster's service CIDRs (kube-apiserver --service-cluster-ip-range), "
        "e.g. Cozystack's 10.96.0.0/16; the node agent's --service-cidr.",
    )


class Protect(Model):
    """Nodes that are never deleted, whatever a site says."""

    match_labels: dict[Annotated[str, BeforeValidator(label_key)], LabelValue] = Field(
        {}, description="Nodes with all of these labels are protected (control-plane always is)."
    )


class ClusterLifecycle(Model):
    """Cluster-wide guard rails for node deletion."""

    max_unreachable_fraction: StrictFloat = Field(
        0.55,
        ge=0.0,
        le=1.0,
        description="A site with more than this fraction of its nodes unreachable deletes "
        "nothing (a partition, not dead nodes).",
    )
    max_deletions_per_hour: StrictInt = Field(10, ge=0, description="Deletion rate limit.")
    protect: Protect = Field(default_factory=Protect, description="Never deleted.")


class RouteSettings(Model):
    """How topoctl marks the routes it owns."""

    protocol: StrictInt = Field(
        keys.DEFAULT_ROUTE_PROTOCOL,
        ge=1,
        le=255,
        description="rtnetlink protocol number that marks routes topoctl owns; the numbers "
        "linux/rtnetlink.h and iproute2's rt_protos give to others are refused.",
    )

    @model_validator(mode="after")
    def _not_reserved(self) -> RouteSettings:
        route_rule("route_protocol", routerules.own_protocol, self.protocol)
        return self


class ClusterSpec(Model):
    """Cluster-wide settings; every field has a default."""

    mesh: Mesh = Field(default_factory=Mesh, description="Kilo's mesh settings.")
    addresses: Addresses = Field(default_factory=Addresses, description="Address detection.")
    uninitialized_taint: Literal["remove", "keep"] = Field(
        "remove",
        description="Whether the agent removes node.cloudprovider.kubernetes.io/uninitialized.",
    )
    unassigned_nodes: Literal["ignore", "warn", "error"] = Field(
        "warn", description="What to do about live nodes that no site claims."
    )
    lifecycle: ClusterLifecycle = Field(
        default_factory=ClusterLifecycle, description="Guard rails for node deletion."
    )
    routes: RouteSettings = Field(default_factory=RouteSettings, description="Route ownership.")
    network: Network = Field(
        default_factory=Network, description="The cluster's ranges no route may point into."
    )


class ClusterMetadata(Model):
    """Cluster identity."""

    name: str = Field("cluster", description="Free text, shown in plans.")


class Cluster(Model):
    """Cluster-wide settings (at most one document in the whole tree)."""

    api_version: Literal["topoctl.io/v1alpha1"] = Field("topoctl.io/v1alpha1", alias="apiVersion")
    kind: Literal["Cluster"] = "Cluster"
    metadata: ClusterMetadata = Field(default_factory=ClusterMetadata)
    spec: ClusterSpec = Field(default_factory=ClusterSpec)


Document = Annotated[Cluster | Site, Field(discriminator="kind")]
KINDS: dict[str, type[Cluster] | type[Site]] = {"Cluster": Cluster, "Site": Site}


@dataclass(frozen=True, eq=False)
class Topology:
    """The whole validated topology: the cluster settings, every site, the file each site
    came from, and what validation warned about (plans show it too)."""

    cluster: Cluster
    sites: tuple[Site, ...]
    files: Mapping[str, str] = field(default_factory=dict)  # site name -> its file
    warnings: tuple[Diagnostic, ...] = ()
