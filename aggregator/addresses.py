"""Which IP addresses are on the public internet: the one rule, for fetching and for config.

The fetcher (aggregator.ingest.safety) refuses hops from a public site to anything this
module says is not public; `aggregator import-opml` refuses such addresses unless staff
pass --allow-private, and `aggregator check` warns about them in feeds.yaml. An OPML file
from a partner is untrusted: imported as is, it once put an intranet page's headlines on
the public index.

Pure: this module must never look a name up, connect anywhere or read anything.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

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


def non_public_host(url: str) -> str | None:
    """The host of `url` when it is plainly not public: an IP literal that is not public,
    or a localhost name; else None. Other names are not looked up here (pure), so a name
    that resolves to a private address is left to the fetcher's checks."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return host
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    return None if is_public_address(host) else host
