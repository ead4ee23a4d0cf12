"""Tests for aggregator.ingest.parse.pages and parse_source on page sources: default and explicit
selectors on a realistic news page, <base href>, charsets, lenient dates, and failure modes."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.ingest.parse import parse_source
from aggregator.ingest.parse.pages import decode_page
from aggregator.ingest.parse.pages import parse_date
from aggregator.ingest.parse.pages import parse_page
from aggregator.models import FetchResult
from aggregator.models import PageSelectors
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig
from tests import paths

FIXTURES = paths.FIXTURES
PAGE_URL = "https://greenway-coalition.example.org/news/index.php?lang=en"
CARDS = PageSelectors(item="article.news-card")


def cards_page() -> bytes:
    return (FIXTURES / "news_page_cards.html").read_bytes()


def fetched(
    content: bytes | None, selectors: PageSelectors | None, content_type: str | None = "text/html"
) -> FetchResult:
    source = SourceConfig(member_id="greenway", kind="page", url=PAGE_URL, selectors=selectors)
    return FetchResult(
        source=source,
        fetched_at=datetime(2025, 3, 13, 8, 0, tzinfo=UTC),
        final_url=PAGE_URL,
        status=200,
        content=content,
        content_type=content_type,
    )


def page(body: str, selectors: PageSelectors = CARDS, url: str = PAGE_URL) -> ParsedFeed:
    return parse_page(body.encode(), url, "text/html; charset=utf-8", selectors)


# --- the realistic page, default selectors --------------------------------------------


@pytest.fixture
def defaults() -> ParsedFeed:
    return parse_source(fetched(cards_page(), CARDS, "text/html; charset=UTF-8"))


def test_page_level_fields(defaults: ParsedFeed) -> None:
    assert defaults.format == "html-page"
    assert defaults.url == PAGE_URL
    assert defaults.title == "News | Greenway Farmworker Coalition"
    assert defaults.link == PAGE_URL
    assert defaults.language == "en-US"
    assert defaults.warning is None


def test_default_selectors_extract_every_card_but_the_promo(defaults: ParsedFeed) -> None:
    assert [entry.title for entry in defaults.entries] == [
        "Greenhouse workers sign first code of conduct",
        "Our radio show is back on Saturdays",
        "Winter assembly recap",
    ]
    assert [entry.link for entry in defaults.entries] == [
        "2025/03/greenhouse-agreement",
        "/news/2025/02/radio-show",
        None,
    ]
    assert all(entry.guid is None for entry in defaults.entries)
    assert all(entry.title_is_html is False for entry in defaults.entries)
    assert all(entry.language == "en-US" for entry in defaults.entries)


def test_links_stay_relative_and_base_href_is_honoured(defaults: ParsedFeed) -> None:
    # <base href="/news/"> resolved against the page URL; normalize resolves the links.
    assert {entry.base_url for entry in defaults.entries} == {
        "https://greenway-coalition.example.org/news/"
    }


def test_default_dates_come_from_time_datetime(defaults: ParsedFeed) -> None:
    assert [entry.published for entry in defaults.entries] == [
        datetime(2025, 3, 12, 22, 0, tzinfo=UTC),  # 15:00 -07:00
        None,  # a <span class="date"> is not found without a date selector
        datetime(2025, 1, 25, tzinfo=UTC),
    ]
    assert all(entry.updated is None for entry in defaults.entries)


def test_default_summary_is_the_raw_inner_html_of_the_first_paragraph(
    defaults: ParsedFeed,
) -> None:
    assert [entry.summary_html for entry in defaults.entries] == [
        "After two years of organizing, workers at <strong>four greenhouses</strong>"
        " have a code of conduct.",
        "Tune in at 7\xa0a.m. for news &amp; music.",
        "Notes from the winter assembly are below.",
    ]
    assert all(entry.content_html is None for entry in defaults.entries)


def test_default_images_honour_lazy_loading(defaults: ParsedFeed) -> None:
    assert [entry.image for entry in defaults.entries] == [
        "/media/2025/03/greenhouse-crew.jpg",
        "/media/2025/02/radio-show.jpg",  # src="" with data-src
        "/media/2025/01/assembly-480.jpg",  # srcset only: its first candidate
    ]


# --- explicit selectors ---------------------------------------------------------------


def test_partial_selectors_fall_back_to_defaults_for_the_rest() -> None:
    selectors = PageSelectors(item="article.news-card", date=".date, time", summary="p.more")
    feed = parse_page(cards_page(), PAGE_URL, "text/html", selectors)
    first, second, third = feed.entries
    assert first.title == "Greenhouse workers sign first code of conduct"
    assert first.summary_html == '<a href="2025/03/greenhouse-agreement">Read more</a>'
    assert first.published == datetime(2025, 3, 12, 22, 0, tzinfo=UTC)
    assert second.published == datetime(2025, 2, 20, tzinfo=UTC)  # the span's text
    assert second.summary_html is None
    assert third.published == datetime(2025, 1, 25, tzinfo=UTC)


def test_explicit_title_and_link_selectors_skip_items_with_neither() -> None:
    selectors = PageSelectors(
        item="section.news-list > article", title="h2", link="p.more", image="img.thumb"
    )
    feed = parse_page(cards_page(), PAGE_URL, "text/html", selectors)
    # The h3-titled card has no h2 and no p.more: nothing to show, so it is skipped.
    assert [(entry.title, entry.link) for entry in feed.entries] == [
        ("Greenhouse workers sign first code of conduct", "2025/03/greenhouse-agreement"),
        ("Our radio show is back on Saturdays", None),
    ]
    assert feed.entries[1].image == "/media/2025/02/radio-show.jpg"


def test_item_that_is_itself_a_link() -> None:
    feed = page(
        '<div class="posts"><a class="post" href="/news/wage-board">'
        "<h3>Wage board hearing</h3><img src='data:image/gif;base64,R0lGOD' "
        "data-lazy-src='/img/hearing.jpg'></a></div>",
        PageSelectors(item="a.post"),
    )
    (entry,) = feed.entries
    assert entry.link == "/news/wage-board"
    assert entry.title == "Wage board hearing"
    assert entry.image == "/img/hearing.jpg"
    assert entry.base_url == PAGE_URL  # no <base>: the page URL itself


def test_title_defaults_to_the_first_link_text_without_a_heading() -> None:
    feed = page(
        "<ul><li class='n'><a href='/a'>  Farm\n  safety   week </a> <span>2 April 2025</span>"
        "</li></ul>",
        PageSelectors(item="li.n", date="span"),
    )
    (entry,) = feed.entries
    assert entry.title == "Farm safety week"
    assert entry.published == datetime(2025, 4, 2, tzinfo=UTC)


def test_selector_matching_nothing_is_a_warning_not_an_error() -> None:
    feed = parse_source(fetched(cards_page(), PageSelectors(item="div.post-card")))
    assert feed.entries == ()
    assert feed.warning == "the selector 'div.post-card' matched nothing on the page"
    assert feed.title == "News | Greenway Farmworker Coalition"


def test_items_without_title_or_link_give_a_warning() -> None:
    feed = parse_page(cards_page(), PAGE_URL, "text/html", PageSelectors(item="footer p"))
    assert feed.entries == ()
    assert feed.warning == (
        "the selector 'footer p' matched 1 element(s), but none had a title or a link"
    )


@pytest.mark.parametrize(
    "selectors",
    [PageSelectors(item="article[class="), PageSelectors(item="article", title="h2 >> a")],
)
def test_invalid_css_is_a_parse_error(selectors: PageSelectors) -> None:
    with pytest.raises(ParseError) as raised:
        parse_source(fetched(cards_page(), selectors))
    assert raised.value.member_id == "greenway"
    assert "is not valid CSS" in raised.value.cause


def test_page_source_without_selectors_is_read_heuristically() -> None:
    # Selectors became optional (issue 4): parse/heuristics.py finds the listing by its shape.
    parsed = parse_source(fetched(cards_page(), None))
    assert [entry.title for entry in parsed.entries][:2] == [
        "Greenhouse workers sign first code of conduct",
        "Our radio show is back on Saturdays",
    ]


# --- charsets -------------------------------------------------------------------------


LATIN1_PAGE = (
    "<html><head><meta charset='utf-8'><title>Campaña</title></head><body>"
    "<article><h2><a href='/n/1'>Trabajadores agrícolas “unidos”</a></h2></article>"
    "</body></html>"
)


def test_http_charset_wins_over_meta() -> None:
    body = LATIN1_PAGE.replace("“", '"').replace("”", '"').encode("iso-8859-1")
    feed = parse_page(body, PAGE_URL, "text/html; charset=ISO-8859-1", PageSelectors("article"))
    assert feed.title == "Campaña"
    assert feed.entries[0].title == 'Trabajadores agrícolas "unidos"'


def test_meta_charset_is_used_without_a_header_charset() -> None:
    body = LATIN1_PAGE.replace("charset='utf-8'", "charset='windows-1252'").encode("cp1252")
    feed = parse_page(body, PAGE_URL, "text/html", PageSelectors("article"))
    assert feed.entries[0].title == "Trabajadores agrícolas “unidos”"


def test_latin1_labels_are_read_as_windows_1252_like_browsers_do() -> None:
    body = b"<p>\x93quoted\x94 caf\xe9</p>"
    assert decode_page(body, "text/html; charset=iso-8859-1") == "<p>“quoted” café</p>"


def test_http_equiv_meta_and_bom_and_fallback() -> None:
    http_equiv = (
        b'<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-15">caf\xe9 \xa4'
    )
    assert decode_page(http_equiv, None).endswith("café €")
    assert decode_page(b"\xef\xbb\xbf<p>a\xc3\xb1o</p>", None) == "<p>año</p>"
    # No clue at all: UTF-8, with bad bytes replaced rather than failing.
    assert decode_page(b"<p>a\xc3\xb1o \xff</p>", "text/html; charset=no-such-codec") == (
        "<p>año \ufffd</p>"
    )


# --- dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-03", datetime(2025, 3, 3, tzinfo=UTC)),
        ("2025-03-03T10:00:00+02:00", datetime(2025, 3, 3, 8, 0, tzinfo=UTC)),
        ("2025-03-03T10:00:00Z", datetime(2025, 3, 3, 10, 0, tzinfo=UTC)),
        ("2025-03-03 10:00", datetime(2025, 3, 3, 10, 0, tzinfo=UTC)),
        ("Mon, 03 Mar 2025 14:30:00 -0500", datetime(2025, 3, 3, 19, 30, tzinfo=UTC)),
        ("March 3, 2025", datetime(2025, 3, 3, tzinfo=UTC)),
        ("Mar. 3, 2025", datetime(2025, 3, 3, tzinfo=UTC)),
        ("Monday, March 3rd, 2025", datetime(2025, 3, 3, tzinfo=UTC)),
        ("3 March 2025", datetime(2025, 3, 3, tzinfo=UTC)),
        ("12 Sept 2024", datetime(2024, 9, 12, tzinfo=UTC)),
        ("3 de marzo de 2025", datetime(2025, 3, 3, tzinfo=UTC)),
        ("03.04.2025", datetime(2025, 4, 3, tzinfo=UTC)),
        ("Posted on\n  March 12, 2025 by Ana", datetime(2025, 3, 12, tzinfo=UTC)),
        ("Published 2025-03-03T08:00:00Z · 3 min read", datetime(2025, 3, 3, 8, 0, tzinfo=UTC)),
        ("Jan 25", None),
        ("Feb 30, 2025", None),
        ("last Tuesday", None),
        ("", None),
    ],
)
def test_parse_date(text: str, expected: datetime | None) -> None:
    assert parse_date(text) == expected


# --- robustness -----------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    body=st.binary(max_size=400), content_type=st.sampled_from([None, "text/html", "x; charset=zz"])
)
def test_random_bytes_raise_nothing_but_parse_error(body: bytes, content_type: str | None) -> None:
    selectors = PageSelectors(item="article, li", title="h2", date="time", image="img")
    try:
        feed = parse_source(fetched(body, selectors, content_type))
    except ParseError as error:
        assert error.member_id == "greenway"
    else:
        assert feed.format == "html-page"
