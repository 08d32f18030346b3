"""Talos machine-config patches from the topology: the Talos side of one source of truth.

Pure. A patch has one of two forms, by the Talos version it is for, never both (Talos
refuses a config that sets both: ``V1Alpha1ConflictValidate``, siderolabs/talos
pkg/machinery/config/types/k8s/node.go and kubelet.go):

- Talos 1.14 and later (the multi-document config ``talosctl gen config`` writes from
  1.14 on): a ``KubeNodeConfig`` document (``labels``, ``annotations``, ``taints``) and a
  ``KubeletConfig`` document (``extraArgs``), both ``apiVersion: v1alpha1``, merged by
  Talos into the documents of the same kinds the machine config holds;
- before 1.14: the v1alpha1 fields ``machine.nodeLabels``, ``machine.nodeAnnotations``
  (Talos 1.8+), ``machine.nodeTaints`` and ``machine.kubelet.extraArgs``.

A patch carries, for one node (or one pool, whose members have no name yet):

- the node annotations: every annotation topoctl writes on the node (the Kilo keys
  and the topology's own), with exactly the values ``topoctl apply`` writes: both come
  from :func:`reconciler.core.planning.desired.desired_node`. topoctl's bookkeeping keys
  (``topoctl.io/owned``, ``topoctl.io/agent``) stay with the controller: the agent
  settings follow the predicted leader, which only the live cluster knows;
- the node labels: only the labels a kubelet may set on its own Node under the
  NodeRestriction admission plugin (Talos writes them with the kubelet's identity); the
  others are listed apart and left to the controller;
- the node taints, in Talos's ``key: value:Effect`` form (``key: Effect`` without a
  value; Talos splits at the first colon); Talos keeps one taint per key, so a second
  effect on the same key is left to the controller;
- the kubelet's ``extraArgs.cloud-provider: external``, which makes the kubelet add the
  uninitialized taint that topoctl's agent removes once the addresses are set.

A named node's patch is computed as for a node that carries no labels yet: a pool that
selects by ``matchLabels`` cannot be known from the name, so its values come from the
controller once the node has joined (the patch says which pools could apply).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from reconciler.core.kilo.leader import PER_NODE
from reconciler.core.planning.desired import desired_node
from reconciler.core.planning.membership import ClaimIndex, Member, claims_of
from reconciler.core.rendering.talos_versions import Form
from reconciler.model.state import NodeState, TaintValue
from reconciler.model.topology import Cluster, Site

# NodeRestriction (plugin/pkg/admission/noderestriction) refuses a kubelet's own labels in
# the kubernetes.io and k8s.io namespaces unless they are one of these
# (k8s.io/kubelet/pkg/apis.IsKubeletLabel) or in the kubelet's two namespaces.
KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    }
)
KUBELET_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
NODE_RESTRICTION_NAMESPACE = "node-restriction.kubernetes.io"
Target = Literal["node", "pool"]
CLOUD_PROVIDER = {"cloud-provider": "external"}


def _in_namespace(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def kubelet_may_set(key: str) -> bool:
    """Whether NodeRestriction lets a kubelet set this label on its own Node."""
    namespace = key.split("/", 1)[0] if "/" in key else ""
    if _in_namespace(namespace, NODE_RESTRICTION_NAMESPACE):
        return False
    if _in_namespace(namespace, "kubernetes.io") or _in_namespace(namespace, "k8s.io"):
        return key in KUBELET_LABELS or any(
            _in_namespace(namespace, ns) for ns in KUBELET_NAMESPACES
        )
    return True


class TalosError(ValueError):
    """The node or site asked for is not in the topology."""


@dataclass(frozen=True)
class TalosPatch:
    """The machine-config patch for one node, or for the members of one pool."""

    target: str  # the node's name, or "site/pool"
    kind: Target
    site: str
    annotations: Mapping[str, str]
    labels: Mapping[str, str]  # those the kubelet may set
    labels_left: tuple[str, ...]  # label keys left to the controller
    taints: Mapping[str, str]  # key -> "value:Effect" or "Effect"
    taints_left: tuple[str, ...]  # key:effect left to the controller
    pool: str | None = None  # "site/pool" when the values include a pool's
    label_pools: tuple[str, ...] = ()  # pools that may add values once the node has joined

    def documents(self, form: Form) -> list[dict[str, Any]]:
        """The patch as ``talosctl machineconfig patch --patch @file`` takes it: one
        v1alpha1 document (``machine``), or a KubeNodeConfig and a KubeletConfig
        document (``documents``)."""
        node: dict[str, Any] = {}
        if self.annotations:
            node["annotations"] = dict(sorted(self.annotations.items()))
        if self.labels:
            node["labels"] = dict(sorted(self.labels.items()))
        if self.taints:
            node["taints"] = dict(sorted(self.taints.items()))
        if form == "documents":
            return [
                {"apiVersion": "v1alpha1", "kind": "KubeNodeConfig", **node},
                {"apiVersion": "v1alpha1", "kind": "KubeletConfig", "extraArgs": CLOUD_PROVIDER},
            ]
        machine = {f"node{key.capitalize()}": value for key, value in node.items()}
        machine["kubelet"] = {"extraArgs": CLOUD_PROVIDER}
        return [{"machine": machine}]

    def notes(self) -> list[str]:
        """What the patch leaves out, in words (YAML comments)."""
        out = []
        if self.kind == "pool":
            out.append(f"for every member of pool {self.target} (names not known yet)")
        else:
            pool = f", member of pool {self.pool}" if self.pool else ""
            out.append(f"for node {self.target} in site {self.site}{pool}")
        if self.labels_left:
            out.append(
                "labels the kubelet may not set (NodeRestriction), left to the controller: "
                + ", ".join(self.labels_left)
            )
        if self.taints_left:
            out.append(
                "taints Talos cannot hold beside another effect of the same key, left to the "
                "controller: " + ", ".join(self.taints_left)
            )
        if self.label_pools:
            out.append(
                "pools that select by label may add their values once the node has joined: "
                + ", ".join(self.label_pools)
            )
        return out


def talos_value(taint: TaintValue) -> str:
    """A taint as Talos's ``machine.nodeTaints`` value."""
    return f"{taint.value}:{taint.effect}" if taint.value else taint.effect


