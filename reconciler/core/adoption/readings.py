"""One live node's Kilo keys as a topology can declare them: what Kilo reads there today
(:mod:`reconciler.core.kilo.node`), written in the form ``validate`` accepts (the model's
own validators, whose messages the notes reuse).

A value Kilo ignores is not imported: the plan then removes the key, which Kilo reads the
same way ("same for Kilo"), and a note says what the text seemed to mean and how to get
it. A value Kilo reads but a topology cannot state (an endpoint no location can reach, a
forced internal IP with its subnet's prefix, "no internal IP", a keepalive out of range,
an allowed IP with host bits) leaves the node out of the import: no site claims it, so no
plan touches it, and a note says why and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reconciler.core.adoption.values import Note, NoteKind
from reconciler.core.kilo.node import (
    NO_INTERNAL_IP,
    kilo_allowed_ips,
    kilo_endpoint,
    kilo_internal_ip,
    kilo_keepalive,
    kilo_location,
)
from reconciler.model import keys
from reconciler.model.addresses import canonical_cidr, canonical_endpoint, host_cidr
from reconciler.model.names import dns_label
from reconciler.model.state import NodeState
from reconciler.model.types import keepalive as keepalive_rule


@dataclass(frozen=True)
class NodeKilo:
    """One node's Kilo keys as the topology declares them (what Kilo reads today)."""

    name: str
    location: str
    leader: bool
    endpoint: str | None  # host:port
    internal_ip: str | None  # the address alone
    keepalive: int | None  # 1..65535; None: off
    allowed: tuple[str, ...]  # canonical CIDRs, in the node's order


def refusal(rule: Callable[[Any], Any], value: Any) -> str | None:
    """``validate``'s message for a value one of the model's rules refuses, else None."""
    try:
        rule(value)
    except ValueError as err:
        message = getattr(err, "message", None)
        return message() if callable(message) else str(err)
    return None


def site_name_refusal(location: str) -> str | None:
    """Why a Kilo location cannot be a site's name (a DNS-1123 label), else None."""
    return refusal(dns_label, location)


