"""Feed autodiscovery: finding, ranking and refusing candidates, and `url:` sources end to end."""

from __future__ import annotations

import asyncio
import contextlib
import io
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.parse import parse_source
from aggregator.ingest.parse.discover import CheckedFeed
from aggregator.ingest.parse.discover import Discovery
from aggregator.ingest.parse.discover import FeedCandidate
from aggregator.ingest.parse.discover import common_locations
from aggregator.ingest.parse.discover import discover_feed
from aggregator.ingest.parse.discover import feed_links
from aggregator.ingest.parse.discover import link_refusal
from aggregator.ingest.parse.discover import rank
from aggregator.ingest.poll import poll_all
from aggregator.models import CacheValidators
from aggregator.models import Config
from aggregator.models import FetchResult
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed
from aggregator.models import PollReport
from aggregator.models import SourceConfig
from aggregator.store import Store
from tests.site_fixtures import SITES
from tests.site_fixtures import serve_sites
from tests.support.server import FixtureServer

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
SOURCE = SourceConfig(member_id="gfc", kind="url", url="https://greenway.example.org/")


def wordpress_home() -> bytes:
    return (SITES / "wordpress" / "index.html").read_bytes()


# --- finding candidates ---------------------------------------------------------------


def test_feed_links_are_the_alternate_feeds_in_page_order() -> None:
    found = feed_links(wordpress_home(), "https://greenway.example.org/wordpress/", "text/html")
    assert [(candidate.url, candidate.is_comments) for candidate in found] == [
        ("https://greenway.example.org/wordpress/feed/", False),
        ("https://greenway.example.org/wordpress/comments/feed/", True),
    ]
    # The oEmbed link is rel=alternate too, but application/json+oembed is no feed.
    assert all("oembed" not in candidate.url for candidate in found)
    assert found[0].title == "Greenway Farmworker Coalition » Feed"


def test_feed_links_accept_json_feed_and_atom() -> None:
    page = (SITES / "jsonld" / "news" / "index.html").read_bytes()
    found = feed_links(page, "https://hogar.example.org/jsonld/news/", None)
    assert [(c.url, c.media_type) for c in found] == [
        ("https://hogar.example.org/jsonld/atom.xml", "application/atom+xml"),
        ("https://hogar.example.org/jsonld/feed.json", "application/feed+json"),
    ]


def test_a_page_without_feed_links_has_no_candidates() -> None:
    page = (SITES / "plain" / "news.html").read_bytes()
    assert feed_links(page, "https://cleaners.example.org/plain/news.html", None) == []


def test_common_locations_near_the_page_then_at_the_root_then_squarespace() -> None:
    urls = [candidate.url for candidate in common_locations("https://x.example.org/blog/news")]
    assert urls[:5] == [
        "https://x.example.org/blog/feed/",
        "https://x.example.org/blog/rss.xml",
        "https://x.example.org/blog/atom.xml",
        "https://x.example.org/blog/index.xml",
        "https://x.example.org/blog/feed.json",
    ]
    assert "https://x.example.org/feed/" in urls
    assert urls[-1] == "https://x.example.org/blog/news?format=rss"
    assert len(urls) == len(set(urls))


def test_common_locations_at_the_root_are_not_repeated() -> None:
    urls = [candidate.url for candidate in common_locations("https://x.example.org/")]
    assert urls == [
        "https://x.example.org/feed/",
        "https://x.example.org/rss.xml",
        "https://x.example.org/atom.xml",
        "https://x.example.org/index.xml",
        "https://x.example.org/feed.json",
        "https://x.example.org/?format=rss",
    ]


# --- ranking --------------------------------------------------------------------------


def checked(url: str, *, full: bool, origin: str = "link", title: str | None = None) -> CheckedFeed:
    entry = ParsedEntry(title="t", content_html="<p>all</p>" if full else None, summary_html="s")
    parsed = ParsedFeed(url=url, format="rss20", entries=(entry, entry))
    candidate = FeedCandidate(url=url, origin="link" if origin == "link" else "guess", title=title)
    return CheckedFeed(candidate, parsed=parsed)


def test_full_content_beats_summaries() -> None:
    summaries = checked("https://x.example.org/atom.xml", full=False)
    full = checked("https://x.example.org/feed.json", full=True)
    assert rank([summaries, full])[0] is full


