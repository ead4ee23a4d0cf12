"""Reading news pages without selectors, on saved pages of the CMSs members use."""

from __future__ import annotations

import asyncio
from datetime import UTC
from datetime import datetime

import pytest

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.follow import follow_new_items
from aggregator.ingest.normalize import normalize_entries
from aggregator.ingest.parse.heuristics import PageMetadata
from aggregator.ingest.parse.heuristics import page_metadata
from aggregator.ingest.parse.heuristics import parse_page_heuristically
from aggregator.ingest.parse.heuristics import with_metadata
from aggregator.ingest.poll import poll_all
from aggregator.models import CacheValidators
from aggregator.models import FetchResult
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed
from aggregator.models import PollReport
from aggregator.models import SourceConfig
from aggregator.store import Store
from tests.site_fixtures import SITES
from tests.site_fixtures import serve_sites

BASE = "https://member.example.org"
NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)


def read(path: str, url: str | None = None) -> ParsedFeed:
    return parse_page_heuristically(
        (SITES / path).read_bytes(), url or f"{BASE}/{path}", "text/html; charset=utf-8"
    )


def summary(entries: tuple[ParsedEntry, ...]) -> list[tuple[str | None, str | None, str]]:
    return [
        (
            entry.title,
            entry.link,
            entry.published.isoformat() if entry.published else "no date",
        )
        for entry in entries
    ]


def test_wordpress_posts_and_not_the_sidebar_or_menus() -> None:
    parsed = read("wordpress/index.html")
    assert summary(parsed.entries) == [
        (
            "Greenhouse workers sign first code of conduct",
            "/wordpress/2025/03/12/greenhouse-workers-sign-code-of-conduct/",
            # The published <time>, not the "updated" one printed next to it.
            "2025-03-12T14:00:00+00:00",
        ),
        (
            "Our radio show is back on Saturdays",
            "/wordpress/2025/02/20/radio-show-returns/",
            "2025-02-20T12:00:00+00:00",
        ),
        (
            "Winter assembly recap: what members decided",
            "/wordpress/2025/01/25/winter-assembly-recap/",
            "2025-01-25T23:30:00+00:00",
        ),
    ]
    first = parsed.entries[0]
    assert first.image == "/wordpress/wp-content/uploads/2025/03/greenhouse-1568x882.jpg"
    assert first.summary_html is not None and "four greenhouses" in first.summary_html
    assert first.language == "en-US"
    assert parsed.warning is None


def test_squarespace_titles_in_plain_links_and_spanish_dates() -> None:
    parsed = read("squarespace/blog/index.html")
    assert summary(parsed.entries) == [
        (
            "Victoria en la lavandería: salarios atrasados pagados",
            "/squarespace/blog/victoria-en-la-lavanderia",
            "2025-03-04T00:00:00+00:00",
        ),
        (
            "Taller de seguridad en la construcción este sábado",
            "/squarespace/blog/taller-de-seguridad",
            "2025-02-26T00:00:00+00:00",
        ),
    ]
    # The lazy-loading image and the excerpt, never "Leer más".
    assert (
        parsed.entries[0].image
        == "https://images.squarespace-cdn.com/content/v1/5f1a/lavanderia.jpg"
    )
    assert parsed.entries[0].summary_html is not None
    assert "salarios atrasados" in parsed.entries[0].summary_html
    assert parsed.language == "es-US"


def test_drupal_views_rows_with_numeric_month_first_dates() -> None:
    parsed = read("drupal/news/index.html")
    assert summary(parsed.entries) == [
        (
            "Dairy workers win heat-safety protocol at twelve farms",
            "/drupal/node/41",
            "2025-03-10T14:30:00+00:00",
        ),
        (
            "Members testify at the state agriculture committee",
            "/drupal/node/39",
            "2025-02-18T09:15:00+00:00",
        ),
        (
            "Winter newsletter: organizing in the north barns",
            "/drupal/node/36",
            "2025-01-31T16:00:00+00:00",
        ),
    ]
    # "Recent content" in the sidebar repeats two stories: they are not extra entries.
    assert len(parsed.entries) == 3


def test_wix_cards_with_hashed_classes_and_no_dates_warn() -> None:
    parsed = read("wix/index.html")
    assert [entry.title for entry in parsed.entries] == [
        "Orchard crews elect their first safety committee",
        "Free bus to the wage-board hearing",
    ]
    assert all(entry.published is None for entry in parsed.entries)
    assert parsed.warning is not None and "show no dates" in parsed.warning
    assert parsed.entries[1].summary_html is not None
    assert "union hall" in parsed.entries[1].summary_html