class _Reader:
    """Reads one node, collecting notes; ``left_out`` is set when it cannot be imported."""

    def __init__(self, node: NodeState, site: str | None) -> None:
        self.node = node
        self.site = site
        self.notes: list[Note] = []
        self.left_out = False

    def note(self, kind: NoteKind, key: str, value: str, text: str, fix: str = "") -> None:
        self.notes.append(
            Note(
                kind,
                self.site,
                (self.node.name,),
                f"{key}: {value!r} on {self.node.name}: {text}",
                fix,
            )
        )

    def leave_out(self, key: str, value: str, text: str, fix: str) -> None:
        self.left_out = True
        self.note(NoteKind.LEFT_OUT, key, value, text, fix)

    def value(self, key: str) -> str | None:
        return self.node.annotations.get(key)

    def endpoint(self) -> str | None:
        value = self.value(keys.KILO_FORCE_ENDPOINT)
        if value is None:
            return None
        read = kilo_endpoint(value) if value else None
        own = self.value(keys.KILO_ENDPOINT) or "none yet"
        if read is None:
            why = refusal(canonical_endpoint, value)
            if why is None:  # validate takes it: a bare host, which Kilo ignores
                self.note(
                    NoteKind.MISREAD,
                    keys.KILO_FORCE_ENDPOINT,
                    value,
                    f"has no port, so Kilo ignores it and uses the endpoint it found ({own}); "
                    "not imported",
                    f"to force it, set endpoint: {value} on the node (topoctl writes it with "
                    "the mesh port)",
                )
            else:
                self.note(
                    NoteKind.MISREAD,
                    keys.KILO_FORCE_ENDPOINT,
                    value,
                    f"Kilo ignores it and uses the endpoint it found ({own}); not imported",
                    why,
                )
            return None
        why = refusal(canonical_endpoint, str(read))
        if why is not None:
            self.leave_out(
                keys.KILO_FORCE_ENDPOINT,
                value,
                f"Kilo uses it, but a site cannot declare it: {why}",
                "give the node an endpoint other locations can reach, or take the "
                "annotation off, and import again",
            )
            return None
        return canonical_endpoint(str(read))

    def internal_ip(self) -> str | None:
        value = self.value(keys.KILO_FORCE_INTERNAL_IP)
        if value is None:
            return None
        read = kilo_internal_ip(value)
        own = self.value(keys.KILO_INTERNAL_IP) or "none yet"
        if read is None:
            why = refusal(host_cidr, value)
            self.note(
                NoteKind.MISREAD,
                keys.KILO_FORCE_INTERNAL_IP,
                value,
                f"Kilo ignores it (it needs ip/prefix) and uses the address it found ({own}); "
                "not imported",
                why
                or f"to force it, set internalIP: {value} on the node (topoctl writes it as "
                f"{canonical_cidr(value)})",
            )
            return None
        if read == NO_INTERNAL_IP:
            self.leave_out(
                keys.KILO_FORCE_INTERNAL_IP,
                value,
                "Kilo reads it as 'no internal IP' (the node is a segment of its own), "
                "which a site cannot declare",
                "keep the node out of git, or take the annotation off "
                f"(kubectl annotate node {self.node.name} {keys.KILO_FORCE_INTERNAL_IP}-) "
                "and import again",
            )
            return None
        why = refusal(host_cidr, read)
        if why is not None:
            self.leave_out(
                keys.KILO_FORCE_INTERNAL_IP,
                value,
                f"Kilo uses {read}, prefix included, but a site declares the address alone "
                f"(written as a /32 or /128): {why}",
                "keep the node out of git, or change the annotation to the address "
                "alone with /32 (/128) and import again",
            )
            return None
        return read.split("/")[0]

    def keepalive(self) -> int | None:
        value = self.value(keys.KILO_PERSISTENT_KEEPALIVE)
        if value is None:
            return None
        seconds = kilo_keepalive(value)
        if 1 <= seconds <= 65535:
            return seconds
        if seconds == 0:
            why = refusal(keepalive_rule, value)  # validate's message: "20s" -> "write 20"
            if value.lstrip("+-").isdigit() and value.isascii():
                self.note(
                    NoteKind.MISREAD,
                    keys.KILO_PERSISTENT_KEEPALIVE,
                    value,
                    "0 turns keepalive off, as no value does; not imported",
                )
            else:
                self.note(
                    NoteKind.MISREAD,
                    keys.KILO_PERSISTENT_KEEPALIVE,
                    value,
                    "Kilo reads 0 (keepalive off); none imported",
                    f"{why}, as persistentKeepalive on the site or the node" if why else "",
                )
            return None
        self.leave_out(
            keys.KILO_PERSISTENT_KEEPALIVE,
            value,
            f"Kilo reads {seconds} seconds, which a site cannot declare: "
            f"{refusal(keepalive_rule, seconds)}",
            "set a keepalive of 1 to 65535 seconds on the node, or take it off, and import again",
        )
        return None

    def allowed(self) -> tuple[str, ...]:
        value = self.value(keys.KILO_ALLOWED_LOCATION_IPS)
        if value is None:
            return ()
        read = kilo_allowed_ips(value)
        dropped = [item for item in value.split(",") if not kilo_allowed_ips(item)]
        if dropped:
            self.note(
                NoteKind.MISREAD,
                keys.KILO_ALLOWED_LOCATION_IPS,
                value,
                f"Kilo drops {', '.join(repr(i) for i in dropped)} (it needs ip/prefix, "
                "split at commas with nothing around them); those are not imported",
                "add what was meant to the site's allowedLocationIPs",
            )
        out = []
        for item in read:
            why = refusal(canonical_cidr, item)
            if why is not None:
                self.leave_out(
                    keys.KILO_ALLOWED_LOCATION_IPS,
                    value,
                    f"Kilo uses {item} as written, but a site cannot declare it: {why}",
                    "fix the annotation and import again",
                )
                return ()
            out.append(canonical_cidr(item))
        return tuple(out)

    def leader(self) -> bool:
        value = self.value(keys.KILO_LEADER)
        if value is None:
            return False
        if value not in ("true", ""):
            self.note(
                NoteKind.MISREAD,
                keys.KILO_LEADER,
                value,
                "Kilo reads the key's presence, whatever its value: the node is a leader "
                'candidate; imported as a pinned leader (the plan writes "true", the same '
                "for Kilo)",
                "to stop it leading, drop it from the site's leader list - the plan then "
                "removes the key and Kilo may elect another leader",
            )
        return True


def read_node(node: NodeState, site: str | None) -> tuple[NodeKilo | None, list[Note]]:
    """The node's Kilo keys as a site declares them, or None when it must be left out;
    and the notes about it. ``site``: the site its location becomes (None: none)."""
    reader = _Reader(node, site)
    read = NodeKilo(
        name=node.name,
        location=kilo_location(node),
        leader=reader.leader(),
        endpoint=reader.endpoint(),
        internal_ip=reader.internal_ip(),
        keepalive=reader.keepalive(),
        allowed=reader.allowed(),
    )
    return (None if reader.left_out else read), reader.notes
