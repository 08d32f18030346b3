"""Netlink adapter: reads and writes the kernel's routes, in this or a named netns.

Hot paths use a plain rtnetlink socket because pyroute2 is the bottleneck
there (measured on 10,000 routes: pyroute2 decodes a dump in 1.2 s and
encodes one route message in 0.2 ms; struct parsing and packing take 0.05 s
and a few microseconds):

- reads are dumps parsed with `struct`, keeping only the attributes a Route
  needs;
- writes are pre-encoded RTM_NEWROUTE / RTM_DELROUTE messages, sent in
  batches on one socket with NLM_F_ACK; every ack is matched to its message
  by sequence number. rtnetlink handles a batch synchronously inside send(),
  so the acks are queued when send() returns and are drained without
  blocking.

pyroute2 opens sockets inside a named network namespace and answers route
lookups (`source_address`). Decisions live in reconciler.core.routes; this
module only moves bytes. Not thread-safe: one adapter per thread.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, NamedTuple

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink.exceptions import NetlinkError

from reconciler.core.routes import (
    Action,
    ApplyResult,
    Route,
    RouteDiff,
    RouteFailure,
    RouteKey,
    RouteSnapshot,
    check_own_protocol,
)

# Kernel ABI (linux/netlink.h, linux/rtnetlink.h): stable numbers.
NETLINK_ROUTE: Final = 0
SOL_NETLINK: Final = 270
NETLINK_CAP_ACK: Final = 10
NETLINK_EXT_ACK: Final = 11
SO_SNDBUFFORCE: Final = 32
SO_RCVBUFFORCE: Final = 33

NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x1
NLM_F_MULTI: Final = 0x2
NLM_F_ACK: Final = 0x4
NLM_F_DUMP_INTR: Final = 0x10
NLM_F_DUMP: Final = 0x300
NLM_F_REPLACE: Final = 0x100
NLM_F_EXCL: Final = 0x200
NLM_F_CREATE: Final = 0x400
NLM_F_CAPPED: Final = 0x100  # in an ack
NLM_F_ACK_TLVS: Final = 0x200  # in an ack
NLMSGERR_ATTR_MSG: Final = 1

RTM_NEWLINK: Final = 16
RTM_GETLINK: Final = 18
RTM_NEWROUTE: Final = 24
RTM_DELROUTE: Final = 25
RTM_GETROUTE: Final = 26
IFLA_IFNAME: Final = 3
IFLA_EXT_MASK: Final = 29
RTEXT_FILTER_SKIP_STATS: Final = 1 << 3
RTA_DST: Final = 1
RTA_OIF: Final = 4
RTA_GATEWAY: Final = 5
RTA_PRIORITY: Final = 6
RTA_TABLE: Final = 15
RTN_UNSPEC: Final = 0
RTN_UNICAST: Final = 1
RT_SCOPE_UNIVERSE: Final = 0
RT_SCOPE_LINK: Final = 253
RT_SCOPE_NOWHERE: Final = 255
RTNH_F_ONLINK: Final = 4

_NLMSGHDR: Final = struct.Struct("=IHHII")
_RTMSG: Final = struct.Struct("=BBBBBBBBI")
_IFINFOMSG: Final = struct.Struct("=BxHiII")
_RTATTR: Final = struct.Struct("=HH")
_RTA_U32: Final = struct.Struct("=HHI")
_U32: Final = struct.Struct("=I")
_I32: Final = struct.Struct("=i")
_new_key = tuple.__new__  # RouteKey(...) costs 3x more; one key per route per read
_inet_ntop = socket.inet_ntop
_inet_pton = socket.inet_pton
_HDR_LEN: Final = _NLMSGHDR.size
_RTMSG_END: Final = _HDR_LEN + _RTMSG.size
_FAMILIES: Final = {4: socket.AF_INET, 6: socket.AF_INET6}
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


class _Envelope(NamedTuple):
    """What a route message says besides the route itself."""

    msg_type: int
    flags: int
    seq: int
    scope: int
    kind: int


@dataclass(slots=True)
class _Write:
    action: Action
    route: Route
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
        owned: list[Route] = []
        foreign: dict[RouteKey, int] = {}
        for family in (socket.AF_INET, socket.AF_INET6):
            for message in self._dump(RTM_GETROUTE, _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)):
                _sort_route(message, protocol, names, owned, foreign)
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

    def apply(self, diff: RouteDiff) -> ApplyResult:
        """Write `diff`: replaces, then deletes; every ack checked, failures per route.

        A route naming a missing device is reported and not sent. A delete
        that finds nothing to remove (ESRCH) counts as done: the route is gone.
        Raises ValueError, before sending anything, if a route carries a
        protocol topoctl may not own (Kilo's static routes among them).
        """
        if not diff.writes:
            return ApplyResult()
        for protocol in {route.protocol for route in (*diff.replace, *diff.delete)}:
            check_own_protocol(protocol)
        indexes = self.link_indexes()
        writes: list[_Write] = []
        failed: list[RouteFailure] = []
        for route in diff.replace:
            if route.dev is not None and route.dev not in indexes:
                failed.append(_missing_device(route))
                continue
            flags = NLM_F_EXCL if route.key in diff.vacant_slots else NLM_F_REPLACE
            writes.append(_Write("replace", route, self._encode_replace(route, indexes, flags)))
        for route in diff.delete:
            writes.append(_Write("delete", route, self._encode_delete(route, indexes)))
        replaced: list[Route] = []
        deleted: list[Route] = []
        for write, outcome in zip(writes, self._send_all(writes), strict=True):
            if outcome is None or (write.action == "delete" and outcome[0] == errno.ESRCH):
                (replaced if write.action == "replace" else deleted).append(write.route)
            else:
                failed.append(_failure(write, *outcome))
        return ApplyResult(
            replaced=tuple(replaced),
            deleted=tuple(deleted),
            failed=tuple(failed),
            messages_sent=len(writes),
        )

    # -- plumbing ------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFFFFFF + 1
        return self._seq

    def _encode_replace(self, route: Route, indexes: dict[str, int], exclusive: int) -> bytes:
        flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | exclusive
        family = _FAMILIES[route.version]
        scope = RT_SCOPE_LINK if route.gateway is None and family == socket.AF_INET else 0
        oif = indexes[route.dev] if route.dev is not None else None
        envelope = _Envelope(RTM_NEWROUTE, flags, self._next_seq(), scope, RTN_UNICAST)
        return _encode_route(envelope, route, oif)

    def _encode_delete(self, route: Route, indexes: dict[str, int]) -> bytes:
        flags = NLM_F_REQUEST | NLM_F_ACK
        oif = indexes.get(route.dev) if route.dev is not None else None
        envelope = _Envelope(RTM_DELROUTE, flags, self._next_seq(), RT_SCOPE_NOWHERE, RTN_UNSPEC)
        return _encode_route(envelope, route, oif)

    def _send_all(self, writes: Sequence[_Write]) -> list[tuple[int, str] | None]:
        """Send in batches; per write, None on success or (errno, detail for the reason)."""
        outcomes: list[tuple[int, str] | None] = []
        for start in range(0, len(writes), self._batch_size):
            outcomes.extend(self._send_batch(writes[start : start + self._batch_size]))
        return outcomes

    def _send_batch(self, batch: Sequence[_Write]) -> list[tuple[int, str] | None]:
        seqs = [_NLMSGHDR.unpack_from(w.message)[3] for w in batch]
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
            for seq, outcome in _parse_acks(view[:size]):
                if seq in pending:
                    pending.discard(seq)
                    acks[seq] = outcome
        return acks

    def _dump(self, msg_type: int, body: bytes) -> list[memoryview]:
        """The messages of a complete dump, read again if it changed while being read."""
        for _ in range(_DUMP_ATTEMPTS):
            messages, interrupted = self._dump_once(msg_type, body)
            if not interrupted:
                return messages
        raise NetlinkAdapterError(f"dump {msg_type} kept changing under {_DUMP_ATTEMPTS} reads")

    def _dump_once(self, msg_type: int, body: bytes) -> tuple[list[memoryview], bool]:
        seq = self._next_seq()
        header = _NLMSGHDR.pack(_HDR_LEN + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
        self._sock.send(header + body)
        messages: list[memoryview] = []
        interrupted = False
        while True:
            try:
                data = memoryview(self._sock.recv(_RECV_SIZE))
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    continue  # left over from a write batch: dumps wait for room, never drop
                raise
            for offset, length, kind, flags, msg_seq in _headers(data):
                if msg_seq != seq:
                    continue
                interrupted |= bool(flags & NLM_F_DUMP_INTR)
                if kind == NLMSG_DONE:
                    return messages, interrupted
                if kind == NLMSG_ERROR:
                    code = -_I32.unpack_from(data, offset + _HDR_LEN)[0]
                    raise NetlinkAdapterError(f"dump {msg_type} failed: {os.strerror(code)}")
                messages.append(data[offset : offset + length])

    def _link_names_by_index(self) -> dict[int, str]:
        body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _RTA_U32.pack(
            8, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS
        )
        names: dict[int, str] = {}
        for message in self._dump(RTM_GETLINK, body):
            if _NLMSGHDR.unpack_from(message)[1] != RTM_NEWLINK:
                continue
            index = _IFINFOMSG.unpack_from(message, _HDR_LEN)[2]
            for kind, start, end in _attributes(message, _HDR_LEN + _IFINFOMSG.size):
                if kind == IFLA_IFNAME:
                    names[index] = bytes(message[start:end]).rstrip(b"\0").decode()
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


def _encode_route(envelope: _Envelope, route: Route, oif: int | None) -> bytes:
    """One route message; scope NOWHERE and type UNSPEC are the kernel's wildcards for deletes.

    Packed in one call with a struct per message shape: three times faster
    than packing the header and each attribute apart.
    """
    family = _FAMILIES[route.version]
    address, _, prefix = route.dst.partition("/")
    packed_dst = _inet_pton(family, address)
    size = len(packed_dst)
    fields: list[int | bytes] = [
        envelope.msg_type,
        envelope.flags,
        envelope.seq,
        0,  # nlmsg_pid: the kernel
        family,
        int(prefix),
        0,  # src_len
        0,  # tos
        route.table if route.table < 256 else 0,  # RT_TABLE_UNSPEC: RTA_TABLE says which
        route.protocol,
        envelope.scope,
        envelope.kind,
        RTNH_F_ONLINK if route.onlink else 0,
        *(8, RTA_TABLE, route.table),
        *(8, RTA_PRIORITY, route.metric),
        *(4 + size, RTA_DST, packed_dst),
    ]
    if route.gateway is not None:
        fields += (4 + size, RTA_GATEWAY, _inet_pton(family, route.gateway))
    if oif is not None:
        fields += (8, RTA_OIF, oif)
    layout = _message_layout(size, route.gateway is not None, oif is not None)
    return layout.pack(layout.size, *fields)


@functools.cache
def _message_layout(address_size: int, gateway: bool, oif: bool) -> struct.Struct:
    """nlmsghdr + rtmsg + RTA_TABLE + RTA_PRIORITY + RTA_DST [+ RTA_GATEWAY] [+ RTA_OIF]."""
    address = f"HH{address_size}s"  # 4- and 16-byte addresses keep attributes aligned
    return struct.Struct(
        "=IHHII" + "BBBBBBBBI" + "HHI" * 2 + address + address * gateway + "HHI" * oif
    )


def _headers(data: memoryview) -> Iterator[tuple[int, int, int, int, int]]:
    """(offset, length, type, flags, seq) of each message in one datagram."""
    offset = 0
    end = len(data)
    while offset + _HDR_LEN <= end:
        length, kind, flags, seq, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _HDR_LEN:
            return
        yield offset, length, kind, flags, seq
        offset += (length + 3) & ~3


def _attributes(message: memoryview, offset: int) -> Iterator[tuple[int, int, int]]:
    """(type, value start, value end) of each attribute from `offset` on."""
    end = len(message)
    while offset + 4 <= end:
        length, kind = _RTATTR.unpack_from(message, offset)
        if length < 4:
            return
        yield kind & 0x3FFF, offset + 4, offset + length
        offset += (length + 3) & ~3


def _sort_route(
    message: memoryview,
    protocol: int,
    names: dict[int, str],
    owned: list[Route],
    foreign: dict[RouteKey, int],
) -> None:
    """File one RTM_NEWROUTE dump entry as an owned Route or a foreign slot."""
    family, dst_len, _, _, rtm_table, rtm_protocol, _, _, flags = _RTMSG.unpack_from(
        message, _HDR_LEN
    )
    table, metric, oif = rtm_table, 0, 0
    dst: memoryview | None = None
    gateway: memoryview | None = None
    offset, end = _RTMSG_END, len(message)
    unpack_header, unpack_u32 = _RTATTR.unpack_from, _U32.unpack_from
    while offset + 4 <= end:  # _attributes() inlined: this loop runs per route per read
        length, attr = unpack_header(message, offset)
        if length < 4:
            break
        if attr == RTA_TABLE:
            table = unpack_u32(message, offset + 4)[0]
        elif attr == RTA_DST:
            dst = message[offset + 4 : offset + length]
        elif attr == RTA_PRIORITY:
            metric = unpack_u32(message, offset + 4)[0]
        elif attr == RTA_GATEWAY:
            gateway = message[offset + 4 : offset + length]
        elif attr == RTA_OIF:
            oif = unpack_u32(message, offset + 4)[0]
        offset += (length + 3) & ~3
    prefix = f"{_address(family, dst)}/{dst_len}"
    if rtm_protocol != protocol:
        foreign.setdefault(_new_key(RouteKey, (table, prefix, metric)), rtm_protocol)
        return
    via = _address(family, gateway) if gateway is not None else None
    onlink = bool(flags & RTNH_F_ONLINK)
    owned.append(Route(prefix, via, names.get(oif), table, metric, onlink, rtm_protocol))


def _address(family: int, packed: memoryview | None) -> str:
    """Canonical text of a packed address (None: the unspecified one, for default routes)."""
    if family == socket.AF_INET:
        return _inet_ntop(family, packed) if packed is not None else "0.0.0.0"
    if packed is None:
        return "::"
    return ipaddress.IPv6Address(bytes(packed)).compressed  # the same text Route.build gives


def _parse_acks(data: memoryview) -> Iterator[tuple[int, tuple[int, str] | None]]:
    """(seq, None | (errno, detail)) of each ack in one datagram."""
    for offset, length, kind, flags, seq in _headers(data):
        if kind != NLMSG_ERROR:
            continue
        code = -_I32.unpack_from(data, offset + _HDR_LEN)[0]
        if code == 0:
            yield seq, None
            continue
        text = _ack_message(data[offset : offset + length], flags)
        yield seq, (code, f"kernel: {text}" if text else "")


def _ack_message(ack: memoryview, flags: int) -> str:
    """The kernel's extended-ack text, if it sent one."""
    if not flags & NLM_F_ACK_TLVS:
        return ""
    request_length = _HDR_LEN if flags & NLM_F_CAPPED else _U32.unpack_from(ack, _HDR_LEN + 4)[0]
    start = _HDR_LEN + 4 + ((request_length + 3) & ~3)
    for kind, value_start, value_end in _attributes(ack, start):
        if kind == NLMSGERR_ATTR_MSG:
            return bytes(ack[value_start:value_end]).rstrip(b"\0").decode(errors="replace")
    return ""


def _missing_device(route: Route) -> RouteFailure:
    return RouteFailure(route, "replace", f"device {route.dev} not found", errno.ENODEV)


def _failure(write: _Write, code: int, detail: str) -> RouteFailure:
    reason = _explain(write.action, write.route, code)
    return RouteFailure(
        write.route, write.action, f"{reason} ({detail})" if detail else reason, code
    )


def _explain(action: Action, route: Route, code: int) -> str:
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
