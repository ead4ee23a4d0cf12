"""Hostile HTTP: redirects, errors, dead and slow servers, huge and lying bodies.

Every case runs over real sockets against aggregator.demo.server on 127.0.0.1 (or a TLS
server from tests/hostile/server.py). None may hang, crash or lose what was stored.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
import pytest

from aggregator.cli import main
from aggregator.cli import report_line
from aggregator.demo.server import Route
from aggregator.models import FetchLimits
from aggregator.models import PollOutcome
from aggregator.store import Store
from tests.hostile.server import config_for
from tests.hostile.server import export
from tests.hostile.server import fetch_once
from tests.hostile.server import poll
from tests.hostile.server import tls_server
from tests.store.queries import count_items
from tests.support.misbehaving import Transfer
from tests.support.misbehaving import gzip_bomb
from tests.support.misbehaving import never_answer
from tests.support.misbehaving import streaming
from tests.support.server import FixtureServer

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Member news</title><link>https://m.example.org/</link>
<item><title>Harvest crews win water breaks</title><link>https://m.example.org/water</link>
<guid>https://m.example.org/water</guid><pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate>
<description>Crews at three farms now get water breaks every hour.</description></item>
<item><title>Dairy workers meet the buyers</title><link>https://m.example.org/dairy</link>
<guid>https://m.example.org/dairy</guid><pubDate>Sun, 01 Nov 2026 09:00:00 GMT</pubDate>
<description>A first meeting between the workers' council and the buyers.</description></item>
</channel></rss>
"""
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
HTML_ERROR_PAGE = b"""<!DOCTYPE html>
<html><head><title>Service temporarily unavailable</title></head>
<body><h1>We'll be right back</h1><p>Our site is under maintenance.</p></body></html>
"""


def feed_route() -> Route:
    return Route(body=RSS, headers=RSS_TYPE)


# --- redirects ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_is_used_reported_and_feeds_yaml_is_never_rewritten(
    server: FixtureServer, tmp_path: Path, status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/old.xml"] = Route(status=status, headers={"Location": "/new.xml"})
    server.routes["/new.xml"] = feed_route()
    config_path = tmp_path / "feeds.yaml"
    yaml_text = (
        "network:\n  title: T\n  url: https://n.example.org/\n"
        "  feed_url: https://n.example.org/feeds/\n"
        "members:\n  - id: moved\n    name: Moved member\n    url: https://m.example.org/\n"
        f"    sources:\n      - feed: {server.url('/old.xml')}\n"
    )
    config_path.write_text(yaml_text, encoding="utf-8")
    before = config_path.stat().st_mtime_ns
    database = f"sqlite:///{tmp_path / 'a.db'}"

    code = main(["--config", str(config_path), "--database", database, "fetch"])

    out = capsys.readouterr().out
    assert code == 0
    assert f"moved permanently to {server.url('/new.xml')}" in out
    assert "update this address in feeds.yaml" in out
    assert "2 new" in out  # the new address was read
    assert config_path.read_text(encoding="utf-8") == yaml_text
    assert config_path.stat().st_mtime_ns == before
    store = Store.open(database)
    try:
        assert store.source_state(server.url("/old.xml")).moved_to == server.url("/new.xml")
    finally:
        store.close()


@pytest.mark.parametrize("status", [302, 307])
def test_temporary_redirect_is_followed_and_not_remembered(
    server: FixtureServer, sqlite_store: Store, status: int
) -> None:
    server.routes["/feed.xml"] = Route(status=status, headers={"Location": "/today.xml"})
    server.routes["/today.xml"] = feed_route()
    config = config_for({"temp": [server.url("/feed.xml")]})
    [report] = poll(config, sqlite_store)
    assert report.outcome is PollOutcome.NEW and report.new == 2
    assert report.moved_to is None
    assert sqlite_store.source_state(server.url("/feed.xml")).moved_to is None


def test_a_temporary_hop_before_a_permanent_one_is_not_a_move(server: FixtureServer) -> None:
    server.routes["/a"] = Route(status=302, headers={"Location": "/b"})
    server.routes["/b"] = Route(status=301, headers={"Location": "/c"})
    server.routes["/c"] = feed_route()
    result = fetch_once(server.url("/a"))
    assert result.ok and result.final_url == server.url("/c")
    assert result.permanent_redirect is None


