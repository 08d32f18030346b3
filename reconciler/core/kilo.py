"""Kilo's own reading of node data, reproduced exactly (squat/kilo pkg/mesh)."""

from __future__ import annotations

import ipaddress


def is_public(ip: str) -> bool:
    """Kilo's ``isPublic`` (pkg/mesh/ip.go), byte for byte.

    IPv4 outside 10/8, 172.16/12 and 192.168/16 is public (so CGNAT 100.64/10 is).
    For IPv6 Kilo's comment says fd00::/8 but its code tests the first *two* bytes
    (``ip[0] == 0xfd && ip[1] == 0x00``): only fd00::/16 is private to Kilo.
    """
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv4Address):
        a, b = addr.packed[0], addr.packed[1]
        return not (a == 10 or (a == 172 and b & 0xF0 == 0x10) or (a == 192 and b == 168))
    if addr.ipv4_mapped is not None:
        return is_public(str(addr.ipv4_mapped))
    return not (addr.packed[0] == 0xFD and addr.packed[1] == 0x00)