def test_json_ld_item_list_on_a_page_rendered_by_javascript() -> None:
    parsed = read("jsonld/news/index.html")
    assert summary(parsed.entries) == [
        (
            "Trabajadoras del hogar logran contrato modelo",
            "/jsonld/news/contrato-modelo",
            "2025-03-08T16:00:00+00:00",
        ),
        (
            "Asamblea regional en Monterrey",
            "/jsonld/news/asamblea-monterrey",
            "2025-02-15T15:00:00+00:00",
        ),
    ]
    assert parsed.entries[0].image == "/jsonld/img/contrato.jpg"
    assert parsed.entries[0].authors == ("Alianza",)
    assert parsed.language == "es"


def test_a_plain_page_with_no_structure_or_metadata() -> None:
    parsed = read("plain/news.html")
    # The page lists one story twice and one with a relative link, as written (preview warns).
    assert [(entry.link, entry.published) for entry in parsed.entries] == [
        ("/plain/news/2025-03-night-shift.html", datetime(2025, 3, 9, tzinfo=UTC)),
        ("/plain/news/2025-02-rally.html", datetime(2025, 2, 27, tzinfo=UTC)),
        ("news/2025-01-dues.html", datetime(2025, 1, 15, tzinfo=UTC)),
        ("/plain/news/2025-03-night-shift.html", datetime(2025, 3, 9, tzinfo=UTC)),
    ]
    assert parsed.entries[1].title == "Rally at the office tower on Friday"
    # The menu column's links have no dates: they are not a listing.
    assert all("join" not in (entry.link or "") for entry in parsed.entries)


def test_markup_and_json_ld_are_merged_by_link() -> None:
    page = b"""<html><head><script type="application/ld+json">
    {"@type": "ItemList", "itemListElement": [
      {"@type": "ListItem", "url": "https://m.example.org/news/a", "name": "A"},
      {"@type": "ListItem", "item": {"@type": "NewsArticle", "url": "/news/b",
       "headline": "B", "datePublished": "2025-03-01T10:00:00Z"}}]}
    </script></head><body><main>
    <article><h2><a href="/news/a">First story on the list</a></h2><time datetime="2025-03-02">2 March</time></article>
    <article><h2><a href="/news/b">Second story on the list</a></h2></article>
    </main></body></html>"""  # noqa: E501
    parsed = parse_page_heuristically(page, "https://m.example.org/news/", "text/html")
    assert summary(parsed.entries) == [
        ("First story on the list", "/news/a", "2025-03-02T00:00:00+00:00"),
        ("Second story on the list", "/news/b", "2025-03-01T10:00:00+00:00"),
    ]


def test_a_page_with_no_listing_says_what_to_do() -> None:
    page = b"<html><body><nav><a href='/a'>About us here</a></nav><p>Welcome!</p></body></html>"
    parsed = parse_page_heuristically(page, "https://m.example.org/", "text/html")
    assert parsed.entries == ()
    assert parsed.warning is not None and "add 'selectors:'" in parsed.warning


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mon, 03/10/2025 - 14:30", datetime(2025, 3, 10, 14, 30, tzinfo=UTC)),
        ("25/03/2025", datetime(2025, 3, 25, tzinfo=UTC)),
    ],
)
def test_numeric_dates_in_listings(text: str, expected: datetime) -> None:
    page = f"""<html><body><ul>
      <li><a href="/1">First item of the list</a> <span class="date">{text}</span></li>
      <li><a href="/2">Second item of the list</a> <span class="date">{text}</span></li>
      <li><a href="/3">Third item of the list</a> <span class="date">{text}</span></li>
    </ul></body></html>""".encode()
    parsed = parse_page_heuristically(page, "https://m.example.org/", "text/html")
    assert [entry.published for entry in parsed.entries] == [expected] * 3


# --- one story's own page -------------------------------------------------------------


def test_page_metadata_prefers_json_ld_then_open_graph() -> None:
    content = (SITES / "wix" / "post" / "orchard-crews-elect-safety-committee.html").read_bytes()
    metadata = page_metadata(content, f"{BASE}/post/orchard", "text/html")
    assert metadata.published == datetime(2025, 3, 3, 15, 12, 44, tzinfo=UTC)
    assert metadata.updated == datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
    assert metadata.image == "https://static.wixstatic.com/media/b5c1_orchard.jpg"
    assert metadata.description == (
        "Forty pickers voted in three orchards last week; the committee meets the growers in April."
    )
    assert metadata.language == "en"