def test_a_comments_feed_loses_even_with_full_content() -> None:
    comments = checked("https://x.example.org/comments/feed/", full=True)
    posts = checked("https://x.example.org/feed/", full=False)
    assert rank([comments, posts])[0] is posts
    titled = checked("https://x.example.org/c.xml", full=True, title="Site » Comments Feed")
    assert rank([titled, posts])[0] is posts


def test_a_named_feed_beats_a_guessed_one_and_unusable_ones_come_last() -> None:
    guessed = checked("https://x.example.org/rss.xml", full=True, origin="guess")
    named = checked("https://x.example.org/feed/", full=True)
    broken = CheckedFeed(FeedCandidate("https://x.example.org/f", "link"), problem="HTTP 500")
    assert rank([broken, guessed, named]) == [named, guessed, broken]
    assert Discovery("https://x.example.org/", (broken,)).chosen is None


# --- safety ---------------------------------------------------------------------------

ADDRESSES = {
    "member.example.org": ["93.184.216.34"],
    "feeds.example.net": ["93.184.216.35"],
    "intranet.example.org": ["10.1.2.3"],  # a public-looking name for a private machine
}


async def fake_resolver(host: str, port: int) -> list[str]:
    """DNS without the network: the tests never look names up for real."""
    if host not in ADDRESSES:
        raise OSError(f"unknown host {host}")
    return ADDRESSES[host]


def refused(page: str, link: str) -> str | None:
    return asyncio.run(link_refusal(page, link, fake_resolver))


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:8080/feed/",
        "http://10.0.0.5/rss.xml",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed",
        "http://intranet.example.org/feed",
        "file:///etc/passwd",
    ],
)
def test_a_public_page_never_leads_to_a_private_address(target: str) -> None:
    reason = refused("https://member.example.org/news/", target)
    assert reason is not None
    assert reason.startswith("refused for safety")


def test_public_to_public_and_private_to_private_are_allowed() -> None:
    assert refused("https://member.example.org/", "https://feeds.example.net/rss") is None
    assert refused("http://127.0.0.1:9000/site/", "http://127.0.0.1:9000/site/feed/") is None


def test_discovery_refuses_a_hostile_link_without_fetching_it() -> None:
    hostile = (
        b"<html><head><link rel='alternate' type='application/rss+xml' "
        b"href='http://127.0.0.1:1/admin/feed'></head><body></body></html>"
    )
    page = FetchResult(
        source=SOURCE,
        fetched_at=NOW,
        final_url="https://member.example.org/",
        status=200,
        content=hostile,
        content_type="text/html",
    )
    requested: list[str] = []

    async def fetch(source: SourceConfig, validators: CacheValidators) -> FetchResult:
        requested.append(source.url)
        return FetchResult(source=source, fetched_at=NOW, final_url=source.url, status=404,
                           error="HTTP 404 (not found)")  # fmt: skip

    discovery = asyncio.run(
        discover_feed(page, fetch, read_feed=parse_source, resolver=fake_resolver)
    )
    assert discovery.chosen is None
    assert discovery.refused[0][0] == "http://127.0.0.1:1/admin/feed"
    assert "not followed: http://127.0.0.1:1/admin/feed refused for safety" in discovery.problem
    assert "http://127.0.0.1:1/admin/feed" not in requested
    assert all(url.startswith("https://member.example.org/") for url in requested)


# --- discovery over HTTP --------------------------------------------------------------


def discover(server: FixtureServer, path: str) -> Discovery:
    async def run() -> Discovery:
        async with Fetcher() as fetcher:
            page = await fetcher.fetch(
                SourceConfig(member_id="m", kind="url", url=server.url(path)), CacheValidators()
            )
            return await discover_feed(page, fetcher.fetch, read_feed=parse_source)

    return asyncio.run(run())


def test_wordpress_posts_feed_is_chosen_over_its_comments_feed() -> None:
    with serve_sites() as server:
        discovery = discover(server, "/wordpress/")
    assert discovery.chosen is not None
    assert discovery.chosen.candidate.url == server.url("/wordpress/feed/")
    assert [check.candidate.url for check in discovery.checked] == [
        server.url("/wordpress/feed/"),
        server.url("/wordpress/comments/feed/"),
    ]


