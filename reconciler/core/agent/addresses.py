"""The node's addresses, as Cozystack's local-ccm sets them, and the uninitialized taint
that goes once they are in place. Pure.

Addresses are merged, never replaced by type (a second InternalIP on a dual-stack node
survives, unlike local-ccm's); the taint goes only once every enabled detection found
an address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from reconciler.model import keys
from reconciler.model.settings import AgentSettings
from reconciler.model.state import TaintValue

Address = tuple[str, str]  # (type, address), as NodeState holds it


def _family(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def merge_addresses(
    current: Sequence[Address], external: str | None, internal: str | None
) -> tuple[Address, ...]:
    """Status addresses with the detected ones in place; everything else kept.

    A detected address replaces the first address of the same type and family, unless
    it is listed already; other families and types (Hostname, a second InternalIP) stay.
    An ExternalIP equal to an InternalIP is dropped: it is not an address from outside.
    """
    out = [(kind, address) for kind, address in current]

    def put(kind: str, address: str) -> None:
        if (kind, address) in out:
            return  # already listed (maybe second of its family): never duplicate it
        family = _family(address)
        for i, (other_kind, other) in enumerate(out):
            if other_kind == kind and _family(other) == family:
                out[i] = (kind, address)
                return
        last = max((i for i, e in enumerate(out) if e[0] == kind), default=len(out) - 1)
        out.insert(last + 1, (kind, address))

    if internal is not None:
        put("InternalIP", internal)
    if external is not None:
        put("ExternalIP", external)
    internals = {a for kind, a in out if kind == "InternalIP"}
    return tuple(e for e in out if not (e[0] == "ExternalIP" and e[1] in internals))


def addresses_ready(settings: AgentSettings, external: str | None, internal: str | None) -> bool:
    """Every enabled detection produced an address (the taint may go)."""
    return (settings.external_ip_target is None or external is not None) and (
        settings.internal_ip_target is None or internal is not None
    )


def without_uninitialized(taints: Sequence[TaintValue]) -> tuple[TaintValue, ...] | None:
    """The taint list without the cloud-provider taint, or None when it is not there."""
    kept = tuple(t for t in taints if t.key != keys.TAINT_UNINITIALIZED)
    return kept if len(kept) != len(taints) else None
