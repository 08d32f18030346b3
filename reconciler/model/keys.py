"""Every annotation, label, taint and condition key topoctl reads or writes, in one place."""

from typing import Final

KILO: Final = "kilo.squat.ai/"
TOPOCTL: Final = "topoctl.io/"

# Kilo keys a user sets: topoctl declares them fully on member nodes.
KILO_LOCATION: Final = KILO + "location"
KILO_LEADER: Final = KILO + "leader"
KILO_FORCE_ENDPOINT: Final = KILO + "force-endpoint"
KILO_FORCE_INTERNAL_IP: Final = KILO + "force-internal-ip"
KILO_PERSISTENT_KEEPALIVE: Final = KILO + "persistent-keepalive"
KILO_ALLOWED_LOCATION_IPS: Final = KILO + "allowed-location-ips"
KILO_USER_KEYS: Final = frozenset(
    {
        KILO_LOCATION,
        KILO_LEADER,
        KILO_FORCE_ENDPOINT,
        KILO_FORCE_INTERNAL_IP,
        KILO_PERSISTENT_KEEPALIVE,
        KILO_ALLOWED_LOCATION_IPS,
    }
)

# Keys Kilo writes itself: never written by topoctl (but see KILO_MIRRORS).
KILO_ENDPOINT: Final = KILO + "endpoint"
KILO_INTERNAL_IP: Final = KILO + "internal-ip"
KILO_KEY: Final = KILO + "key"
KILO_LAST_SEEN: Final = KILO + "last-seen"
KILO_WIREGUARD_IP: Final = KILO + "wireguard-ip"
KILO_DISCOVERED_ENDPOINTS: Final = KILO + "discovered-endpoints"
KILO_GRANULARITY: Final = KILO + "granularity"
KILO_CNI_COMPATIBILITY_IP: Final = KILO + "cni-compatibility-ip"

# When topoctl removes a force-* key it owned, Kilo's stale copy goes too.
KILO_MIRRORS: Final = {
    KILO_FORCE_ENDPOINT: KILO_ENDPOINT,
    KILO_FORCE_INTERNAL_IP: KILO_INTERNAL_IP,
}

# topoctl's own bookkeeping on each Node.
TOPOCTL_OWNED: Final = TOPOCTL + "owned"
TOPOCTL_AGENT: Final = TOPOCTL + "agent"
# On the List `topoctl snapshot` writes: when the nodes were read (see model/captured.py).
TOPOCTL_CAPTURED_AT: Final = TOPOCTL + "captured-at"

# Talos lists the keys it manages on a node in these annotations (comma-separated).
TALOS_OWNED_LABELS: Final = "talos.dev/owned-labels"
TALOS_OWNED_ANNOTATIONS: Final = "talos.dev/owned-annotations"
TALOS_OWNED_TAINTS: Final = "talos.dev/owned-taints"

# Cloud-provider initialisation (what local-ccm removes).
TAINT_UNINITIALIZED: Final = "node.cloudprovider.kubernetes.io/uninitialized"

# Node lifecycle.
LABEL_CONTROL_PLANE: Final = "node-role.kubernetes.io/control-plane"
LABEL_MASTER: Final = "node-role.kubernetes.io/master"
LABEL_EXCLUDE_LIFECYCLE: Final = "node.kubernetes.io/exclude-from-lifecycle-management"
TAINT_UNREACHABLE: Final = "node.kubernetes.io/unreachable"

# The Node condition the agent reports.
CONDITION_AGENT: Final = "TopologyReady"

# Kilo's own route markers (docs/domain.md): never touched by topoctl.
KILO_ROUTE_PROTOCOL: Final = 4
KILO_RETURN_TABLE: Final = 1107
KILO_DEFAULT_SUBNET: Final = "10.4.0.0/16"  # Kilo's --subnet: the WireGuard addresses
MAIN_TABLE: Final = 254  # the kernel's main routing table (RT_TABLE_MAIN)
DEFAULT_ROUTE_PROTOCOL: Final = 193