def test_page_metadata_from_open_graph_alone() -> None:
    content = (SITES / "wix" / "post" / "bus-to-the-hearing.html").read_bytes()
    metadata = page_metadata(content, f"{BASE}/wix/post/bus", "text/html")
    assert metadata.published == datetime(2025, 2, 21, 12, 0, tzinfo=UTC)
    assert metadata.image == "/wix/media/bus.jpg"
    assert metadata.description == "Seats leave from the union hall at 6 a.m."


def test_with_metadata_fills_gaps_and_keeps_what_the_listing_had() -> None:
    entry = ParsedEntry(link="/post/1", title="Listing title", summary_html="<p>Listing</p>")
    metadata = PageMetadata(
        title="Page title",
        published=datetime(2025, 3, 1, tzinfo=UTC),
        image="/media/1.jpg",
        description="Page description",
        url=f"{BASE}/post/1",
    )
    merged = with_metadata(entry, metadata)
    assert merged.title == "Listing title"
    assert merged.summary_html == "<p>Listing</p>"
    assert merged.published == datetime(2025, 3, 1, tzinfo=UTC)
    assert merged.image == f"{BASE}/media/1.jpg"  # relative to the story page, made absolute
    assert with_metadata(ParsedEntry(link="/x"), metadata).summary_html == "<p>Page description</p>"


# --- page sources in a poll -----------------------------------------------------------


def poll_page(store: Store, url: str, follow: bool) -> list[PollReport]:
    config = parse_config(f"""\
network:
  title: WSR Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news/
members:
  - id: hjn
    name: Harvest Justice Network
    url: {url}
    sources:
      - page: {url}
        follow: {"true" if follow else "false"}
""")
    store.sync_config(config)

    async def run() -> list[PollReport]:
        async with Fetcher() as fetcher:
            return await poll_all(config, store, fetcher)

    return asyncio.run(run())


def test_follow_reads_dates_and_images_from_each_new_story_once(store: Store) -> None:
    with serve_sites() as server:
        [report] = poll_page(store, server.url("/wix/"), follow=True)
        assert report.new == 2
        stories = {story.title: story for story in store.latest_stories(10)}
        orchard = stories["Orchard crews elect their first safety committee"]
        assert orchard.published == datetime(2025, 3, 3, 15, 12, 44, tzinfo=UTC)
        bus = stories["Free bus to the wage-board hearing"]
        assert bus.published == datetime(2025, 2, 21, 12, 0, tzinfo=UTC)
        assert bus.image == server.url("/wix/media/bus.jpg")
        assert len(server.requests_for("/wix/post/bus-to-the-hearing")) == 1
        # A changed listing is read again, but known stories are not followed again
        # and keep the dates their own pages gave.
        server.routes["/wix/"] = Route(
            body=(SITES / "wix" / "index.html").read_bytes() + b"<!-- edited -->",
            headers={"Content-Type": "text/html"},
        )
        [again] = poll_page(store, server.url("/wix/"), follow=True)
        assert len(server.requests_for("/wix/post/bus-to-the-hearing")) == 1
    assert again.new == 0 and again.updated == 0
    assert store.latest_stories(10)[0].published == datetime(2025, 3, 3, 15, 12, 44, tzinfo=UTC)


def test_without_follow_story_pages_are_not_fetched(store: Store) -> None:
    with serve_sites() as server:
        [report] = poll_page(store, server.url("/wix/"), follow=False)
        assert report.new == 2
        assert report.warning is not None and "show no dates" in report.warning
        assert server.requests_for("/wix/post/bus-to-the-hearing") == []


def test_follow_never_fetches_a_private_story_page_from_a_public_listing() -> None:
    listing = ParsedFeed(
        url="https://member.example.org/news/",
        format="html-page",
        entries=(
            ParsedEntry(link="http://127.0.0.1:1/admin", title="Hostile link on a public page"),
        ),
    )
    source = SourceConfig(member_id="m", kind="page", url=listing.url, follow=True)
    requested: list[str] = []

    async def fetch(config: SourceConfig, validators: CacheValidators) -> FetchResult:
        requested.append(config.url)
        raise AssertionError("nothing may be fetched")

    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]  # member.example.org, without real DNS

    items = asyncio.run(
        follow_new_items(
            listing,
            normalize_entries(listing, source, NOW),
            source,
            set(),
            fetch,
            NOW,
            None,
            resolver=resolver,
        )
    )
    assert [item.title for item in items] == ["Hostile link on a public page"]
    assert requested == []
