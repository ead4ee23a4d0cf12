"""The poll's aiohttp connections (aggregator.ingest.connect) go only where the checks said.

The DNS-rebinding suite (tests/hostile/test_rebinding.py) brings its own connector and so runs
httpcore's pool; these run the Fetcher as the poll does, on CheckedAiohttpTransport, with
made-up names resolved by the rebinding suite's resolver to the fixture server on 127.0.0.1: no
DNS is asked and no traffic leaves the machine.
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from aggregator.demo.server import Route
from aggregator.ingest.connect import CheckedAiohttpTransport
from aggregator.ingest.connect import CheckedResolver
from aggregator.ingest.fetch import DNS_FAILED
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.safety import Resolver
from aggregator.ingest.safety import UnsafeAddressError
from aggregator.models import CacheValidators
from aggregator.models import FetchResult
from aggregator.models import SourceConfig
from tests.hostile.server import PUBLIC_ADDRESS
from tests.hostile.test_rebinding import answers
from tests.support.server import FixtureServer

FEED = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
SECRET = b"<rss version='2.0'><channel><title>internal</title></channel></rss>"


def fetch(url: str, resolver: Resolver) -> FetchResult:
    async def run() -> FetchResult:
        async with Fetcher(resolver=resolver) as fetcher:
            source = SourceConfig(member_id="member", kind="feed", url=url)
            return await fetcher.fetch(source, CacheValidators())

    return asyncio.run(run())


def test_the_resolver_hands_aiohttp_only_checked_public_addresses() -> None:
    resolver = CheckedResolver(
        answers({"news.example": [[PUBLIC_ADDRESS, "2606:2800:220:1::1"]]}), public_only=True
    )
    found = asyncio.run(resolver.resolve("news.example", 443))
    assert [(entry["host"], entry["family"], entry["port"]) for entry in found] == [
        (PUBLIC_ADDRESS, socket.AF_INET, 443),
        ("2606:2800:220:1::1", socket.AF_INET6, 443),
    ]


@pytest.mark.parametrize("answer", [["10.0.0.7"], [PUBLIC_ADDRESS, "127.0.0.1"], []])
def test_the_resolver_refuses_a_name_with_a_private_address(answer: list[str]) -> None:
    resolver = CheckedResolver(answers({"mixed.example": [answer]}), public_only=True)
    with pytest.raises(UnsafeAddressError, match="private or local address"):
        asyncio.run(resolver.resolve("mixed.example", 80))


def test_the_resolver_of_a_trusted_host_reports_an_unknown_name_as_a_dns_failure() -> None:
    resolver = CheckedResolver(answers({}), public_only=False)
    with pytest.raises(socket.gaierror):
        asyncio.run(resolver.resolve("gone.example", 80))


def test_a_trusted_name_is_connected_at_the_address_the_resolver_gave(
    server: FixtureServer,
) -> None:
    server.routes["/feed.xml"] = Route(body=FEED, headers={"Content-Type": "application/xml"})
    port = server._httpd.server_address[1]
    resolver = answers({"intranet.member.test": [["127.0.0.1"]]})
    result = fetch(f"http://intranet.member.test:{port}/feed.xml", resolver)
    assert result.ok and result.content == FEED
    # The Host header keeps the name; only the connection goes to the address.
    assert server.requests_for("/feed.xml")[0].headers["host"] == f"intranet.member.test:{port}"


def test_a_trusted_name_that_cannot_be_looked_up_is_a_dns_failure() -> None:
    result = fetch("http://gone.member.test/feed.xml", answers({}))
    assert result.error == DNS_FAILED


def test_a_redirect_to_a_name_that_rebinds_to_loopback_after_the_check_is_refused(
    server: FixtureServer,
) -> None:
    port = server._httpd.server_address[1]
    server.routes["/feed.xml"] = Route(
        status=302, headers={"Location": f"http://rebind.attacker.test:{port}/secret"}
    )
    server.routes["/secret"] = Route(body=SECRET)
    resolver = answers(
        {
            "member.test": [["127.0.0.1"]],
            # Public to whoever asks first (the redirect's check), loopback from then on.
            "rebind.attacker.test": [[PUBLIC_ADDRESS], ["127.0.0.1"]],
        }
    )
    result = fetch(f"http://member.test:{port}/feed.xml", resolver)
    assert result.content is None
    assert result.error is not None and "private or local address" in result.error
    assert server.requests_for("/secret") == []


def test_a_private_address_written_in_an_untrusted_url_is_never_connected_to(
    server: FixtureServer,
) -> None:
    # aiohttp does not resolve an address written as an IP, so the transport checks it.
    server.routes["/secret"] = Route(body=SECRET)
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)

    async def run() -> None:
        transport = CheckedAiohttpTransport(answers({}), public_only=True, limits=limits)
        try:
            await transport.handle_async_request(httpx.Request("GET", server.url("/secret")))
        finally:
            await transport.aclose()

    with pytest.raises(UnsafeAddressError, match="private or local address"):
        asyncio.run(run())
    assert server.requests_for("/secret") == []


def test_connections_are_kept_open_between_requests_to_the_same_host(
    server: FixtureServer,
) -> None:
    server.routes["/a.xml"] = Route(body=FEED, headers={"Content-Type": "application/xml"})
    server.routes["/b.xml"] = Route(body=FEED, headers={"Content-Type": "application/xml"})
    port = server._httpd.server_address[1]
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    def source(path: str) -> SourceConfig:
        return SourceConfig(member_id="member", kind="feed", url=f"http://member.test:{port}{path}")

    async def run() -> list[FetchResult]:
        async with Fetcher(resolver=resolve) as fetcher:
            first = await fetcher.fetch(source("/a.xml"), CacheValidators())
            # A 304 has no body to read: its connection stays open too.
            unchanged = await fetcher.fetch(source("/a.xml"), first.validators)
            other = await fetcher.fetch(source("/b.xml"), CacheValidators())
            return [first, unchanged, other]

    first, unchanged, other = asyncio.run(run())
    assert first.content == FEED and other.content == FEED
    assert unchanged.status == 304
    # One lookup per connection: every request after the first went over its connection.
    assert lookups == ["member.test"]
