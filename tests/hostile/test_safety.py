"""SSRF: redirects (and discovered feed links) from public sites to private addresses.

The "public" member site is a made-up host name that HostMapTransport routes to the
fixture server on 127.0.0.1 and that the injected resolver calls a global address, so no
DNS is asked and no traffic leaves the machine.
"""

from __future__ import annotations

import asyncio

import pytest

from aggregator.demo.server import Route
from aggregator.ingest.safety import UnsafeAddressError
from aggregator.ingest.safety import check_discovered_link
from aggregator.ingest.safety import check_redirect
from aggregator.ingest.safety import is_public_address
from aggregator.models import FetchResult
from tests.hostile.server import PUBLIC_ADDRESS
from tests.hostile.server import PUBLIC_HOST
from tests.hostile.server import HostMapTransport
from tests.hostile.server import fake_resolver
from tests.hostile.server import fetch_once
from tests.support.server import FixtureServer

FEED = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
OTHER_PUBLIC_HOST = "cdn.member-mirror.example"
PRIVATE_NAMED_HOST = "intranet.member.example"
RESOLVER = fake_resolver(
    {
        PUBLIC_HOST: PUBLIC_ADDRESS,
        OTHER_PUBLIC_HOST: "2606:4700:4700::1111",
        PRIVATE_NAMED_HOST: "10.20.30.40",
    }
)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "10.0.0.1", "172.16.5.4", "192.168.1.1",
        "169.254.169.254", "fd00:ec2::254", "fe80::1", "fc00::1", "100.64.0.1",
        "100.100.100.200", "224.0.0.1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "2002:7f00:1::", "2002:a00:1::", "198.18.0.1", "240.0.0.1", "255.255.255.255",
        "not an address", "",
        # IPv4 inside IPv6 (NAT64, local-use NAT64, IPv4-compatible, SIIT) and site-local:
        "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::808:808", "::127.0.0.1",
        "::10.0.0.1", "::ffff:0:127.0.0.1", "::ffff:0:a00:1", "fec0::1", "fec0::a9fe:a9fe",
    ],
)  # fmt: skip
def test_addresses_that_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


def fetch_public(server: FixtureServer, path: str) -> FetchResult:
    transport = HostMapTransport({PUBLIC_HOST: server._httpd.server_address[1]})
    return fetch_once(f"http://{PUBLIC_HOST}{path}", transport=transport, resolver=RESOLVER)


def test_public_site_serves_normally(server: FixtureServer) -> None:
    server.routes["/feed.xml"] = Route(body=FEED, headers={"Content-Type": "application/xml"})
    result = fetch_public(server, "/feed.xml")
    assert result.ok and result.content == FEED


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/secret",
        "http://localhost:{port}/secret",
        "http://[::1]:{port}/secret",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.5/admin",
        "http://192.168.1.1/",
        f"http://{PRIVATE_NAMED_HOST}/wiki",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://0.0.0.0:{port}/secret",
    ],
)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_from_a_public_site_to_a_private_address_is_refused(
    server: FixtureServer, target: str, status: int
) -> None:
    port = server._httpd.server_address[1]
    server.routes["/feed.xml"] = Route(
        status=status, headers={"Location": target.format(port=port)}
    )
    server.routes["/secret"] = Route(body=b"<rss><channel><title>internal</title></channel></rss>")
    result = fetch_public(server, "/feed.xml")
    assert result.content is None
    assert result.error is not None
    assert result.error.startswith(
        "a redirect or found address was refused for safety: it leads to a private or local"
    )
    assert server.requests_for("/secret") == []  # refused before any request was made


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.org/feed.xml"]
)
def test_redirect_to_a_scheme_other_than_http_is_refused(
    server: FixtureServer, target: str
) -> None:
    server.routes["/feed.xml"] = Route(status=302, headers={"Location": target})
    result = fetch_public(server, "/feed.xml")
    assert result.error is not None
    assert result.error.startswith("a redirect or found address was refused for safety")
    assert "only http and https" in result.error


