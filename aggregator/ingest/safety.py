"""Address checks that keep the fetcher from being turned against our own network (SSRF).

A member's site, once hacked or misconfigured, can redirect us (or advertise a feed link)
to `http://127.0.0.1:…`, to a machine on the office network or to the cloud metadata
service (169.254.169.254), and the aggregator would fetch it and republish the answer.
The rule: an address staff wrote into feeds.yaml is trusted as written (an intranet
member, the offline demo and tests on 127.0.0.1 all work), but a hop *from a public
address* to anything that is not public is refused, and so is any scheme but http(s).

`is_public_address` is pure; `check_redirect` does the DNS lookups through a resolver
passed in, so tests never need real DNS. This module never connects anywhere itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable
from collections.abc import Callable
from urllib.parse import urlsplit

from aggregator.errors import AggregatorError

# Resolves a host name to its addresses (as strings), like getaddrinfo does.
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOWED_SCHEMES = frozenset({"http", "https"})

# Not "global" anyway, named here so the rule survives a change in the ipaddress module.
CLOUD_METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)


# IPv6 ranges whose last 32 bits are an IPv4 address the packet reaches: NAT64 (RFC 6052),
# IPv4-compatible addresses (::a.b.c.d, deprecated but still routed by some stacks) and SIIT
# (::ffff:0:a.b.c.d, RFC 2765). The IPv4 address inside must be public too.
IPV4_EMBEDDING_NETWORKS = (
    ipaddress.ip_network("64:ff9b::/96"),
    ipaddress.ip_network("::/96"),
    ipaddress.ip_network("::ffff:0:0:0/96"),
)
# Local-use NAT64 (RFC 8215): the IPv4 address may sit anywhere inside, and the translator
# is by definition inside someone's network, so nothing in it is public.
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


class UnsafeAddressError(AggregatorError):
    """A redirect or discovered link points somewhere the fetcher must not go."""


def is_public_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an IP address is on the public internet (not loopback, private, link-local,
    shared, reserved, multicast or a cloud metadata address). A malformed address is not."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local or ip in LOCAL_NAT64:
            return False
        # An IPv4 address wrapped in IPv6 reaches the IPv4 host it wraps.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and any(ip in network for network in IPV4_EMBEDDING_NETWORKS):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    if ip in CLOUD_METADATA_ADDRESSES:
        return False
    return ip.is_global and not ip.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver, without blocking the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def host_is_public(host: str, port: int, resolver: Resolver) -> bool | None:
    """Whether every address `host` resolves to is public (an IP literal is not looked up);
    None when the name cannot be looked up at all.

    Any failure of the lookup is None, whatever the resolver raised: a host name a hostile
    page wrote can make getaddrinfo raise UnicodeError (a label over 63 characters) as
    well as OSError, and one source's bad link must never stop the round.
    """
    literal = host.strip("[]")
    try:
        ipaddress.ip_address(literal.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return is_public_address(literal)
    try:
        addresses = await resolver(host, port)
    except (OSError, UnicodeError, ValueError):
        return None
    return bool(addresses) and all(is_public_address(address) for address in addresses)


def _host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"{scheme}:" if scheme else "an address without http:// or https://"
        raise UnsafeAddressError(f"it leads to {shown}, and only http and https are fetched")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeAddressError(f"it leads to a malformed address ({exc})") from exc
    if not parts.hostname:
        raise UnsafeAddressError("it leads to an address without a host name")
    return parts.hostname, port


async def check_redirect(from_url: str, to_url: str, resolver: Resolver) -> None:
    """Raise UnsafeAddressError when following `from_url` -> `to_url` must be refused.

    Refused: any scheme but http(s); a hop from a public host to a host that is not public.
    A hop from a host that is not public (an intranet member staff configured) may go
    anywhere: staff trusted that network when they wrote the address.
    """
    to_host, to_port = _host_and_port(to_url)
    from_host, from_port = _host_and_port(from_url)
    # An origin that cannot be looked up is not trusted as an intranet host: only a host
    # that resolves to non-public addresses is.
    if await host_is_public(from_host, from_port, resolver) is False:
        return
    verdict = await host_is_public(to_host, to_port, resolver)
    if verdict is None:
        # Refused rather than left to the connection: a name that fails here and resolves a
        # moment later (DNS rebinding) could reach anything.
        raise UnsafeAddressError(f"it leads to a host name that cannot be looked up ({to_host})")
    if not verdict:
        raise UnsafeAddressError(
            f"it leads from a public site to a private or local address ({to_host})"
        )


async def check_discovered_link(page_url: str, link_url: str, resolver: Resolver) -> None:
    """The same rule for a feed link found on a page: the page's address vouches for it."""
    await check_redirect(page_url, link_url, resolver)
