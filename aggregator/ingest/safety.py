"""Address checks that keep the fetcher from being turned against our own network (SSRF).

A member's site, once hacked or misconfigured, can redirect us (or advertise a feed link)
to `http://127.0.0.1:…`, to a machine on the office network or to the cloud metadata
service (169.254.169.254), and the aggregator would fetch it and republish the answer.
The rule: an address staff wrote into feeds.yaml is trusted as written (an intranet
member, the offline demo and tests on 127.0.0.1 all work), but a hop *from a public
address* to anything that is not public is refused, and so is any scheme but http(s).

`is_public_address` (aggregator.addresses, in the base so that config can use it) is pure;
`check_redirect` does the DNS lookups through a resolver passed in, so tests never need
real DNS. This module never connects anywhere itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable
from collections.abc import Callable
from urllib.parse import urlsplit

from aggregator.addresses import is_public_address as is_public_address  # re-exported
from aggregator.errors import AggregatorError

# Resolves a host name to its addresses (as strings), like getaddrinfo does.
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOWED_SCHEMES = frozenset({"http", "https"})

class UnsafeAddressError(AggregatorError):
    """A redirect or discovered link points somewhere the fetcher must not go."""


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