def test_squarespace_without_a_link_is_found_at_format_rss() -> None:
    with serve_sites() as server:
        discovery = discover(server, "/squarespace/blog")
    assert discovery.chosen is not None
    assert discovery.chosen.candidate.url == server.url("/squarespace/blog?format=rss")
    assert discovery.chosen.candidate.origin == "guess"
    assert discovery.chosen.parsed is not None
    assert len(discovery.chosen.parsed.entries) == 2


def test_drupal_rss_xml_is_found_from_its_link() -> None:
    with serve_sites() as server:
        discovery = discover(server, "/drupal/news/")
    assert discovery.chosen is not None
    assert discovery.chosen.candidate.url == server.url("/drupal/rss.xml")


def test_full_content_json_feed_beats_the_summary_atom_listed_first() -> None:
    with serve_sites() as server:
        discovery = discover(server, "/jsonld/news/")
    assert discovery.chosen is not None
    assert discovery.chosen.candidate.url == server.url("/jsonld/feed.json")


def test_a_site_without_any_feed_says_so_in_words_for_staff() -> None:
    with serve_sites() as server:
        discovery = discover(server, "/plain/news.html")
    assert discovery.chosen is None
    assert "no feed was found" in discovery.problem
    assert "'page:'" in discovery.problem


# --- url: sources in a poll -----------------------------------------------------------


def url_config(server: FixtureServer, path: str, kind: str = "url") -> Config:
    return parse_config(config_text(server, path, kind))


def config_text(server: FixtureServer, path: str, kind: str = "url") -> str:
    return f"""\
network:
  title: WSR Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news/
members:
  - id: gfc
    name: Greenway Farmworker Coalition
    url: {server.url("/wordpress/")}
    sources:
      - {kind}: {server.url(path)}
"""


def poll(config: Config, store: Store) -> list[PollReport]:
    store.sync_config(config)

    async def run() -> list[PollReport]:
        async with Fetcher() as fetcher:
            return await poll_all(config, store, fetcher)

    return asyncio.run(run())


def test_a_url_source_polls_the_discovered_feed_and_remembers_it(store: Store) -> None:
    with serve_sites() as server:
        config = url_config(server, "/wordpress/")
        [report] = poll(config, store)
        assert report.discovered == server.url("/wordpress/feed/")
        assert report.new == 2
        assert store.source_state(server.url("/wordpress/")).discovered_url == report.discovered
        # The second poll goes to the feed directly: the home page is not read again.
        [again] = poll(config, store)
        assert len(server.requests_for("/wordpress/")) == 1
        assert again.discovered == server.url("/wordpress/feed/")
        assert again.new == 0
    stories = store.latest_stories(10)
    assert stories[0].title == "Greenhouse workers sign first code of conduct"
    assert "heat breaks" in stories[0].content_html  # the full-content feed was used


def test_a_feed_source_that_is_a_web_page_is_discovered_too(store: Store) -> None:
    with serve_sites() as server:
        [report] = poll(url_config(server, "/drupal/news/", kind="feed"), store)
    assert report.discovered == server.url("/drupal/rss.xml")
    assert report.new == 1


def test_a_feed_that_disappears_is_discovered_again(store: Store) -> None:
    with serve_sites() as server:
        config = url_config(server, "/wordpress/")
        poll(config, store)
        server.routes["/wordpress/feed/"] = Route(status=404, body=b"gone")
        [report] = poll(config, store)
    # The page was read again; only the comments feed is left, and that is never taken.
    assert len(server.requests_for("/wordpress/")) == 2
    assert report.error is not None
    assert "only feed is for comments" in report.error
    assert store.source_state(server.url("/wordpress/")).discovered_url is None


def test_a_url_source_with_no_feed_is_broken_with_the_reason(store: Store) -> None:
    with serve_sites() as server:
        [report] = poll(url_config(server, "/plain/news.html"), store)
    assert report.error is not None
    assert "no feed was found" in report.error


def test_fetch_output_reports_the_discovered_feed(tmp_path: Path) -> None:
    with serve_sites() as server:
        config_path = tmp_path / "feeds.yaml"
        config_path.write_text(config_text(server, "/wordpress/"), encoding="utf-8")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(
                [
                    "--config",
                    str(config_path),
                    "--database",
                    f"sqlite:///{tmp_path / 'a.db'}",
                    "fetch",
                ]
            )
    assert code == 0
    assert f"feed found on the site: {server.url('/wordpress/feed/')}" in out.getvalue()
