"""A client's network: its address cut to a prefix, the unit that budgets and bindings count.

Two spellings of one idea. The fallback budget and the proof-of-work pressure key their state
by ``network_of`` (readable CIDR text, ``203.0.113.0/24``); a clearance cookie binds itself to
``network_bytes`` (compact bytes fed to an HMAC, never shown). Both read an IPv4-mapped IPv6
address (``::ffff:203.0.113.7``) as the IPv4 address it carries, so a dual-stack socket cannot
give one IPv4 client 2**32 networks, and drop an IPv6 zone id, which names no network.
"""

from __future__ import annotations

import ipaddress
import socket

DEFAULT_IPV4_PREFIX = 32
DEFAULT_IPV6_PREFIX = 64
#: The network of a client without an IP address (a unix socket, a name): one for all.
NO_ADDRESS = "-"

_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"


def network_of(
    client: str | None,
    *,
    ipv4_prefix: int = DEFAULT_IPV4_PREFIX,
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
) -> str:
    """``client``'s network in CIDR notation (``2001:db8::/64``, ``203.0.113.7/32``), or
    ``NO_ADDRESS`` if it is not an IP address."""
    if not client:
        return NO_ADDRESS
    try:
        address = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return NO_ADDRESS
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # The network by integer arithmetic: ip_network() costs twice as much as all of this.
    prefix, bits = (ipv4_prefix, 32) if address.version == 4 else (ipv6_prefix, 128)
    host_bits = bits - prefix
    network = type(address)(int(address) >> host_bits << host_bits)
    return f"{network}/{prefix}"


def network_bytes(client: str | None, ipv4_prefix: int, ipv6_prefix: int) -> bytes:
    """``client``'s network as bytes (family, prefix, masked address), ``b"?"`` if it is not
    an IP address. Surrounding spaces are ignored."""
    if not client:
        return b"?"
    text = client.strip().partition("%")[0]
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except (OSError, ValueError):
        return b"?"
    if len(packed) == 16 and packed[:12] == _V4_MAPPED:
        packed = packed[12:]
    if len(packed) == 4:
        bits, prefix, family = 32, ipv4_prefix, b"4"
    else:
        bits, prefix, family = 128, ipv6_prefix, b"6"
    shift = bits - prefix
    masked = int.from_bytes(packed, "big") >> shift << shift
    return family + bytes([prefix]) + masked.to_bytes(bits // 8, "big")


__all__ = [
    "DEFAULT_IPV4_PREFIX",
    "DEFAULT_IPV6_PREFIX",
    "NO_ADDRESS",
    "network_bytes",
    "network_of",
]
