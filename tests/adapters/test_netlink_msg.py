"""The hand-packed rtnetlink messages against pyroute2's own encoder and decoder; no root.

Our bytes are decoded with pyroute2's `rtmsg` and compared field by field; messages
pyroute2 encodes (as the kernel sends them in a dump, extra attributes included) are
parsed with ours. Multipath routes are not modelled by topoctl, so not encoded here.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroute2.netlink import NLMSG_DONE, nlmsg, nlmsgerr
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from reconciler.adapters import netlink_msg as msg
from reconciler.core.agent.routes import KernelRoute
from reconciler.model.routerules import RESERVED_PROTOCOLS

OURS = 193
OIF = 7

SHAPES = [
    KernelRoute.build("10.1.0.0/16", gateway="192.0.2.2", protocol=OURS),
    KernelRoute.build("10.2.0.0/24", gateway="192.0.2.2", dev="v0", protocol=OURS),
    KernelRoute.build("10.3.0.0/24", dev="v0", protocol=OURS),
    KernelRoute.build("0.0.0.0/0", gateway="192.0.2.254", dev="v0", metric=100, protocol=OURS),
    KernelRoute.build("10.4.0.1", gateway="198.51.100.1", dev="v0", onlink=True, protocol=OURS),
    KernelRoute.build("10.5.0.0/24", dev="v0", table=100, metric=7, protocol=200),
    KernelRoute.build("10.6.0.0/24", gateway="192.0.2.2", table=100_000, protocol=OURS),
    KernelRoute.build("10.7.0.0/24", gateway="192.0.2.2", table=2**32 - 1, metric=2**32 - 1),
    KernelRoute.build("2001:db8:1::/64", gateway="2001:db8::2", protocol=OURS),
    KernelRoute.build("2001:db8:2::/64", dev="v0", table=100, protocol=OURS),
    KernelRoute.build("2001:db8:3::1", gateway="fe80::1", dev="v0", onlink=True, protocol=OURS),
    KernelRoute.build("::/0", gateway="2001:db8::ff", dev="v0", table=70_000, metric=5),
]


def decoded(data: bytes) -> rtmsg:
    message = rtmsg(data)
    message.decode()
    return message


def expected_fields(
    route: KernelRoute, envelope: msg.Envelope, oif: int | None
) -> dict[str, object]:
    family = socket.AF_INET if route.version == 4 else socket.AF_INET6
    address, _, prefix = route.dst.partition("/")
    attrs: list[tuple[str, object]] = [
        ("RTA_TABLE", route.table),
        ("RTA_PRIORITY", route.metric),
        ("RTA_DST", address),
    ]
    if route.gateway is not None:
        attrs.append(("RTA_GATEWAY", route.gateway))
    if oif is not None:
        attrs.append(("RTA_OIF", oif))
    return {
        "type": envelope.msg_type,
        "nlflags": envelope.flags,
        "seq": envelope.seq,
        "pid": 0,
        "family": family,
        "dst_len": int(prefix),
        "src_len": 0,
        "tos": 0,
        "rtm_table": route.table if route.table < 256 else 0,
        "proto": route.protocol,
        "scope": envelope.scope,
        "rtm_type": envelope.kind,
        "flags": 4 if route.onlink else 0,
        "attrs": attrs,
    }


def pyroute2_fields(data: bytes) -> dict[str, object]:
    message = decoded(data)
    header = message["header"]
    assert header["length"] == len(data)
    attrs = [(name, _canonical(value)) for name, value in message["attrs"]]
    return {
        "type": header["type"],
        "nlflags": header["flags"],
        "seq": header["sequence_number"],
        "pid": header["pid"],
        "family": message["family"],
        "dst_len": message["dst_len"],
        "src_len": message["src_len"],
        "tos": message["tos"],
        "rtm_table": message["table"],
        "proto": message["proto"],
        "scope": message["scope"],
        "rtm_type": message["type"],
        "flags": message["flags"],
        "attrs": attrs,
    }


def _canonical(value: object) -> object:
    """pyroute2 prints IPv6 addresses its own way; compare them as addresses."""
    if isinstance(value, str) and ":" in value:
        return ipaddress.IPv6Address(value).compressed
    return value


@pytest.mark.parametrize("route", SHAPES, ids=str)
@pytest.mark.parametrize("exclusive", [True, False], ids=["excl", "replace"])
def test_replace_message_decodes_as_pyroute2_reads_it(route: KernelRoute, exclusive: bool) -> None:
    envelope = msg.replace_envelope(route, seq=41, exclusive=exclusive)
    oif = OIF if route.dev is not None else None
    data = msg.encode_route(envelope, route, oif)
    assert pyroute2_fields(data) == expected_fields(route, envelope, oif)
    flags = envelope.flags
    assert flags & msg.NLM_F_CREATE and flags & msg.NLM_F_ACK and flags & msg.NLM_F_REQUEST
    assert bool(flags & msg.NLM_F_EXCL) is exclusive
    assert bool(flags & msg.NLM_F_REPLACE) is not exclusive
    link_scope = route.gateway is None and route.version == 4
    assert envelope.scope == (msg.RT_SCOPE_LINK if link_scope else msg.RT_SCOPE_UNIVERSE)
    assert decoded(data).get("table") == route.table  # pyroute2's own reading of both fields


@pytest.mark.parametrize("route", SHAPES, ids=str)
def test_delete_message_decodes_as_pyroute2_reads_it(route: KernelRoute) -> None:
    envelope = msg.delete_envelope(seq=2**32 - 1)
    data = msg.encode_route(envelope, route, None)
    assert pyroute2_fields(data) == expected_fields(route, envelope, None)
    assert (envelope.scope, envelope.kind) == (msg.RT_SCOPE_NOWHERE, msg.RTN_UNSPEC)
    assert msg.sequence(data) == 2**32 - 1


@st.composite
def routes(draw: st.DrawFn) -> KernelRoute:
    if draw(st.booleans()):
        network: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.IPv4Network(
            (draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 32))), strict=False
        )
        gateway = str(ipaddress.IPv4Address(draw(st.integers(1, 2**32 - 2))))
    else:
        network = ipaddress.IPv6Network(
            (draw(st.integers(0, 2**128 - 1)), draw(st.integers(0, 128))), strict=False
        )
        gateway = str(ipaddress.IPv6Address(draw(st.integers(1, 2**128 - 1))))
    shape = draw(st.sampled_from(["gateway", "device", "both", "onlink"]))
    return KernelRoute.build(
        network,
        gateway=None if shape == "device" else gateway,
        dev=None if shape == "gateway" else "v0",
        onlink=shape == "onlink",
        table=draw(st.sampled_from([254, 1, 100, 252, 256, 100_000, 2**32 - 1])),
        metric=draw(st.integers(0, 2**32 - 1)),
        protocol=draw(st.integers(1, 255).filter(lambda p: p not in RESERVED_PROTOCOLS)),
    )


@settings(derandomize=True, max_examples=150, deadline=None)
@given(route=routes(), seq=st.integers(1, 2**32 - 1), oif=st.integers(1, 2**31 - 1))
def test_generated_routes_decode_as_pyroute2_reads_them(
    route: KernelRoute, seq: int, oif: int
) -> None:
    envelope = msg.replace_envelope(route, seq, exclusive=seq % 2 == 0)
    dev_oif = oif if route.dev is not None else None
    assert pyroute2_fields(msg.encode_route(envelope, route, dev_oif)) == expected_fields(
        route, envelope, dev_oif
    )


# -- parsing what pyroute2 encodes ---------------------------------------------------


def kernel_style(route: KernelRoute, oif: int, seq: int = 9) -> bytes:
    """A dump entry as the kernel sends one, encoded by pyroute2, extra attributes and all."""
    family = socket.AF_INET if route.version == 4 else socket.AF_INET6
    address, _, prefix = route.dst.partition("/")
    message = rtmsg()
    message["header"] = {"type": msg.RTM_NEWROUTE, "flags": msg.NLM_F_MULTI, "sequence_number": seq}
    message.update(
        family=family,
        dst_len=int(prefix),
        table=route.table if route.table < 256 else 252,  # RT_TABLE_COMPAT, as the kernel
        proto=route.protocol,
        scope=0,
        type=msg.RTN_UNICAST,
        flags=msg.RTNH_F_ONLINK if route.onlink else 0,
    )
    attrs: list[tuple[str, object]] = [("RTA_TABLE", route.table)]
    if int(prefix):  # the kernel leaves RTA_DST out of a default route
        attrs.append(("RTA_DST", address))
    if route.metric:  # and RTA_PRIORITY out of an IPv4 route with metric 0
        attrs.append(("RTA_PRIORITY", route.metric))
    if route.gateway is not None:
        attrs.append(("RTA_GATEWAY", route.gateway))
    attrs.append(("RTA_OIF", oif))
    if route.version == 6:
        attrs += [("RTA_PREF", 0), ("RTA_CACHEINFO", {"rta_clntref": 0})]
    message["attrs"] = attrs
    message.encode()
    return bytes(message.data)


def done(seq: int = 9) -> bytes:
    message = nlmsg()
    message["header"] = {"type": NLMSG_DONE, "flags": msg.NLM_F_MULTI, "sequence_number": seq}
    message.encode()
    return bytes(message.data)


def test_a_pyroute2_encoded_dump_parses_into_the_routes_it_holds() -> None:
    datagram = b"".join(kernel_style(route, OIF) for route in SHAPES) + done()
    entries = []
    kinds = []
    for offset, length, kind, flags, seq in msg.headers(datagram):
        assert (flags, seq) == (msg.NLM_F_MULTI, 9)
        kinds.append(kind)
        if kind == msg.RTM_NEWROUTE:
            body = datagram[offset + msg.HDR_LEN : offset + length]
            entries.append(msg.parse_route(body, OURS, {OIF: "v0"}))
    assert kinds == [msg.RTM_NEWROUTE] * len(SHAPES) + [msg.NLMSG_DONE]
    assert entries == [
        KernelRoute(r.dst, r.gateway, "v0", r.table, r.metric, r.onlink, r.protocol)
        if r.protocol == OURS
        else msg.ForeignRoute(r.key, r.protocol)
        for r in SHAPES
    ]


def test_a_route_on_an_unknown_ifindex_has_no_device() -> None:
    route = KernelRoute.build("10.9.0.0/24", gateway="192.0.2.2", protocol=OURS)
    body = kernel_style(route, oif=99)[msg.HDR_LEN :]
    assert msg.parse_route(body, OURS, {OIF: "v0"}) == route


def link_body(*attrs: tuple[str, object]) -> bytes:
    link = ifinfmsg()
    link["header"] = {"type": msg.RTM_NEWLINK, "flags": msg.NLM_F_MULTI, "sequence_number": 3}
    link.update(family=0, index=12, flags=0, change=0)
    link["attrs"] = list(attrs)
    link.encode()
    return bytes(link.data)[msg.HDR_LEN :]


def test_a_link_message_from_pyroute2_gives_its_index_and_name() -> None:
    named = link_body(("IFLA_MTU", 1500), ("IFLA_IFNAME", "cilium_tunl"))
    assert msg.link_name(named) == (12, "cilium_tunl")
    assert msg.link_name(link_body(("IFLA_MTU", 1500))) is None


def test_the_dump_requests_decode_as_pyroute2_reads_them() -> None:
    request = decoded(msg.dump_request(msg.RTM_GETROUTE, 5, msg.route_dump_body(socket.AF_INET6)))
    assert request["header"]["flags"] == msg.NLM_F_REQUEST | msg.NLM_F_DUMP
    assert (request["header"]["type"], request["header"]["sequence_number"]) == (26, 5)
    assert (request["family"], request["table"], request["attrs"]) == (socket.AF_INET6, 0, [])
    links = ifinfmsg(msg.dump_request(msg.RTM_GETLINK, 6, msg.link_dump_body()))
    links.decode()
    assert links.get_attr("IFLA_EXT_MASK") == msg.RTEXT_FILTER_SKIP_STATS


# -- acks ------------------------------------------------------------------------------


class _CappedAck(nlmsgerr):  # type: ignore[misc]  # pyroute2 is untyped
    """An extended ack as the kernel sends it with NETLINK_CAP_ACK: the request's header only."""

    __slots__ = ()
    fields = (
        ("error", "i"),
        ("request_length", "I"),
        ("request_type", "H"),
        ("request_flags", "H"),
        ("request_seq", "I"),
        ("request_pid", "I"),
    )