def test_redirect_scheme_check_applies_to_trusted_addresses_too(server: FixtureServer) -> None:
    server.routes["/feed.xml"] = Route(status=302, headers={"Location": "file:///etc/passwd"})
    result = fetch_once(server.url("/feed.xml"))
    assert result.error is not None and "only http and https" in result.error


def test_redirect_between_public_sites_is_followed(server: FixtureServer) -> None:
    port = server._httpd.server_address[1]
    server.routes["/old.xml"] = Route(
        status=301, headers={"Location": f"http://{OTHER_PUBLIC_HOST}/new.xml"}
    )
    server.routes["/new.xml"] = Route(body=FEED, headers={"Content-Type": "application/xml"})
    transport = HostMapTransport({PUBLIC_HOST: port, OTHER_PUBLIC_HOST: port})
    result = fetch_once(f"http://{PUBLIC_HOST}/old.xml", transport=transport, resolver=RESOLVER)
    assert result.ok and result.content == FEED
    assert result.permanent_redirect == f"http://{OTHER_PUBLIC_HOST}/new.xml"


def test_addresses_staff_configured_on_loopback_are_trusted_with_their_redirects(
    server: FixtureServer,
) -> None:
    server.routes["/feed.xml"] = Route(status=302, headers={"Location": "/moved.xml"})
    server.routes["/moved.xml"] = Route(body=FEED, headers={"Content-Type": "application/xml"})
    result = fetch_once(server.url("/feed.xml"))
    assert result.ok and result.content == FEED


def test_discovered_feed_link_follows_the_same_rule() -> None:
    async def check(page: str, link: str) -> None:
        await check_discovered_link(page, link, RESOLVER)

    asyncio.run(check(f"https://{PUBLIC_HOST}/", f"https://{OTHER_PUBLIC_HOST}/feed"))
    asyncio.run(check("http://127.0.0.1:8080/news/", "http://127.0.0.1:8080/feed.xml"))
    asyncio.run(check(f"http://{PRIVATE_NAMED_HOST}/feed", f"http://{PRIVATE_NAMED_HOST}/x"))
    # A page vouches only for its own host: trust is never inferred from what a host
    # resolves to (another intranet host must be written in feeds.yaml itself).
    with pytest.raises(UnsafeAddressError):
        asyncio.run(check(f"http://{PRIVATE_NAMED_HOST}/", "http://10.20.30.41/feed.xml"))
    for link in ("http://127.0.0.1/feed", "http://169.254.169.254/", "javascript:alert(1)"):
        with pytest.raises(UnsafeAddressError):
            asyncio.run(check(f"https://{PUBLIC_HOST}/", link))


@pytest.mark.parametrize(
    "target",
    [
        "http://nowhere.member.example/feed.xml",  # the test resolver knows no such name
        "http://" + "a" * 64 + ".example/feed.xml",  # getaddrinfo: UnicodeError, not OSError
    ],
)
def test_redirect_to_a_host_that_cannot_be_looked_up_is_refused(
    server: FixtureServer, target: str
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        if host == PUBLIC_HOST:
            return [PUBLIC_ADDRESS]
        if len(host.split(".")[0]) > 63:
            raise UnicodeError("encoding with 'idna' codec failed (label too long)")
        raise OSError(f"test resolver: unknown host {host}")

    server.routes["/feed.xml"] = Route(status=302, headers={"Location": target})
    transport = HostMapTransport({PUBLIC_HOST: server._httpd.server_address[1]})
    result = fetch_once(f"http://{PUBLIC_HOST}/feed.xml", transport=transport, resolver=resolve)
    assert result.content is None
    assert result.error is not None
    assert "a host name that cannot be looked up" in result.error


def test_an_origin_that_cannot_be_looked_up_vouches_for_nothing() -> None:
    async def check() -> None:
        await check_redirect("http://10.0.0.1/", RESOLVER, trusted="unknown.member.example")

    with pytest.raises(UnsafeAddressError):
        asyncio.run(check())
