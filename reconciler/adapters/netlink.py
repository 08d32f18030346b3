"""Netlink adapter: reads and writes the kernel's routes, in this or a named netns.

Hot paths use a plain rtnetlink socket: the messages are packed and parsed
in reconciler.adapters.netlink_msg (why by hand: see there).

- reads are dumps, every table, both families. Parsing is most of a read's
  cost, so each read keeps what it parsed, by the kernel's bytes: the next
  read parses only entries whose bytes changed (a new gateway, device, metric)
  and drops the memory when the device list or the protocol differs;
- writes are pre-encoded RTM_NEWROUTE / RTM_DELROUTE messages, sent in
  batches on one socket with NLM_F_ACK; every ack is matched to its message
  by sequence number. rtnetlink handles a batch synchronously inside send(),
  so the acks are queued when send() returns and are drained without
  blocking.

pyroute2 opens sockets inside a named network namespace and answers route
lookups (`source_address`). Decisions live in reconciler.core.agent.routes; this
module only moves bytes. Not thread-safe: one adapter per thread.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink.exceptions import NetlinkError

from reconciler.adapters import netlink_msg as msg
from reconciler.core.agent.routes import (
    Action,
    KernelRoute,
    RouteApplyResult,
    RouteDiff,
    RouteFailure,
    RouteKey,
    RouteSnapshot,
    check_own_protocol,
)

NETLINK_ROUTE: Final = 0
SOL_NETLINK: Final = 270
NETLINK_CAP_ACK: Final = 10
NETLINK_EXT_ACK: Final = 11
SO_SNDBUFFORCE: Final = 32
SO_RCVBUFFORCE: Final = 33
_UNREACHABLE: Final = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EACCES, errno.EINVAL, errno.ESRCH}
)

DEFAULT_BATCH_SIZE: Final = 1024
DEFAULT_RCVBUF: Final = 8 << 20
ACK_BUDGET: Final = 2048
"""Receive-buffer bytes one queued ack may cost (skb overhead included), generously."""
_RECV_SIZE: Final = 1 << 18
_DUMP_ATTEMPTS: Final = 5


class NetlinkAdapterError(Exception):
    """The kernel refused a read, or the namespace cannot be opened."""


@dataclass(slots=True)
class _Write:
    action: Action
    route: KernelRoute
    message: bytes


class NetlinkAdapter:
    """Routes, links and route lookups of one network namespace.

    Use as a context manager; `netns=None` is the agent's own namespace.
    `write_messages` counts every write message sent since opening.
    """

    def __init__(
        self,
        netns: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        rcvbuf: int = DEFAULT_RCVBUF,
    ) -> None:
        self.netns = netns
        self._sock = _open_socket(netns)
        try:
            self._batch_size = _fit_batch(self._sock, batch_size, rcvbuf)
        except OSError:
            self._sock.close()
            raise
        self._iproute: Any = None
        self._seq = 0
        self._buffer = bytearray(_RECV_SIZE)
        self._parsed: dict[bytes, KernelRoute | msg.ForeignRoute] = {}
        self._parsed_for: tuple[int, dict[int, str]] | None = None
        self.write_messages = 0

    def __enter__(self) -> NetlinkAdapter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the sockets; idempotent."""
        self._sock.close()
        if self._iproute is not None:
            self._iproute.close()
            self._iproute = None

    # -- reads ---------------------------------------------------------------

    def snapshot(self, protocol: int) -> RouteSnapshot:
        """Our routes (carrying `protocol`) and every other route's slot, all tables."""
        check_own_protocol(protocol)
        names = self._link_names_by_index()
        known = self._parsed if self._parsed_for == (protocol, names) else {}
        parsed: dict[bytes, KernelRoute | msg.ForeignRoute] = {}
        owned: list[KernelRoute] = []
        foreign: dict[RouteKey, int] = {}
        parse, seen = msg.parse_route, known.get
        for family in (socket.AF_INET, socket.AF_INET6):
            for body in self._dump(msg.RTM_GETROUTE, msg.route_dump_body(family)):
                entry = seen(body) or parse(body, protocol, names)
                parsed[body] = entry
                if isinstance(entry, KernelRoute):
                    owned.append(entry)
                else:
                    foreign.setdefault(entry.key, entry.protocol)
        self._parsed, self._parsed_for = parsed, (protocol, names)
        return RouteSnapshot(owned=tuple(owned), foreign_keys=foreign)

    def link_indexes(self) -> dict[str, int]:
        """Device name -> ifindex."""
        return {name: index for index, name in self._link_names_by_index().items()}

    def source_address(self, target: str) -> str | None:
        """Preferred source address of the route to `target` (what `ip route get` shows).

        None when the kernel has no usable route (no route, network or host
        unreachable, prohibit, blackhole). Raises ValueError for a target that
        is not an IP address, NetlinkAdapterError for any other refusal.
        """
        address = ipaddress.ip_address(target)
        try:
            replies = self._lookup_socket().route("get", dst=str(address))
        except NetlinkError as error:
            if error.code in _UNREACHABLE:
                return None
            raise NetlinkAdapterError(
                f"route lookup for {address} failed: {os.strerror(error.code)}"
            ) from error
        for reply in replies:
            source = reply.get("RTA_PREFSRC")
            if source:
                return str(source)
        return None

    # -- writes --------------------------------------------------------------

    def apply(self, diff: RouteDiff) -> RouteApplyResult:
        """Write `diff`: replaces, then deletes; every ack checked, failures per route.

        A route naming a missing device is reported and not sent. A delete
        that finds nothing to remove (ESRCH) counts as done: the route is gone.
        Raises ValueError, before sending anything, if a route carries a
        protocol topoctl may not own (Kilo's static routes among them).
        """
        if not diff.writes:
            return RouteApplyResult()
        for protocol in {route.protocol for route in (*diff.replace, *diff.delete)}:
            check_own_protocol(protocol)
        indexes = self.link_indexes()
        writes: list[_Write] = []
        failed: list[RouteFailure] = []
        for route in diff.replace:
            if route.dev is not None and route.dev not in indexes:
                failed.append(_missing_device(route))
                continue
            exclusive = route.key in diff.vacant_slots
            envelope = msg.replace_envelope(route, self._next_seq(), exclusive)
            oif = indexes[route.dev] if route.dev is not None else None
            writes.append(_Write("replace", route, msg.encode_route(envelope, route, oif)))
        for route in diff.delete:
            oif = indexes.get(route.dev) if route.dev is not None else None
            envelope = msg.delete_envelope(self._next_seq())
            writes.append(_Write("delete", route, msg.encode_route(envelope, route, oif)))
        replaced: list[KernelRoute] = []
        deleted: list[KernelRoute] = []
        for write, outcome in zip(writes, self._send_all(writes), strict=True):
            if outcome is None or (write.action == "delete" and outcome[0] == errno.ESRCH):
                (replaced if write.action == "replace" else deleted).append(write.route)
            else:
                failed.append(_failure(write, *outcome))
        return RouteApplyResult(
            replaced=tuple(replaced),
            deleted=tuple(deleted),
            failed=tuple(failed),
            messages_sent=len(writes),
        )

    # -- plumbing ------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFFFFFF + 1
        return self._seq

    def _send_all(self, writes: Sequence[_Write]) -> list[tuple[int, str] | None]:
        """Send in batches; per write, None on success or (errno, detail for the reason)."""
        outcomes: list[tuple[int, str] | None] = []
        for start in range(0, len(writes), self._batch_size):
            outcomes.extend(self._send_batch(writes[start : start + self._batch_size]))
        return outcomes

    def _send_batch(self, batch: Sequence[_Write]) -> list[tuple[int, str] | None]:
        seqs = [msg.sequence(w.message) for w in batch]
        try:
            self._sock.send(b"".join(w.message for w in batch))
        except OSError as error:
            code = error.errno or errno.EIO
            return [(code, "not sent")] * len(batch)
        self.write_messages += len(batch)
        acks = self._drain_acks(set(seqs))
        lost = (errno.ENOBUFS, "acknowledgement lost to a receive-buffer overrun; re-read")
        return [acks.get(seq, lost) for seq in seqs]

    def _drain_acks(self, pending: set[int]) -> dict[int, tuple[int, str] | None]:
        """Read the queued acks of `pending` sequence numbers without blocking."""
        acks: dict[int, tuple[int, str] | None] = {}
        view = memoryview(self._buffer)
        while pending:
            try:
                size = self._sock.recv_into(self._buffer, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    continue  # some acks were dropped; the rest are still queued
                raise
            for seq, outcome in msg.parse_acks(view[:size]):
                if seq in pending:
                    pending.discard(seq)
                    acks[seq] = outcome
        return acks

    def _dump(self, msg_type: int, body: bytes) -> list[bytes]:
        """The message bodies (after nlmsghdr) of a complete dump, read again if it changed."""
        for _ in range(_DUMP_ATTEMPTS):
            messages, interrupted = self._dump_once(msg_type, body)
            if not interrupted:
                return messages
        raise NetlinkAdapterError(f"dump {msg_type} kept changing under {_DUMP_ATTEMPTS} reads")

    def _dump_once(self, msg_type: int, body: bytes) -> tuple[list[bytes], bool]:
        seq = self._next_seq()
        self._sock.send(msg.dump_request(msg_type, seq, body))
        reply = msg.DUMP_REPLIES[msg_type]
        messages: list[bytes] = []
        interrupted = False
        while True:
            try:
                data = self._sock.recv(_RECV_SIZE)
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    continue  # left over from a write batch: dumps wait for room, never drop
                raise
            for offset, length, kind, flags, msg_seq in msg.headers(data):
                if msg_seq != seq:
                    continue
                interrupted |= bool(flags & msg.NLM_F_DUMP_INTR)
                if kind == msg.NLMSG_DONE:
                    return messages, interrupted
                if kind == msg.NLMSG_ERROR:
                    code = msg.error_code(data, offset)
                    raise NetlinkAdapterError(f"dump {msg_type} failed: {os.strerror(code)}")
                if kind == reply:
                    messages.append(data[offset + msg.HDR_LEN : offset + length])

    def _link_names_by_index(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for message in self._dump(msg.RTM_GETLINK, msg.link_dump_body()):
            link = msg.link_name(message)
            if link is not None:
                names[link[0]] = link[1]
        return names

    def _lookup_socket(self) -> Any:
        if self._iproute is None:
            self._iproute = IPRoute(netns=self.netns, flags=0, groups=0)
        return self._iproute


def _open_socket(netns: str | None) -> socket.socket:
    if netns is None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    elif netns not in pyroute2_netns.listnetns():
        raise NetlinkAdapterError(f"network namespace {netns!r} not found")
    else:
        sock = pyroute2_netns.create_socket(
            netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE, flags=0
        )
    try:
        sock.bind((0, 0))
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    except OSError:
        sock.close()
        raise
    return sock


def _fit_batch(sock: socket.socket, batch_size: int, rcvbuf: int) -> int:
    """Size the buffers for a batch's acks; shrink the batch if the kernel caps them."""
    for force, plain, size in (
        (SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf),
        (SO_SNDBUFFORCE, socket.SO_SNDBUF, rcvbuf // 2),
    ):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, plain, size)
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    return max(1, min(batch_size, granted // ACK_BUDGET))


def _missing_device(route: KernelRoute) -> RouteFailure:
    return RouteFailure(route, "replace", f"device {route.dev} not found", errno.ENODEV)


def _failure(write: _Write, code: int, detail: str) -> RouteFailure:
    reason = _explain(write.action, write.route, code)
    return RouteFailure(
        write.route, write.action, f"{reason} ({detail})" if detail else reason, code
    )


def _explain(action: Action, route: KernelRoute, code: int) -> str:
    """A reason a person can act on, from the errno of a refused write."""
    if code == errno.ENODEV:
        return f"device {route.dev or '(chosen by the kernel)'} not found"
    if code == errno.ENETDOWN:
        return f"device {route.dev} is down"
    if code in (errno.ENETUNREACH, errno.EHOSTUNREACH) and route.gateway is not None:
        return f"gateway {route.gateway} unreachable"
    if code == errno.EEXIST and action == "replace":
        return "slot taken by a route added since the read; left untouched"
    if code in (errno.EPERM, errno.EACCES):
        return "not permitted (needs CAP_NET_ADMIN)"
    return f"{action} failed: {os.strerror(code)}"
