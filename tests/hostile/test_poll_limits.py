"""One member's feed cannot make the network store, publish or export without bound.

One item with 1,000 categories (a 35 KB feed) made `export` write 3,013 files, 91 MB, in
115 s; a 4.5 MB title was stored whole and published on every page and feed; a feed of
20,000 items was stored whole at every poll. Through a real poll from the fixture server
into a real SQLite file, then the export and /status: network.limits (tags_per_item,
title_length, summary_length, items_per_poll) cut each, and the cut is noted on /status.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

import feedparser

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.models import Config
from aggregator.models import PollReport
from aggregator.publish.export import export_files
from aggregator.publish.site import site_files
from aggregator.service.status import status_rows
from aggregator.store import Store
from tests.hostile.server import FEED_URL
from tests.hostile.server import poll
from tests.support.server import FixtureServer

RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
START = datetime(2026, 1, 1, tzinfo=UTC)


def config(feed: str, limits: str = "") -> Config:
    text = f"""\
network:
  title: Limits test network
  url: https://network.example.org/
  feed_url: {FEED_URL}
{limits}members:
  - id: flood
    name: Member flood
    url: https://flood.example.org/
    sources:
      - feed: "{feed}"
"""
    return parse_config(text, "limits-feeds.yaml")


def item(n: int, *, title: str | None = None, tags: int = 0, summary: str = "") -> str:
    categories = "".join(f"<category>topic {t}</category>" for t in range(tags))
    return (
        f"<item><title>{escape(title or f'Story {n}')}</title>"
        f"<link>https://flood.example.org/{n}</link>"
        f"<pubDate>{format_datetime(START + timedelta(minutes=n))}</pubDate>"
        f"<description>{escape(summary or f'Summary {n}')}</description>{categories}</item>"
    )


def rss(items: str) -> bytes:
    return f"<rss version='2.0'><channel><title>Flood</title>{items}</channel></rss>".encode()


def serve_and_poll(
    server: FixtureServer, store: Store, body: bytes, limits: str = ""
) -> tuple[Config, PollReport]:
    server.routes["/feed.xml"] = Route(body=body, headers=RSS_TYPE)
    configured = config(server.url("/feed.xml"), limits)
    [report] = poll(configured, store, configured.network.limits)
    assert report.error is None, report.error
    return configured, report


def status_warning(store: Store, configured: Config) -> str:
    [row] = status_rows(store, configured, datetime.now(UTC))
    return row.warning or ""


def test_an_item_with_a_thousand_tags_keeps_twenty_and_exports_few_files(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    configured, report = serve_and_poll(
        server, sqlite_store, rss(item(1, tags=1000) + item(2, tags=3))
    )
    [first, second] = sorted(sqlite_store.latest_stories(10), key=lambda story: story.title)
    assert len(first.tags) == 20
    assert len(second.tags) == 3
    assert "kept 20 of up to 1,000 tags on an item" in (report.warning or "")
    assert "kept 20 of up to 1,000 tags" in status_warning(sqlite_store, configured)
    files = site_files(configured, sqlite_store, now=datetime.now(UTC))
    written = export_files(tmp_path / "site", files)
    tag_files = [path for path in files if path.startswith("tags/")]
    # Each of the 20 tags has its three feeds and one archive page at most.
    assert len({path.split("/")[1] for path in tag_files}) == 20
    assert len(tag_files) <= 20 * 4
    assert sum(path.stat().st_size for path in written) < 2 * 1024 * 1024


def test_a_megabyte_title_and_summary_are_cut_in_store_and_feed(
    server: FixtureServer, sqlite_store: Store
) -> None:
    huge = "enormous " * 120_000  # ~1 MB
    # Little text (under the 1,000 characters normalize keeps as HTML), much markup: 30 KB.
    summary = f'<a href="https://flood.example.org/{"a" * 120}">x</a> ' * 200
    configured, report = serve_and_poll(
        server, sqlite_store, rss(item(1, title=huge, summary=summary))
    )
    [story] = sqlite_store.latest_stories(10)
    assert len(story.title) <= 501  # 500 characters and an ellipsis
    assert story.title.startswith("enormous enormous")
    assert len(story.summary) <= 4_000
    warning = report.warning or ""
    assert "shortened 1 title to 500 characters" in warning
    assert "shortened 1 summary to an excerpt" in warning
    feed = site_files(configured, sqlite_store, now=datetime.now(UTC))["feed.atom"]
    assert len(feed) < 50_000
    [entry] = feedparser.parse(feed).entries
    assert len(entry.title) <= 501


def test_twenty_thousand_items_keep_the_newest_two_hundred(
    server: FixtureServer, sqlite_store: Store
) -> None:
    body = rss("".join(item(n) for n in range(20_000)))
    configured, report = serve_and_poll(server, sqlite_store, body)
    assert report.new == 200
    stored = sqlite_store.latest_stories(1000)
    assert len(stored) == 200
    assert {story.title for story in stored} == {f"Story {n}" for n in range(19_800, 20_000)}
    assert "kept the newest 200 of 20,000 items" in status_warning(sqlite_store, configured)


def test_the_limits_are_set_in_network_limits(server: FixtureServer, sqlite_store: Store) -> None:
    limits = "  limits:\n    items_per_poll: 3\n    tags_per_item: 2\n    title_length: 12\n"
    body = rss("".join(item(n, tags=5, title=f"Story number {n} of many") for n in range(10)))
    _, report = serve_and_poll(server, sqlite_store, body, limits)
    stored = sqlite_store.latest_stories(100)
    assert len(stored) == 3
    assert all(len(story.tags) == 2 and len(story.title) <= 13 for story in stored)
    warning = report.warning or ""
    assert "kept the newest 3 of 10 items" in warning
    assert "kept 2 of up to 5 tags on each of 3 items" in warning
    assert "shortened 3 titles to 12 characters" in warning