def ack(seq: int, code: int, text: str | None = None) -> bytes:
    if text is None:
        plain = nlmsgerr()
        plain["header"] = {"type": msg.NLMSG_ERROR, "flags": 0, "sequence_number": seq}
        plain["error"] = -code
        plain.encode()
        return bytes(plain.data)
    capped = _CappedAck()
    flags = msg.NLM_F_CAPPED | msg.NLM_F_ACK_TLVS
    capped["header"] = {"type": msg.NLMSG_ERROR, "flags": flags, "sequence_number": seq}
    capped.update(
        error=-code,
        request_length=64,
        request_type=msg.RTM_NEWROUTE,
        request_flags=0x605,
        request_seq=seq,
        request_pid=0,
    )
    capped["attrs"] = [("NLMSGERR_ATTR_MSG", text)]
    capped.encode()
    return bytes(capped.data)


def test_acks_encoded_by_pyroute2_parse_into_outcomes_by_sequence_number() -> None:
    datagram = (
        ack(1, 0)
        + ack(2, errno.EEXIST)
        + ack(3, errno.ENETDOWN, "Nexthop device is not up")
        + done(4)
        + ack(2**32 - 1, errno.ENODEV, "")
    )
    assert list(msg.parse_acks(memoryview(datagram))) == [
        (1, None),
        (2, (errno.EEXIST, "")),
        (3, (errno.ENETDOWN, "kernel: Nexthop device is not up")),
        (2**32 - 1, (errno.ENODEV, "")),
    ]


