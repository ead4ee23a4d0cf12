"""Address checks that keep the fetcher from being turned against our own network (SSRF).

A member's site, once hacked or misconfigured, can redirect us (or advertise a feed link)
to `http://127.0.0.1:…`, to a machine on the office network or to the cloud metadata
service (169.254.169.254), and the aggregator would fetch it and republish the answer.
The rule: the host of an address staff wrote into feeds.yaml is trusted as written (an
intranet member, the offline demo and tests on 127.0.0.1 all work); any other host a fetch
reaches (a redirect, a discovered or remembered feed, a story page, a hub) must resolve to
public addresses only, and a name that cannot be looked up is refused. Only http(s).

`is_public_address` (aggregator.addresses, in the base so that config can use it) is pure;
`check_redirect` does the DNS lookups through a resolver passed in, so tests never need
real DNS. This module never connects anywhere itself: the connection that checks the
addresses it connects to is aggregator.ingest.connect.
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


async def lookup(host: str, port: int, resolver: Resolver) -> list[str] | None:
    """The addresses of `host` (an IP literal as written, a name looked up once); None when
    the name cannot be looked up at all.

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
        return [literal]
    try:
        return list(await resolver(host, port))
    except (OSError, UnicodeError, ValueError):
        return None


async def public_addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    """The addresses of `host`, looked up once, when every one of them is public; raise
    UnsafeAddressError when one is not or the name cannot be looked up.

    A name that fails to resolve is refused, never passed on to be resolved again later:
    it could answer with an internal address then (DNS rebinding).
    """
    addresses = await lookup(host, port, resolver)
    if addresses is None:
        raise UnsafeAddressError(f"it leads to a host name that cannot be looked up ({host})")
    if not addresses or not all(is_public_address(address) for address in addresses):
        raise UnsafeAddressError(
            f"it leads to a private or local address ({host}); only the host written"
            " in feeds.yaml may be one"
        )
    return addresses


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


def trusted_host(url: str) -> str | None:
    """The host of an address staff wrote in feeds.yaml: the only host a fetch trusts to be
    private (lower-cased, IPv6 without brackets); None when the address has none."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


async def check_redirect(to_url: str, resolver: Resolver, *, trusted: str | None) -> None:
    """Raise UnsafeAddressError when the fetcher must not go to `to_url`.

    Refused: any scheme but http(s); a host other than `trusted` (the host staff wrote in
    feeds.yaml, see trusted_host) that is not public or cannot be looked up. Trust is never
    inferred from where a hop came from: a member's DNS can make its host resolve to a
    public and a 10.x address at once, and that must not make it an "intranet host" whose
    redirects may go anywhere. This is the early check, for a clear message; the connection
    itself checks again what it connects to (aggregator.ingest.connect).
    """
    to_host, to_port = _host_and_port(to_url)
    if trusted is not None and to_host == trusted:
        return
    await public_addresses(to_host, to_port, resolver)


async def check_discovered_link(page_url: str, link_url: str, resolver: Resolver) -> None:
    """The same rule for a link found on a page (a feed link, a WebSub hub): the page's own
    host is the only one it vouches for. The fetch of the link checks again against the host
    staff wrote (Fetcher.fetch's `found_from`)."""
    await check_redirect(link_url, resolver, trusted=trusted_host(page_url))