def _patch(member: Member, cluster: Cluster, target: str, kind: Target) -> TalosPatch:
    # Under full/cross granularity one member carries the allowed-location-ips, one Kilo
    # counts as Ready, which only the live cluster tells: the controller places them and
    # moves them, so no machine config pins them (Talos would then own them on a node).
    site = member.site
    location_ips = cluster.spec.mesh.granularity not in PER_NODE
    desired = desired_node(site, member, cluster, location_ips)
    labels = {k: v for k, v in desired.labels.items() if kubelet_may_set(k)}
    taints: dict[str, str] = {}
    left: list[str] = []
    for ident, taint in sorted(desired.taints.items()):
        if taint.key in taints:
            left.append(ident)
        else:
            taints[taint.key] = talos_value(taint)
    return TalosPatch(
        target=target,
        kind=kind,
        site=member.site.name,
        annotations=dict(desired.annotations),
        labels=labels,
        labels_left=tuple(sorted(k for k in desired.labels if k not in labels)),
        taints=taints,
        taints_left=tuple(left),
        pool=f"{member.site.name}/{member.pool.name}" if member.pool else None,
    )


def _label_pools(site: Site, name: str) -> tuple[str, ...]:
    """The site's pools that select by label and whose name pattern (if any) fits."""
    return tuple(
        f"{site.name}/{pool.name}"
        for pool in site.spec.pools
        if pool.selector.match_labels
        and (pool.selector.name_pattern is None or fnmatchcase(name, pool.selector.name_pattern))
    )


def node_patch(sites: Iterable[Site], cluster: Cluster, name: str) -> TalosPatch:
    """The patch for the node called ``name``: listed by name, or a pool member by its
    ``namePattern``. Raises TalosError when no site claims it, or several do."""
    sites = tuple(sites)
    members = list(claims_of(ClaimIndex(sites), NodeState(name)).members)
    if not members:  # a pool that also selects by label: the name is what we know
        members = [
            Member(NodeState(name), site, None, pool)
            for site in sites
            for pool in site.spec.pools
            if pool.selector.name_pattern and fnmatchcase(name, pool.selector.name_pattern)
        ]
    if not members:
        raise TalosError(
            f"node {name!r} is not listed in any site, and no pool's namePattern matches it"
        )
    if len(members) > 1:
        where = ", ".join(
            f"{m.site.name}/{m.pool.name}" if m.pool else m.site.name for m in members
        )
        raise TalosError(f"node {name!r} is claimed several times ({where}): fix git first")
    member = members[0]
    patch = _patch(member, cluster, name, "node")
    pools = tuple(
        p
        for p in _label_pools(member.site, name)
        if member.pool is None or not p.endswith("/" + member.pool.name)
    )
    return replace(patch, label_pools=pools)


def site_patches(sites: Iterable[Site], cluster: Cluster, site_name: str) -> list[TalosPatch]:
    """A patch per node listed in the site, then one per pool."""
    sites = tuple(sites)
    site = next((s for s in sites if s.name == site_name), None)
    if site is None:
        known = ", ".join(s.name for s in sites) or "none"
        raise TalosError(f"no site named {site_name!r} (sites: {known})")
    out = [node_patch(sites, cluster, listed.name) for listed in site.spec.nodes]
    for pool in site.spec.pools:
        member = Member(NodeState(f"<{pool.name}>"), site, None, pool)
        out.append(_patch(member, cluster, f"{site.name}/{pool.name}", "pool"))
    return out


def as_yaml(patches: list[TalosPatch], form: Form) -> str:
    """The patches' YAML documents, each patch's first headed by comments saying what it
    is for."""
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    out = io.StringIO()
    first = True
    for patch in patches:
        for i, document in enumerate(patch.documents(form)):
            doc = CommentedMap(document)
            if i == 0:
                doc.yaml_set_start_comment("\n".join(patch.notes()))
            if not first:
                out.write("---\n")
            first = False
            yaml.dump(doc, out)
    return out.getvalue()


def as_json(patches: list[TalosPatch], form: Form) -> str:
    """One patch: the patch itself (``machine``: its document; ``documents``: the list of
    them). Several: an object keyed by node (or site/pool)."""

    def body_of(patch: TalosPatch) -> Any:
        documents = patch.documents(form)
        return documents[0] if form == "machine" else documents

    body = body_of(patches[0]) if len(patches) == 1 else {p.target: body_of(p) for p in patches}
    return json.dumps(body, indent=2, sort_keys=True) + "\n"
