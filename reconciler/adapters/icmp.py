"""ICMP echo probes with icmplib: one request per address, all in flight at once.

Raw sockets when the process may open them (root, CAP_NET_RAW), else the kernel's
unprivileged datagram ICMP sockets, which ``net.ipv4.ping_group_range`` must allow. A
round takes about one timeout, however many addresses (bounded by ``concurrency`` and
the open-file limit: each probe holds one socket while it waits).

Why not ``icmplib.async_multiping``: it gives up the whole round when one address raises,
and its ``async_ping`` counts a request it could not send (no route, a send error) as a
lost packet, so a probe that never left would look like silence. Here the per-address
exchange is written out on icmplib's own sockets and messages, and every socket failure
maps to UNKNOWN with its cause; only a timeout or an ICMP error from the path (host or
network unreachable) is SILENT.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import resource
from collections.abc import Callable, Collection
from datetime import UTC, datetime

from icmplib import (
    AsyncSocket,
    ICMPError,
    ICMPLibError,
    ICMPRequest,
    ICMPv4Socket,
    ICMPv6Socket,
    SocketPermissionError,
    TimeoutExceeded,
)
from icmplib.utils import unique_identifier

from reconciler.model.probe import ProbeOutcome, ProbeRound

_RESERVED_FILES = 64  # open files left for everything else while a round runs


def _utc_now() -> datetime:
    return datetime.now(UTC)


class IcmpProber:
    """A :class:`reconciler.model.probe.Prober` over icmplib."""

    def __init__(
        self,
        timeout: float = 1.0,
        *,
        privileged: bool | None = None,
        concurrency: int = 1024,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """``privileged`` None: raw sockets if they can be opened, else datagram sockets."""
        self.timeout = timeout
        self._privileged = privileged
        self._concurrency = max(1, concurrency)
        self._clock = clock

    @property
    def privileged(self) -> bool:
        """Whether probes use raw sockets (decided on first use when not given)."""
        if self._privileged is None:
            self._privileged = _raw_sockets_allowed()
        return self._privileged

    def probe(self, addresses: Collection[str]) -> ProbeRound:
        """Probe every address once; blocks about one timeout. Not inside an event loop."""
        return asyncio.run(self.aprobe(addresses))

    async def aprobe(self, addresses: Collection[str]) -> ProbeRound:
        """Probe every address once, concurrently."""
        at = self._clock()
        unique = list(dict.fromkeys(addresses))
        gate = asyncio.Semaphore(min(self._concurrency, _file_budget()))
        privileged = self.privileged
        found = await asyncio.gather(*(self._one(a, privileged, gate) for a in unique))
        outcomes = {a: outcome for a, (outcome, _) in zip(unique, found, strict=True)}
        errors = {a: error for a, (outcome, error) in zip(unique, found, strict=True) if error}
        return ProbeRound(at, outcomes, errors)

    async def _one(
        self, address: str, privileged: bool, gate: asyncio.Semaphore
    ) -> tuple[ProbeOutcome, str]:
        try:
            version = ipaddress.ip_address(address).version
        except ValueError:
            return ProbeOutcome.UNKNOWN, f"{address!r} is not an IP address"
        family = ICMPv6Socket if version == 6 else ICMPv4Socket
        async with gate:
            try:
                with AsyncSocket(family(None, privileged)) as sock:
                    request = ICMPRequest(address, id=unique_identifier(), sequence=0)
                    sock.send(request)
                    reply = await sock.receive(request, self.timeout)
                    reply.raise_for_status()
                return ProbeOutcome.ANSWERED, ""
            except TimeoutExceeded:  # before ICMPLibError: it is one
                return ProbeOutcome.SILENT, ""
            except ICMPError:  # unreachable / time exceeded, from the path
                return ProbeOutcome.SILENT, ""
            except SocketPermissionError:
                if privileged:
                    return ProbeOutcome.UNKNOWN, "no permission for raw ICMP sockets"
                return ProbeOutcome.UNKNOWN, (
                    "no permission for datagram ICMP sockets (net.ipv4.ping_group_range)"
                )
            except (ICMPLibError, OSError) as err:
                return ProbeOutcome.UNKNOWN, str(err) or type(err).__name__


def _raw_sockets_allowed() -> bool:
    """Whether this process may open a raw ICMP socket (root or CAP_NET_RAW)."""
    if os.geteuid() != 0:
        return False
    try:
        ICMPv4Socket(None, True).close()
    except SocketPermissionError:
        return False
    return True


def _file_budget() -> int:
    """How many probe sockets may be open at once under the soft open-file limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 16
    return max(1, soft - _RESERVED_FILES)