def test_redirect_loop_is_cut_off(server: FixtureServer) -> None:
    server.routes["/a"] = Route(status=301, headers={"Location": "/b"})
    server.routes["/b"] = Route(status=301, headers={"Location": "/a"})
    result = fetch_once(server.url("/a"), limits=FetchLimits(max_redirects=5))
    assert result.error == "too many redirects (more than 5), or a redirect loop"
    # The initial request plus five redirects followed, then it stopped.
    assert len(server.requests_for("/a")) + len(server.requests_for("/b")) == 6


def test_redirect_chain_longer_than_the_limit_fails_and_one_within_it_works(
    server: FixtureServer,
) -> None:
    for hop in range(7):
        server.routes[f"/hop{hop}"] = Route(status=302, headers={"Location": f"/hop{hop + 1}"})
    server.routes["/hop7"] = feed_route()
    too_long = fetch_once(server.url("/hop0"), limits=FetchLimits(max_redirects=5))
    assert too_long.error is not None and "too many redirects" in too_long.error
    within = fetch_once(server.url("/hop2"), limits=FetchLimits(max_redirects=5))
    assert within.ok and within.final_url == server.url("/hop7")


# --- HTTP errors ------------------------------------------------------------------------


def test_404_is_reported_in_plain_words(server: FixtureServer, sqlite_store: Store) -> None:
    config = config_for({"missing": [server.url("/no-such-feed.xml")]})
    [report] = poll(config, sqlite_store)
    assert report.outcome is PollOutcome.FAILED
    assert report_line(report) == (
        f"missing: broken: {server.url('/no-such-feed.xml')} HTTP 404 (not found)"
    )


def test_410_gone_marks_the_source_and_it_is_not_polled_again_until_its_address_changes(
    server: FixtureServer, sqlite_store: Store
) -> None:
    server.routes["/closed.xml"] = Route(status=410, body=b"Gone")
    config = config_for({"closed": [server.url("/closed.xml")]})
    [first] = poll(config, sqlite_store)
    assert first.error is not None and "gone" in first.error
    assert sqlite_store.source_state(server.url("/closed.xml")).gone_at is not None

    [second] = poll(config, sqlite_store)
    assert len(server.requests_for("/closed.xml")) == 1  # not asked again
    assert second.outcome is PollOutcome.FAILED
    assert second.error is not None
    assert "removed for good" in second.error and "feeds.yaml" in second.error

    server.routes["/reopened.xml"] = feed_route()
    [third] = poll(config_for({"closed": [server.url("/reopened.xml")]}), sqlite_store)
    assert third.outcome is PollOutcome.NEW and third.new == 2


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_is_carried_to_the_scheduler(
    server: FixtureServer, status: int
) -> None:
    server.routes["/busy.xml"] = Route(status=status, headers={"Retry-After": "120"})
    result = fetch_once(server.url("/busy.xml"))
    assert result.status == status and not result.ok
    assert result.retry_after == result.fetched_at + timedelta(seconds=120)


def test_retry_after_as_an_http_date(server: FixtureServer) -> None:
    server.routes["/busy.xml"] = Route(status=503)
    probe = fetch_once(server.url("/busy.xml"))
    later = (probe.fetched_at + timedelta(hours=2)).replace(microsecond=0)
    server.routes["/busy.xml"] = Route(
        status=503, headers={"Retry-After": format_datetime(later, usegmt=True)}
    )
    assert fetch_once(server.url("/busy.xml")).retry_after == later


