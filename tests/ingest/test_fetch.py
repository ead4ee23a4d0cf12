"""The fetcher against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import socket
import urllib.request
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import format_datetime

import httpx

from aggregator import USER_AGENT
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.fetch import cache_max_age
from aggregator.ingest.fetch import retry_after
from aggregator.models import CacheValidators
from aggregator.models import FetchLimits
from aggregator.models import FetchResult
from aggregator.models import SourceConfig
from tests.support.server import FixtureServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>"


def fetch(
    url: str, validators: CacheValidators | None = None, limits: FetchLimits | None = None
) -> FetchResult:
    source = SourceConfig(member_id="sample", kind="feed", url=url)

    async def run() -> FetchResult:
        async with Fetcher(limits) as fetcher:
            return await fetcher.fetch(source, validators or CacheValidators())

    return asyncio.run(run())


def test_fetch_returns_body_type_and_validators(server: FixtureServer) -> None:
    server.routes["/feed"] = Route(
        body=FEED,
        headers={
            "Content-Type": "application/rss+xml",
            "Last-Modified": "Mon, 02 Nov 2026 10:00:00 GMT",
        },
    )
    result = fetch(server.url("/feed"))
    assert result.ok and result.status == 200
    assert result.content == FEED
    assert result.content_type == "application/rss+xml"
    assert result.validators.etag is not None
    assert result.validators.last_modified == "Mon, 02 Nov 2026 10:00:00 GMT"
    request = server.requests_for("/feed")[0]
    assert request.headers["user-agent"] == USER_AGENT
    assert "gzip" in request.headers["accept-encoding"]


def test_conditional_get_sends_validators_and_304_has_no_body(server: FixtureServer) -> None:
    server.routes["/feed"] = Route(body=FEED, headers={"Content-Type": "application/rss+xml"})
    first = fetch(server.url("/feed"))
    second = fetch(server.url("/feed"), first.validators)
    assert second.status == 304 and second.not_modified and second.content is None
    assert second.ok
    assert server.requests_for("/feed")[1].headers["if-none-match"] == first.validators.etag


def test_gzip_body_is_decompressed(server: FixtureServer) -> None:
    server.routes["/feed"] = Route(body=FEED * 20, headers={"Content-Type": "application/xml"})
    request = urllib.request.Request(server.url("/feed"), headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request) as raw:  # what really travels on the wire
        assert raw.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(raw.read()) == FEED * 20
    result = fetch(server.url("/feed"))
    assert result.content == FEED * 20


def test_http_error_is_a_result_with_a_plain_cause(server: FixtureServer) -> None:
    server.routes["/broken"] = Route(status=500, body=b"oops")
    result = fetch(server.url("/broken"))
    assert not result.ok
    assert result.status == 500
    assert result.error == "HTTP 500 (server error)"
    assert result.content is None


def test_404_names_not_found(server: FixtureServer) -> None:
    result = fetch(server.url("/missing"))
    assert result.error == "HTTP 404 (not found)"


def test_permanent_redirect_is_followed_and_reported(server: FixtureServer) -> None:
    server.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    server.routes["/new"] = Route(body=FEED, headers={"Content-Type": "application/xml"})
    result = fetch(server.url("/old"))
    assert result.ok and result.content == FEED
    assert result.final_url == server.url("/new")
    assert result.permanent_redirect == server.url("/new")


def test_temporary_redirect_is_followed_but_not_remembered(server: FixtureServer) -> None:
    server.routes["/old"] = Route(status=302, headers={"Location": "/new"})
    server.routes["/new"] = Route(body=FEED, headers={"Content-Type": "application/xml"})
    result = fetch(server.url("/old"))
    assert result.ok and result.final_url == server.url("/new")
    assert result.permanent_redirect is None


def test_redirect_loop_fails_cleanly(server: FixtureServer) -> None:
    server.routes["/a"] = Route(status=302, headers={"Location": "/b"})
    server.routes["/b"] = Route(status=302, headers={"Location": "/a"})
    result = fetch(server.url("/a"))
    assert result.error is not None and "redirect" in result.error


def test_connection_refused_is_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetch(f"http://127.0.0.1:{port}/feed")
    assert result.status is None
    assert result.error is not None and "refused" in result.error


def test_body_over_the_cap_is_refused(server: FixtureServer) -> None:
    server.routes["/huge"] = Route(body=b"x" * 50_000, headers={"Content-Type": "application/xml"})
    result = fetch(server.url("/huge"), limits=FetchLimits(max_bytes=10_000))
    assert result.content is None
    assert result.error is not None and "larger than" in result.error


def test_slow_server_hits_the_total_deadline(server: FixtureServer) -> None:
    server.routes["/slow"] = Route(body=FEED, delay=3.0)
    result = fetch(server.url("/slow"), limits=FetchLimits(total_timeout=0.5, read_timeout=10))
    # "0.5 s" is the total deadline's message; the read timeout (10 s) words it otherwise.
    assert result.error is not None and "0.5 s" in result.error


def test_cache_control_and_retry_after_headers_are_read() -> None:
    assert cache_max_age(httpx.Headers({"Cache-Control": "public, max-age=600"})) == 600
    assert cache_max_age(httpx.Headers({"Cache-Control": "no-cache, max-age=600"})) is None
    assert cache_max_age(httpx.Headers({"Cache-Control": "max-age=soon"})) is None
    assert retry_after(httpx.Headers({"Retry-After": "120"}), NOW) == NOW + timedelta(minutes=2)
    date = format_datetime(NOW + HOUR, usegmt=True)
    assert retry_after(httpx.Headers({"Retry-After": date}), NOW) == NOW + HOUR
    assert retry_after(httpx.Headers({"Retry-After": "whenever"}), NOW) is None
