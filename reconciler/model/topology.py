"""Pydantic models of the topology contract (TOPOLOGY.md): the ``Cluster`` and ``Site`` kinds.

Field names are the YAML's (camelCase aliases); every field has a description, which feeds
the JSON Schema in ``schema/``. Values Kilo reads are canonicalised by the types in
:mod:`reconciler.model.types`. Rules that span several fields or documents live in
:mod:`reconciler.core.rules`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from reconciler.model import keys, routerules
from reconciler.model.invalid import fail
from reconciler.model.names import annotations_size, label_key
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


class Model(BaseModel):
    """Base: immutable, unknown fields refused, camelCase names in YAML."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=False,
    )


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


def _route_rule(kind: str, rule: Callable[[Any], Any], value: Any) -> Any:
    try:
        return rule(value)
    except routerules.RouteRuleError as error:
        raise fail(kind, "{text}", text=str(error)) from None


def _table(value: Any) -> int | str:
    table = _route_rule("route_table", routerules.table_id, value)
    return "main" if table == keys.MAIN_TABLE else table


def _via(value: Any) -> str:
    if value == "leader":
        return "leader"
    return str(_route_rule("ip_address", routerules.gateway, value))


def _device(value: Any) -> str:
    return str(_route_rule("device", routerules.device_name, value))


def _destination(value: str) -> str:
    return str(_route_rule("route_to", routerules.destination, value))


RouteTable = Annotated[
    int | str,
    BeforeValidator(_table),
    WithJsonSchema(
        {
            "anyOf": [
                {"const": "main"},
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 4294967295,
                    "not": {"enum": sorted(routerules.RESERVED_TABLES)},
                },
            ]
        }
    ),
]
Via = Annotated[
    str,
    BeforeValidator(_via),
    WithJsonSchema({"type": "string", "description": "an IP address or 'leader'"}),
]
Device = Annotated[str, BeforeValidator(_device), WithJsonSchema({"type": "string"})]


class Route(Model):
    """A route the node agent keeps on member nodes, marked with topoctl's protocol."""

    to: Annotated[Cidr, AfterValidator(_destination)] = Field(
        description="Destination: an IP address or CIDR."
    )
    via: Via | None = Field(
        None,
        description="Gateway: an IP address, or `leader` (the predicted leader's InternalIP). "
        "May be omitted when `dev` is given (a device route).",
    )
    dev: Device | None = Field(
        None, description="Output device, e.g. cilium_tunl (1 to 15 bytes, as Linux counts)."
    )
    onlink: StrictBool = Field(False, description="Treat the gateway as directly reachable.")
    on: Literal["all", "leader", "non-leaders"] = Field(
        "all", description="Which member nodes get the route."
    )
    metric: StrictInt = Field(
        0,
        ge=0,
        le=0xFFFFFFFF,
        description="Route priority (metric). For IPv6, 0 is 1024: the same slot.",
    )
    table: RouteTable = Field(
        "main",
        description="Routing table: main or a number; 0, 253 (default), 255 (local) and "
        "1107 (Kilo's) are refused.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Route:
        if self.via is None and self.dev is None:
            raise fail("route_target", "a route needs `via` (a gateway or leader), `dev`, or both")
        if self.via == "leader" and self.on == "leader":
            raise fail(
                "route_via_leader",
                "`via: leader` on `on: leader`: the leader cannot route via itself - use "
                "`on: non-leaders`",
            )
        if self.via not in (None, "leader"):
            family = ipaddress.ip_network(self.to).version
            if ipaddress.ip_address(self.via).version != family:
                raise fail(
                    "route_family",
                    "`via: {via}` is IPv{gw} but `to: {to}` is IPv{family}",
                    via=self.via,
                    to=self.to,
                    gw=10 - family,
                    family=family,
                )
        return self

    @property
    def table_id(self) -> int:
        """The numeric routing table (main is 254)."""
        return keys.MAIN_TABLE if self.table == "main" else int(self.table)


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
_NODE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")


def _can_match_a_node_name(pattern: str) -> bool:
    """Whether the glob (fnmatchcase) has no literal character a node name cannot hold."""
    literal = _GLOB_CLASS.sub("", pattern).replace("*", "").replace("?", "")
    return set(literal) <= _NODE_NAME_CHARS


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
        _route_rule("route_protocol", routerules.own_protocol, self.protocol)
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
