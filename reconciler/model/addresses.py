"""IP addresses, networks and WireGuard endpoints, in the canonical text Kilo reads."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from reconciler.model.invalid import fail, odd, text_of
from reconciler.model.names import DNS1123_SUBDOMAIN, DNS_CHARS


def canonical_cidr(value: Any) -> str:
    """An IP network: a bare address becomes /32 or /128; host bits set are an error."""
    text = text_of(value, "CIDR").strip()
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise fail(
            "cidr",
            "{value!r} is not an IP address or CIDR (e.g. 192.168.50.0/24 or 2001:db8::/64)",
            value=text,
        ) from None
    _not_mapped(net, text)
    exact = _strict_network(text)
    if exact is None:
        raise fail(
            "cidr_host_bits",
            "{value!r} has host bits set - write {net} (the network) or {ip} (one address)",
            value=text,
            net=str(net),
            ip=text.split("/")[0],
        )
    return str(exact)


_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def _not_mapped(net: ipaddress.IPv4Network | ipaddress.IPv6Network, text: str) -> None:
    """Refuse an IPv4-mapped IPv6 address: Kilo would write it as IPv6 (``::ffff:a00:1/128``)."""
    if not isinstance(net, ipaddress.IPv6Network) or not net.subnet_of(_MAPPED):
        return
    mapped = net.network_address.ipv4_mapped
    assert mapped is not None
    bits = net.prefixlen - 96
    v4 = str(mapped) if bits == 32 and "/" not in text else f"{mapped}/{bits}"
    raise fail(
        "ipv4_mapped",
        "{value!r} is an IPv4-mapped IPv6 address: Kilo and the kernel would treat it as "
        "IPv6, not as the IPv4 address it stands for - write {v4}",
        value=text,
        v4=v4,
    )


def _strict_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None


def ip_address(value: Any) -> str:
    """A single IP address in canonical text."""
    text = text_of(value, "IP address").strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise fail(
            "ip_address",
            "{value!r} is not an IP address (e.g. 10.0.0.2 or 2001:db8::2)",
            value=text,
        ) from None
    _not_mapped(ipaddress.ip_network(ip), text)
    return str(ip)


def host_cidr(value: Any) -> str:
    """One address written as a CIDR (/32 or /128), which is the only form Kilo accepts."""
    text = text_of(value, "IP address").strip()
    _, slash, _ = text.partition("/")
    if slash and _strict_network(text) is None and _interface_ip(text) is not None:
        ip = _interface_ip(text)
        assert ip is not None
        raise fail(
            "host_cidr",
            "{value!r} is an interface address with its prefix; internalIP is the node's "
            "address alone - write {ip} (Kilo gets it as {ip}/{bits})",
            value=text,
            ip=str(ip),
            bits=ip.max_prefixlen,
        )
    cidr = canonical_cidr(text)
    net = ipaddress.ip_network(cidr)
    if net.num_addresses != 1:
        raise fail(
            "host_cidr",
            "{value!r} is a network, not one node's address - write the node's IP, e.g. {example}",
            value=text,
            example=str(next(net.hosts(), net.network_address)),
        )
    return cidr


def _interface_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_interface(text).ip
    except ValueError:
        return None


def _bad_endpoint_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # Kilo (Go's net.IP) judges ::ffff:a.b.c.d as the IPv4 address
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    return None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed WireGuard endpoint: host (IP text or DNS name) and optional port."""

    host: str
    port: int | None
    is_ip: bool

    def render(self, default_port: int) -> str:
        """The ``host:port`` text Kilo's force-endpoint accepts."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port if self.port is not None else default_port}"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def parse_endpoint(text: str, *, routable: bool = True) -> Endpoint:
    """Parse ``host[:port]`` as Kilo does; raise a custom error that says what to write.

    ``routable`` also refuses addresses no other location can reach (unspecified,
    loopback, link-local, multicast), as ``validate`` does; Kilo itself takes them
    (:func:`reconciler.core.kilo.node.kilo_endpoint`)."""
    host, port_text = text, None
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise fail("endpoint", "{value!r}: missing ']' after the IPv6 address", value=text)
        host, rest = text[1:close], text[close + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise fail("endpoint", "{value!r}: expected ':port' after ']'", value=text)
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        raise fail(
            "endpoint",
            "{value!r}: an IPv6 endpoint must be bracketed - write {fixed}",
            value=text,
            fixed=_bracketed(text),
        )
    port = _port(port_text, text) if port_text is not None else None
    if "%" in host:  # Python takes an IPv6 zone (fe80::1%eth0); Go's net.ParseIP does not
        raise fail(
            "endpoint",
            "{value!r}: an IPv6 zone ({zone}) is not part of an endpoint Kilo reads - drop it",
            value=text,
            zone=host[host.index("%") :],
        )
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None:
        if text.startswith("["):
            raise fail(
                "endpoint", "{value!r}: {host!r} is not an IPv6 address", value=text, host=host
            )
        if host != host.lower() and DNS1123_SUBDOMAIN.fullmatch(host.lower()):
            raise fail(
                "endpoint",
                "{value!r}: Kilo only accepts lowercase DNS names - write {fixed!r}",
                value=text,
                fixed=text.lower(),
            )
        if host.endswith("."):
            raise fail(
                "endpoint",
                "{value!r}: drop the trailing dot - Kilo does not accept it",
                value=text,
            )
        if not host or len(host) > 253 or not DNS1123_SUBDOMAIN.fullmatch(host):
            raise fail(
                "endpoint",
                "{value!r}{odd} is not host:port with an IPv4 address, a [bracketed IPv6] "
                "address or a lowercase DNS name - Kilo would ignore it and use the endpoint "
                "it detects",
                value=text,
                odd=odd(host, DNS_CHARS),
            )
        return Endpoint(host=host, port=port, is_ip=False)
    if isinstance(ip, ipaddress.IPv6Address) and not text.startswith("["):
        raise fail("endpoint", "{value!r}: bracket the IPv6 address", value=text)
    problem = _bad_endpoint_ip(ip) if routable else None
    if problem:
        raise fail(
            "endpoint",
            "{value!r}: {ip} is {problem}, which no other location can reach",
            value=text,
            ip=str(ip),
            problem=problem,
        )
    return Endpoint(host=str(ip), port=port, is_ip=True)


def _bracketed(text: str) -> str:
    """What an unbracketed IPv6 endpoint was probably meant to be."""
    try:
        return f"[{ipaddress.IPv6Address(text)}]:51820"
    except ValueError:
        pass
    host, _, port = text.rpartition(":")
    try:
        return f"[{ipaddress.IPv6Address(host)}]:{port}"
    except ValueError:
        return "[2001:db8::1]:51820"


def _port(text: str, whole: str) -> int:
    # ASCII digits only: str.isdigit() also takes other scripts' digits, which Kilo refuses.
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise fail(
            "endpoint_port", "{value!r}: the port must be a number from 1 to 65535", value=whole
        )
    return int(text)


def canonical_endpoint(value: Any) -> str:
    """Canonical endpoint text: lowercase IPv6, no leading zeros in the port."""
    return str(parse_endpoint(text_of(value, "endpoint").strip()))