def test_an_uncapped_ack_skips_the_whole_request_to_reach_the_text() -> None:
    request = msg.encode_route(msg.replace_envelope(SHAPES[0], 8, exclusive=True), SHAPES[0], None)
    text = b"Invalid prefix\0"
    tlv = struct.pack("=HH", 4 + len(text), msg.NLMSGERR_ATTR_MSG) + text
    padded = request + b"\0" * (-len(request) % 4)
    body = struct.pack("=i", -errno.EINVAL) + padded + tlv
    header = msg.NLMSGHDR.pack(msg.HDR_LEN + len(body), msg.NLMSG_ERROR, msg.NLM_F_ACK_TLVS, 8, 0)
    parsed = nlmsgerr(header + body)  # pyroute2 reads the same error code from it
    parsed.decode()
    assert parsed["error"] == -errno.EINVAL
    assert list(msg.parse_acks(memoryview(header + body))) == [
        (8, (errno.EINVAL, "kernel: Invalid prefix"))
    ]


def test_a_truncated_datagram_yields_only_whole_headers() -> None:
    data = kernel_style(SHAPES[0], OIF)
    assert [h[0] for h in msg.headers(data + data[:10])] == [0]
    zero_length = msg.NLMSGHDR.pack(0, msg.NLMSG_DONE, 0, 1, 0)
    assert list(msg.headers(zero_length + data)) == []
