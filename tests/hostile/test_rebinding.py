"""DNS rebinding: the address a fetch connects to is the address that was checked.

A hostile member controls its DNS: it can answer "public" to the safety check and
"127.0.0.1" to the connection a moment later, or answer a public and a 10.x address at once.
These tests resolve made-up names with a resolver that changes its answer between calls,
and connect through a connector that sends the one public address they use to the fixture
server on 127.0.0.1 (and refuses anything else that is not 127.0.0.1): no DNS is asked and
no traffic leaves the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpcore

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_source
from aggregator.ingest.safety import Resolver
from aggregator.models import CacheValidators
from aggregator.models import FetchResult
from aggregator.models import PollReport
from aggregator.models import SourceConfig
from aggregator.store import Store
from tests.hostile.server import PUBLIC_ADDRESS
from tests.support.server import FixtureServer

FEED = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
SECRET = b"<rss version='2.0'><channel><title>internal</title></channel></rss>"
MEMBER_HOST = "news.member.example"


class LocalConnector(httpcore.AsyncNetworkBackend):
    """Connects `mapped` addresses to 127.0.0.1 (same port) and 127.0.0.1 to itself;
    refuses every other address, so a test can never reach the internet by mistake."""

    def __init__(self, mapped: Iterable[str]) -> None:
        self._mapped = set(mapped)
        self._inner = httpcore.AnyIOBackend()
        self.connected: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append(host)
        if host not in self._mapped and host != "127.0.0.1":
            raise httpcore.ConnectError(f"test connector: {host} is not mapped")
        return await self._inner.connect_tcp(
            "127.0.0.1", port, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def answers(table: dict[str, list[list[str]]]) -> Resolver:
    """A resolver giving each name its answers in turn (the last one from then on)."""
    calls: dict[str, int] = {}

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"test resolver: unknown host {host}")
        turn = calls.get(host, 0)
        calls[host] = turn + 1
        return table[host][min(turn, len(table[host]) - 1)]

    return resolve


def fetch(url: str, resolver: Resolver, connector: LocalConnector) -> FetchResult:
    async def run() -> FetchResult:
        async with Fetcher(resolver=resolver, connector=connector) as fetcher:
            source = SourceConfig(member_id="hostile", kind="feed", url=url)
            return await fetcher.fetch(source, CacheValidators())

    return asyncio.run(run())


def test_a_name_that_rebinds_to_loopback_after_the_check_is_never_connected_to(
    server: FixtureServer,
) -> None:
    port = server._httpd.server_address[1]
    server.routes["/feed.xml"] = Route(
        status=302, headers={"Location": f"http://rebind.attacker.example:{port}/secret"}
    )
    server.routes["/secret"] = Route(body=SECRET)
    resolver = answers(
        {
            MEMBER_HOST: [[PUBLIC_ADDRESS]],
            # Public to whoever asks first (the redirect's check), loopback from then on.
            "rebind.attacker.example": [[PUBLIC_ADDRESS], ["127.0.0.1"]],
        }
    )
    connector = LocalConnector([PUBLIC_ADDRESS])
    result = fetch(f"http://{MEMBER_HOST}:{port}/feed.xml", resolver, connector)
    assert result.content is None
    assert result.error is not None and "private or local address" in result.error
    assert server.requests_for("/secret") == []
    assert "127.0.0.1" not in connector.connected


def test_a_name_that_stays_public_is_connected_at_the_address_that_was_checked(
    server: FixtureServer,
) -> None:
    port = server._httpd.server_address[1]
    server.routes["/feed.xml"] = Route(
        status=302, headers={"Location": f"http://cdn.member-mirror.example:{port}/new.xml"}
    )
    server.routes["/new.xml"] = Route(body=FEED, headers={"Content-Type": "application/xml"})
    resolver = answers(
        {MEMBER_HOST: [[PUBLIC_ADDRESS]], "cdn.member-mirror.example": [[PUBLIC_ADDRESS]]}
    )
    connector = LocalConnector([PUBLIC_ADDRESS])
    result = fetch(f"http://{MEMBER_HOST}:{port}/feed.xml", resolver, connector)
    assert result.ok and result.content == FEED
    assert connector.connected == [PUBLIC_ADDRESS, PUBLIC_ADDRESS]


def test_a_configured_host_resolving_to_public_and_private_does_not_vouch_for_its_redirects(
    server: FixtureServer,
) -> None:
    port = server._httpd.server_address[1]
    metadata = f"http://169.254.169.254:{port}/latest/meta-data/"
    server.routes["/feed.xml"] = Route(status=302, headers={"Location": metadata})
    server.routes["/latest/meta-data/"] = Route(body=SECRET)
    # Staff wrote this host, so it is fetched whatever it resolves to; but a public address
    # next to a 10.x one must not make it an "intranet host" whose redirects go anywhere.
    resolver = answers({"mixed.member.example": [[PUBLIC_ADDRESS, "10.0.0.7"]]})
    connector = LocalConnector([PUBLIC_ADDRESS, "169.254.169.254"])
    result = fetch(f"http://mixed.member.example:{port}/feed.xml", resolver, connector)
    assert result.content is None
    assert result.error is not None and "169.254.169.254" in result.error
    assert server.requests_for("/latest/meta-data/") == []
    assert "169.254.169.254" not in connector.connected


def test_a_remembered_discovered_feed_is_checked_again_at_every_poll(
    server: FixtureServer, sqlite_store: Store
) -> None:
    port = server._httpd.server_address[1]
    site = server.url("/")
    config = parse_config(
        "network:\n  title: Hostile test network\n  url: https://network.example.org/\n"
        "  feed_url: https://network.example.org/feeds/\nmembers:\n"
        "  - id: member\n    name: Member\n    url: https://member.example.org/\n"
        f"    sources:\n      - url: {site}\n",
        "hostile-feeds.yaml",
    )
    sqlite_store.sync_config(config)
    # Discovery chose a feed on another host when that host's name was public; since then
    # the member's DNS answers 127.0.0.1 for it.
    remembered = f"http://feeds.member.example:{port}/internal.xml"
    sqlite_store.remember_discovered_feed(site, remembered)
    server.routes["/internal.xml"] = Route(
        body=SECRET, headers={"Content-Type": "application/rss+xml"}
    )
    server.routes["/"] = Route(body=b"<html><head><title>home</title></head></html>")
    resolver = answers({"feeds.member.example": [["127.0.0.1"]]})
    source = config.members[0].sources[0]

    async def run() -> PollReport:
        async with Fetcher(resolver=resolver, connector=LocalConnector([])) as fetcher:
            return await poll_source(source, fetcher=fetcher, store=sqlite_store, language=None)

    report = asyncio.run(run())
    assert report.error is not None
    assert server.requests_for("/internal.xml") == []
    assert sqlite_store.latest_stories(10) == []
