"""Hostile content, end to end: fetch over 127.0.0.1 -> store -> exported Atom, RSS and JSON.

The normalizer's own tests check the sanitizer function; these check that nothing active
survives the whole trip into what readers get, that dates and identities hold up, and that
a feed re-keying its items on every poll does not flood the combined feed.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

import feedparser
import pytest

from aggregator.demo.server import Route
from aggregator.ingest.normalize import MAX_CONTENT_LENGTH
from aggregator.models import FetchLimits
from aggregator.models import PollOutcome
from aggregator.store import Store
from tests.hostile.server import config_for
from tests.hostile.server import export
from tests.hostile.server import poll
from tests.store.queries import count_items
from tests.support.server import FixtureServer

FIXTURES = Path(__file__).parent / "fixtures"
RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
ACTIVE_MARKERS = re.compile(
    rb"EVIL-|<script|&lt;script|javascript:|onerror|onclick|onload|expression\(|data:text"
    rb"|<iframe|&lt;iframe|http-equiv|<svg|&lt;svg|<form|&lt;form",
    re.IGNORECASE,
)


def item_xml(
    *,
    title: str,
    description: str,
    link: str | None = None,
    guid: str | None = None,
    date: str | None = None,
) -> str:
    parts = [f"<title>{escape(title)}</title>"]
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    parts.append(f"<description>{escape(description)}</description>")
    return "<item>" + "".join(parts) + "</item>"


def rss(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>Alliance</title><link>https://alliance.example.org/</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def serve_and_publish(
    server: FixtureServer,
    store: Store,
    tmp_path: Path,
    body: bytes,
    limits: FetchLimits | None = None,
) -> tuple[dict[str, bytes], PollOutcome]:
    server.routes["/feed.xml"] = Route(body=body, headers=RSS_TYPE)
    config = config_for({"alliance": [server.url("/feed.xml")]})
    [report] = poll(config, store, limits)
    return export(config, store, tmp_path / "published"), report.outcome


def published_entries(files: dict[str, bytes]) -> list[feedparser.FeedParserDict]:
    return list(feedparser.parse(files["feed.atom"]).entries)


def test_active_content_never_reaches_any_published_format(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    hacked = (FIXTURES / "wordpress_hacked_item.html").read_text(encoding="utf-8")
    body = rss(
        item_xml(
            title="Heat standard signed",
            link="https://alliance.example.org/news/heat/",
            description=hacked,
        )
    )
    files, outcome = serve_and_publish(server, sqlite_store, tmp_path, body)
    assert outcome is PollOutcome.NEW
    for name, content in files.items():
        found = ACTIVE_MARKERS.findall(content)
        assert not found, f"{name}: {found}"
    database = b"".join(path.read_bytes() for path in tmp_path.glob("aggregator.db*"))
    assert not re.search(rb"EVIL-", database)

    [story] = json.loads(files["feed.json"])["items"]
    html = story["content_html"]
    assert "Crews now get water breaks every hour." in html
    assert '<img src="https://alliance.example.org/photos/crew.jpg" alt="Crew at noon"' in html
    assert '<a href="https://alliance.example.org/events/december/"' in html
    assert "pixel" not in html and "open.gif" not in html and "stats.example.net" not in html


def test_titles_with_markup_and_control_characters_become_clean_text(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        b"<title>Alliance</title><id>urn:x:alliance</id><entry><id>urn:x:1</id>"
        b'<title type="html">&lt;b&gt;Harvest&lt;/b&gt; crews\x07 win'
        b" &lt;script&gt;x('EVIL-T')&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        b"\x1b water\x0c breaks</title>"
        b'<link href="https://alliance.example.org/t"/><content>Text.</content></entry></feed>'
    )
    files, _ = serve_and_publish(server, sqlite_store, tmp_path, body)
    [entry] = published_entries(files)
    assert entry.title == "Harvest crews win water breaks"
    for content in files.values():
        assert not ACTIVE_MARKERS.search(content)
        assert b"\x07" not in content and b"\x1b" not in content
    assert not feedparser.parse(files["feed.rss"]).bozo


def test_a_plain_text_title_keeps_angle_brackets_as_inert_text(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    body = rss(
        item_xml(title="Why 3 < 5 and <script> is just text", link="https://a.example.org/x",
                 description="x")
    )  # fmt: skip
    files, _ = serve_and_publish(server, sqlite_store, tmp_path, body)
    [entry] = published_entries(files)
    assert entry.title == "Why 3 < 5 and <script> is just text"
    assert b"<script>" not in files["feed.atom"] + files["feed.rss"]


def test_a_10_mb_item_is_cut_sensibly_and_the_fetch_cap_still_applies(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    paragraph = "<p>" + "Workers met the growers again to talk about shade and water. " * 8 + "</p>"
    huge = paragraph * (10 * 1024 * 1024 // len(paragraph))
    body = rss(
        item_xml(title="Minutes", link="https://alliance.example.org/minutes", description=huge)
    )
    assert len(body) > 10 * 1024 * 1024
    limits = FetchLimits(max_bytes=20 * 1024 * 1024)
    files, outcome = serve_and_publish(server, sqlite_store, tmp_path, body, limits)
    assert outcome is PollOutcome.NEW
    [story] = json.loads(files["feed.json"])["items"]
    content = story["content_html"]
    assert MAX_CONTENT_LENGTH // 2 < len(content) <= MAX_CONTENT_LENGTH + 20
    assert content.endswith("</p><p>…</p>")  # cut at a paragraph end, and says so
    assert len(story["summary"]) < 400

    # With the default 10 MB cap the next (edited) body is refused whole, and what was
    # stored stays published.
    server.routes["/feed.xml"] = Route(body=body.replace(b"Minutes", b"Minutes!"), headers=RSS_TYPE)
    config = config_for({"alliance": [server.url("/feed.xml")]})
    [report] = poll(config, sqlite_store)
    assert report.outcome is PollOutcome.FAILED
    assert report.error == "response larger than 10 MB: not read"
    assert len(published_entries(export(config, sqlite_store, tmp_path / "p2"))) == 1


def test_dates_far_future_old_and_unparseable_fall_back_to_the_fetch_time(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    future = format_datetime(now + timedelta(days=400), usegmt=True)
    body = rss(
        item_xml(title="Future", link="https://a.example.org/f", date=future, description="f"),
        item_xml(title="Ancient", link="https://a.example.org/a", description="a",
                 date="Thu, 01 Jan 1970 00:00:00 GMT"),
        item_xml(title="Pre 1990", link="https://a.example.org/p", description="p",
                 date="Mon, 15 Aug 1988 10:00:00 GMT"),
        item_xml(title="Garbage", link="https://a.example.org/g", description="g",
                 date="next Tuesday-ish"),
        item_xml(title="Fine", link="https://a.example.org/ok", description="ok",
                 date="Mon, 02 Nov 2026 10:00:00 GMT"),
    )  # fmt: skip
    files, _ = serve_and_publish(server, sqlite_store, tmp_path, body)
    data = {story["title"]: story for story in json.loads(files["feed.json"])["items"]}

    def published(title: str) -> datetime:
        return datetime.fromisoformat(data[title]["date_published"].replace("Z", "+00:00"))

    for title in ("Future", "Ancient", "Pre 1990", "Garbage"):
        assert abs(published(title) - now) < timedelta(minutes=5), title
    assert published("Fine") == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)

    # The next poll, with those items edited, keeps each first-seen time rather than
    # moving it to the new "now" (which would bump them to the top of the feed).
    first = {title: published(title) for title in ("Ancient", "Garbage")}
    edited = body.replace(b"<description>a</description>", b"<description>a2</description>")
    edited = edited.replace(b"<description>g</description>", b"<description>g2</description>")
    server.routes["/feed.xml"] = Route(body=edited, headers=RSS_TYPE)
    config = config_for({"alliance": [server.url("/feed.xml")]})
    poll(config, sqlite_store, clock=lambda: datetime.now(UTC) + timedelta(hours=3))
    again = json.loads(export(config, sqlite_store, tmp_path / "p2")["feed.json"])
    later = {story["title"]: story["date_published"] for story in again["items"]}
    for title, moment in first.items():
        assert datetime.fromisoformat(later[title].replace("Z", "+00:00")) == moment


def test_items_without_link_or_id_are_kept_once_by_content(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    body = rss(
        item_xml(title="Meeting tonight", description="At the hall, 7 pm."),
        item_xml(title="Meeting tonight", description="At the church, 8 pm."),
    )
    serve_and_publish(server, sqlite_store, tmp_path, body)
    # The same items in another order, re-served: nothing new.
    server.routes["/feed.xml"] = Route(
        body=rss(
            item_xml(title="Meeting tonight", description="At the church, 8 pm."),
            item_xml(title="Meeting tonight", description="At the hall, 7 pm."),
        ),
        headers=RSS_TYPE,
    )
    [report] = poll(config_for({"alliance": [server.url("/feed.xml")]}), sqlite_store)
    assert report.new == 0
    assert count_items(sqlite_store) == 2


@pytest.mark.parametrize("with_links", [True, False], ids=["stable-links", "no-links"])
def test_guids_that_change_on_every_poll_do_not_flood_the_combined_feed(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path, with_links: bool
) -> None:
    titles = ["Water breaks won", "Buyers meet council", "Shade at every field"]

    def body(poll_number: int) -> bytes:
        return rss(
            *(
                item_xml(
                    title=title,
                    description=f"{title}: the full story, told by the workers themselves.",
                    link=f"https://alliance.example.org/{n}/" if with_links else None,
                    # A broken plugin stamps a fresh GUID on every item at every request.
                    guid=hashlib.sha1(f"{n}/{poll_number}".encode()).hexdigest(),
                    date="Mon, 02 Nov 2026 10:00:00 GMT",
                )
                for n, title in enumerate(titles)
            )
        )

    config = config_for({"alliance": [server.url("/feed.xml")]})
    for poll_number in range(5):
        server.routes["/feed.xml"] = Route(body=body(poll_number), headers=RSS_TYPE)
        poll(config, sqlite_store)
    files = export(config, sqlite_store, tmp_path / "published")
    assert sorted(entry.title for entry in published_entries(files)) == sorted(titles)
    assert len(json.loads(files["feed.json"])["items"]) == 3
    assert count_items(sqlite_store) == 3  # re-keyed, not re-inserted