def test_a_failed_poll_never_shrinks_the_published_feeds(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    server.routes["/feed.xml"] = feed_route()
    config = config_for({"flaky": [server.url("/feed.xml")]})
    poll(config, sqlite_store)
    before = export(config, sqlite_store, tmp_path / "out")
    assert len(feedparser.parse(before["feed.atom"]).entries) == 2

    broken_bodies = [
        Route(status=500, body=b"Internal Server Error"),
        Route(status=200, body=HTML_ERROR_PAGE, headers={"Content-Type": "text/html"}),
        Route(status=200, body=RSS[: len(RSS) // 3], headers=RSS_TYPE),  # cut mid-item
        Route(status=200, body=b"", headers=RSS_TYPE),
    ]
    for route in broken_bodies:
        server.routes["/feed.xml"] = route
        poll(config, sqlite_store)
        after = export(config, sqlite_store, tmp_path / "out")
        assert len(feedparser.parse(after["feed.atom"]).entries) == 2, route
        assert count_items(sqlite_store) == 2


def test_500_is_reported_and_counted(server: FixtureServer, sqlite_store: Store) -> None:
    server.routes["/feed.xml"] = Route(status=500, body=b"oops")
    config = config_for({"down": [server.url("/feed.xml")]})
    poll(config, sqlite_store)
    [report] = poll(config, sqlite_store)
    assert report.error == "HTTP 500 (server error)"
    assert sqlite_store.source_state(server.url("/feed.xml")).consecutive_failures == 2


# --- servers that are not there, or lie about who they are --------------------------------


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = fetch_once(f"http://127.0.0.1:{port}/feed.xml")
    assert result.error == "connection refused: the server is not accepting connections"


def test_dns_failure() -> None:
    # RFC 6761: names under .invalid never resolve.
    result = fetch_once("http://news.member.invalid/feed.xml")
    assert result.status is None
    assert result.error == "could not find the server (DNS lookup failed)"


def test_tls_certificate_that_cannot_be_verified(tmp_path: Path) -> None:
    with tls_server(tmp_path) as base_url:
        result = fetch_once(base_url + "/feed.xml")
    assert result.status is None and result.content is None
    assert result.error is not None
    assert result.error.startswith("secure connection (TLS) failed")
    assert "certificate" in result.error


# --- slow servers: a total deadline, not only a read timeout ------------------------------


def test_server_that_accepts_and_never_answers_hits_the_deadline(server: FixtureServer) -> None:
    server.responders["/silent.xml"] = never_answer()
    result = fetch_once(
        server.url("/silent.xml"), limits=FetchLimits(total_timeout=1.0, read_timeout=30)
    )
    # This message comes only from the total deadline (the 30 s read timeout would say
    # "timed out waiting for the server"); how long it took is for bench/, not a test.
    assert result.error == "no complete answer within 1 s"


def test_a_byte_a_second_trickle_hits_the_total_deadline(server: FixtureServer) -> None:
    transfer = Transfer()
    # Each byte arrives well inside the read timeout, so only the total deadline stops it.
    server.responders["/trickle.xml"] = streaming(
        len(RSS), chunk_size=1, interval=1.0, transfer=transfer
    )
    result = fetch_once(
        server.url("/trickle.xml"), limits=FetchLimits(total_timeout=2.0, read_timeout=10)
    )
    assert result.error == "no complete answer within 2 s"
    assert transfer.finished.wait(10)
    assert transfer.closed_early and transfer.sent < len(RSS)


# --- bodies that are too big, or lie about their size -------------------------------------


def test_declared_body_over_the_cap_is_refused_before_reading(server: FixtureServer) -> None:
    transfer = Transfer()
    # 64 kB every 0.2 s: reading the first MB alone would take over 3 s.
    server.responders["/huge.xml"] = streaming(
        50 * 1024 * 1024, interval=0.2, transfer=transfer
    )
    result = fetch_once(server.url("/huge.xml"), limits=FetchLimits(max_bytes=1024 * 1024))
    assert result.error == "response larger than 1 MB: not read"
    assert transfer.finished.wait(10)
    assert transfer.closed_early and transfer.sent < transfer.planned
    # Refused on its Content-Length alone: far less than the 1 MB cap was ever sent.
    assert transfer.sent < 512 * 1024


@pytest.mark.parametrize("declared", [None, 1000], ids=["no-length", "lying-length"])
def test_undeclared_body_over_the_cap_is_aborted_while_streaming(
    server: FixtureServer, declared: int | None
) -> None:
    transfer = Transfer()
    size = 100 * 1024 * 1024
    if declared is None:
        responder = streaming(size, length_header=False, transfer=transfer)
    else:
        # A lie the other way: claims a small body, sends 100 MB. Only the declared bytes
        # are read, and the connection is not reused.
        responder = streaming(size, declared_length=declared, transfer=transfer)
    server.responders["/endless.xml"] = responder
    result = fetch_once(server.url("/endless.xml"), limits=FetchLimits(max_bytes=1024 * 1024))
    assert transfer.finished.wait(20)
    # The server saw the connection closed long before it sent everything.
    assert transfer.closed_early
    assert transfer.sent < size // 4
    if declared is None:
        assert result.error == "response larger than 1 MB: not read"
    else:
        assert result.content is not None and len(result.content) == declared


def test_body_shorter_than_its_content_length_is_a_plain_error(server: FixtureServer) -> None:
    server.responders["/short.xml"] = streaming(500, declared_length=5000)
    result = fetch_once(server.url("/short.xml"))
    assert result.content is None
    assert result.error == "the server broke off the connection before sending the whole answer"


def test_gzip_bomb_is_capped_after_decompression(server: FixtureServer) -> None:
    bomb = gzip_bomb(10 * 1024 * 1024)
    assert len(bomb.body) < 20 * 1024  # 10 MB of zeros travel as ~10 kB
    server.routes["/bomb.xml"] = bomb
    result = fetch_once(server.url("/bomb.xml"), limits=FetchLimits(max_bytes=1024 * 1024))
    assert result.content is None
    assert result.error == "response larger than 1 MB: not read"


# --- content types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/octet-stream", "text/html; charset=utf-8"],
    ids=["missing", "text-plain", "octet-stream", "text-html"],
)
def test_a_feed_with_a_wrong_or_missing_content_type_is_still_read(
    server: FixtureServer, sqlite_store: Store, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    server.routes["/feed"] = Route(body=RSS, headers=headers)
    [report] = poll(config_for({"typo": [server.url("/feed")]}), sqlite_store)
    assert report.outcome is PollOutcome.NEW and report.new == 2


def test_html_error_page_served_with_200_is_not_a_feed(
    server: FixtureServer, sqlite_store: Store
) -> None:
    server.routes["/feed.xml"] = Route(
        body=HTML_ERROR_PAGE, headers={"Content-Type": "application/rss+xml"}
    )
    [report] = poll(config_for({"maint": [server.url("/feed.xml")]}), sqlite_store)
    assert report.outcome is PollOutcome.FAILED
    assert report.error is not None
    assert "web page and names no feed" in report.error or "HTML page" in report.error


def test_many_broken_sources_at_once_do_not_stop_the_good_one(
    server: FixtureServer, sqlite_store: Store
) -> None:
    server.routes["/good.xml"] = feed_route()
    server.routes["/error.xml"] = Route(status=500)
    server.responders["/silent.xml"] = never_answer()
    server.routes["/bomb.xml"] = gzip_bomb(4 * 1024 * 1024)
    server.routes["/page.xml"] = Route(body=HTML_ERROR_PAGE, headers={"Content-Type": "text/html"})
    config = config_for(
        {
            "good": [server.url("/good.xml")],
            "bad": [server.url(path) for path in ("/error.xml", "/silent.xml", "/bomb.xml")],
            "page": [server.url("/page.xml")],
        }
    )
    reports = poll(config, sqlite_store, FetchLimits(total_timeout=1.5, max_bytes=1024 * 1024))
    outcomes = {report.source.url: report.outcome for report in reports}
    assert outcomes[server.url("/good.xml")] is PollOutcome.NEW
    assert sum(outcome is PollOutcome.FAILED for outcome in outcomes.values()) == 4
    assert all(report.error for report in reports if report.outcome is PollOutcome.FAILED)


def test_cli_prints_each_failing_cause_in_plain_words(
    server: FixtureServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/error.xml"] = Route(status=503)
    server.routes["/page.xml"] = Route(body=HTML_ERROR_PAGE, headers={"Content-Type": "text/html"})
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text(
        "network:\n  title: T\n  url: https://n.example.org/\n"
        "  feed_url: https://n.example.org/feeds/\n"
        "members:\n  - id: plain\n    name: Plain\n    url: https://m.example.org/\n"
        f"    sources:\n      - feed: {server.url('/error.xml')}\n"
        f"      - feed: {server.url('/page.xml')}\n"
        "      - feed: http://news.member.invalid/feed.xml\n",
        encoding="utf-8",
    )
    code = main(
        ["--config", str(config_path), "--database", f"sqlite:///{tmp_path / 'a.db'}", "fetch"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "HTTP 503 (service unavailable)" in out
    assert "web page and names no feed" in out or "returned an HTML page" in out
    assert "could not find the server (DNS lookup failed)" in out
    for jargon in ("Traceback", "Error:", "httpx", "gaierror", "Exception"):
        assert jargon not in out
