"""Tests for the feed readers (ingest/parse: sniff, rss_atom, jsonfeed) and parse_source on feeds.

Exact extraction from realistic fixtures, charset handling, JSON Feed 1.0/1.1, and
"only ParseError, whatever the bytes".
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aggregator.errors import ParseError
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.parse import parse_source
from aggregator.ingest.parse.fields import FormatError
from aggregator.ingest.parse.fields import text_to_html
from aggregator.ingest.parse.sniff import split_content_type
from aggregator.models import FetchResult
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig
from tests import paths

FIXTURES = paths.FIXTURES
CORPUS = paths.CORPUS
FEED_URL = "https://riverbend-workers.example.org/feed/"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fetched(content: bytes | None, content_type: str | None = None) -> FetchResult:
    source = SourceConfig(member_id="riverbend", kind="feed", url=FEED_URL)
    return FetchResult(
        source=source,
        fetched_at=datetime(2025, 3, 5, 12, 0, tzinfo=UTC),
        final_url=FEED_URL,
        status=200,
        content=content,
        content_type=content_type,
    )


def parse_error(content: bytes | None, content_type: str | None = None) -> ParseError:
    with pytest.raises(ParseError) as raised:
        parse_source(fetched(content, content_type))
    assert raised.value.member_id == "riverbend"
    assert raised.value.url == FEED_URL
    return raised.value


# --- RSS 2.0 from WordPress -----------------------------------------------------------


@pytest.fixture
def wordpress() -> ParsedFeed:
    return parse_source(
        fetched(fixture("wordpress_content_encoded.xml"), "application/rss+xml; charset=UTF-8")
    )


def test_wordpress_feed_level(wordpress: ParsedFeed) -> None:
    assert wordpress.format == "rss20"
    assert wordpress.url == FEED_URL
    assert wordpress.title == "Riverbend Farmworker Alliance"
    assert wordpress.link == "https://riverbend-workers.example.org"
    assert wordpress.language == "en-US"
    assert wordpress.warning is None
    assert len(wordpress.entries) == 2


def test_wordpress_entry_fields(wordpress: ParsedFeed) -> None:
    entry = wordpress.entries[0]
    assert entry.guid == "https://riverbend-workers.example.org/?p=1482"
    # Tracking parameters are normalize's business: the link is kept as written.
    assert entry.link == (
        "https://riverbend-workers.example.org/2025/03/heat-standard-signed/"
        "?utm_source=rss&utm_medium=rss&utm_campaign=heat-standard-signed"
    )
    assert entry.title == "Heat standard signed at three more orchards"
    assert entry.title_is_html is False
    assert entry.published == datetime(2025, 3, 3, 14, 30, tzinfo=UTC)
    assert entry.updated is None
    assert entry.authors == ("Marisol Ortega",)
    assert entry.tags == ("Campaigns", "Heat Safety")
    assert entry.image == (
        "https://riverbend-workers.example.org/wp-content/uploads/2025/03/orchard-crew-150x150.jpg"
    )
    assert entry.language == "en-US"
    assert entry.base_url == FEED_URL


def test_wordpress_content_is_the_raw_html(wordpress: ParsedFeed) -> None:
    entry = wordpress.entries[0]
    assert entry.content_html is not None
    assert entry.content_html.startswith("<p>Three more orchards")
    assert "<strong>worker-written heat standard</strong>" in entry.content_html
    # Relative URLs are not resolved here (normalize does it, once).
    assert 'src="/wp-content/uploads/2025/03/orchard-crew-1024x683.jpg"' in entry.content_html
    assert entry.summary_html == (
        "Three more orchards in the valley have signed the worker-written heat standard,"
        " bringing the total to eleven. [&#8230;]"
    )


def test_wordpress_html_is_not_sanitized_by_feedparser(wordpress: ParsedFeed) -> None:
    content = wordpress.entries[1].content_html
    assert content is not None
    # feedparser's sanitizer would drop the iframe; nh3 in normalize decides instead.
    assert '<iframe title="How a worker-to-worker training works"' in content


def test_wordpress_second_entry_dates_are_utc_and_enclosure_is_the_image(
    wordpress: ParsedFeed,
) -> None:
    entry = wordpress.entries[1]
    assert entry.published == datetime(2025, 2, 27, 23, 5, tzinfo=UTC)  # 18:05 -0500
    assert entry.published is not None and entry.published.tzinfo is UTC
    assert entry.authors == ("Tomás Reyes",)
    assert entry.tags == ("Education",)
    assert entry.image == (
        "https://riverbend-workers.example.org/wp-content/uploads/2025/02/training-flyer.jpg"
    )
    assert (
        entry.summary_html == "Trainings on the code of conduct will run every Saturday in April."
    )


# --- Atom with xml:base ---------------------------------------------------------------


@pytest.fixture
def atom() -> ParsedFeed:
    return parse_feed(
        fixture("atom_xml_base_xhtml.xml"), "https://harborworkers.example.net/feed", None
    )


def test_atom_feed_level(atom: ParsedFeed) -> None:
    assert atom.format == "atom10"
    assert atom.title == "Harbor Food Workers Alliance: News"
    assert atom.link == "https://harborworkers.example.net/news/"
    assert atom.language == "en"
    assert atom.warning is None


def test_atom_xml_base_is_tracked_per_entry(atom: ParsedFeed) -> None:
    first, second = atom.entries
    assert first.base_url == "https://harborworkers.example.net/news/2025/"
    assert second.base_url == "https://harborworkers.example.net/"
    # Link hrefs are resolved against xml:base because the format says so.
    assert first.link == "https://harborworkers.example.net/news/2025/packing-house-heat-breaks"
    assert second.link == "https://harborworkers.example.net/news/2025/bargaining-second-session"


def test_atom_xhtml_content_keeps_relative_urls(atom: ParsedFeed) -> None:
    content = atom.entries[0].content_html
    assert content is not None
    assert content.startswith("<p>Workers at four packing houses now get a <em>paid</em>")
    assert 'href="files/heat-agreement.pdf"' in content
    assert 'src="images/break-room.jpg"' in content


def test_atom_entry_fields(atom: ParsedFeed) -> None:
    entry = atom.entries[0]
    assert entry.guid == "tag:harborworkers.example.net,2025:news/41"
    assert entry.title == "Packing-house workers win <em>paid</em> heat breaks"
    assert entry.title_is_html is True
    assert entry.published == datetime(2025, 2, 18, 16, 0, tzinfo=UTC)
    assert entry.updated == datetime(2025, 2, 20, 17, 15, tzinfo=UTC)
    assert entry.authors == ("Dana Whitfield", "Luis Carmona")
    assert entry.tags == ("heat-safety", "agreements")
    assert entry.language == "en"
    # A type="text" summary is plain text, so it arrives escaped as HTML.
    assert entry.summary_html == (
        "<p>Workers at four packing houses now get a paid ten-minute break every two hours.</p>"
    )


def test_atom_entry_without_author_or_summary(atom: ParsedFeed) -> None:
    entry = atom.entries[1]
    assert entry.title_is_html is False
    assert entry.published is None
    assert entry.updated == datetime(2025, 1, 30, 17, 45, tzinfo=UTC)
    # RFC 4287: an entry without atom:author has the feed's authors.
    assert entry.authors == ("Harbor Food Workers Alliance",)
    assert entry.content_html == (
        '<p>The second session covered scheduling. <a href="news/2025/bargaining-first-session">'
        "The first session</a> set the agenda.</p>"
    )
    # feedparser copies content into summary; a copy is not a summary.
    assert entry.summary_html is None


# --- RSS 1.0 in ISO-8859-1 ------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "application/rss+xml", "text/xml", "application/rdf+xml; charset=ISO-8859-1"],
)
def test_latin1_rss10_is_decoded(content_type: str | None) -> None:
    feed = parse_feed(fixture("rss10_iso8859_1.xml"), FEED_URL, content_type)
    assert feed.format == "rss10"
    assert feed.title == "Colectivo Obrero del Valle: noticias"
    assert feed.language == "es"
    # text/xml without a charset must not be read as US-ASCII (RFC 7303, not 3023).
    assert feed.warning is None
    first, second = feed.entries
    assert first.title == "Trabajadores agrícolas firman un acuerdo de cosecha"
    assert first.summary_html == (
        "Los trabajadores agrícolas de la región logran pausas pagadas y agua potable en cada"
        " campo. ¡Una campaña de años!"
    )
    assert first.authors == ("Inés Domínguez",)
    assert first.tags == ("Acuerdos",)
    assert first.language == "es"
    assert second.title == "Asamblea de enero: próximos pasos"


def test_rss10_dc_date_is_read_as_feedparser_files_it() -> None:
    feed = parse_feed(fixture("rss10_iso8859_1.xml"), FEED_URL, "application/rss+xml")
    first, second = feed.entries
    # feedparser files dc:date under "updated"; choosing a publication date is normalize's job.
    assert first.updated == datetime(2025, 1, 15, 16, 0, tzinfo=UTC)
    assert first.published is None
    assert second.updated == datetime(2025, 1, 8, tzinfo=UTC)
    assert first.link == "https://colectivo-del-valle.example.org/noticias/2025/acuerdo-de-cosecha"


def test_http_charset_wins_over_the_xml_declaration() -> None:
    mislabelled = fixture("rss10_iso8859_1.xml").replace(
        b'encoding="ISO-8859-1"', b'encoding="UTF-8"'
    )
    feed = parse_feed(mislabelled, FEED_URL, "application/rss+xml; charset=ISO-8859-1")
    assert feed.entries[0].title == "Trabajadores agrícolas firman un acuerdo de cosecha"
    assert feed.warning is None


def test_a_wrong_http_charset_is_survived_and_reported() -> None:
    feed = parse_feed(fixture("rss10_iso8859_1.xml"), FEED_URL, "text/xml; charset=utf-8")
    assert feed.entries[0].title == "Trabajadores agrícolas firman un acuerdo de cosecha"
    assert feed.warning == "document declared as utf-8, but parsed as iso-8859-1"


def test_utf8_without_declaration_or_header_is_utf8() -> None:
    body = (
        "<rss version='2.0'><channel><title>Colectivo</title><item>"
        "<title>Jornaleros y jornaleras del campo</title><description>Año nuevo, "
        "campaña nueva</description></item></channel></rss>"
    ).encode()
    feed = parse_feed(body, FEED_URL, None)
    assert feed.entries[0].summary_html == "Año nuevo, campaña nueva"
    assert feed.warning is None


# --- recovered and broken XML ---------------------------------------------------------


def test_entries_recovered_from_broken_xml_carry_a_warning() -> None:
    body = (
        b"<?xml version='1.0'?><rss version='2.0'><channel><title>Alliance</title>"
        b"<item><title>Rest breaks&nbsp;won</title><link>https://x.example.org/a</link></item>"
        b"</channel></rss>"
    )
    feed = parse_feed(body, FEED_URL, "application/rss+xml")
    assert [entry.link for entry in feed.entries] == ["https://x.example.org/a"]
    assert feed.warning is not None
    assert "undefined entity" in feed.warning


def test_truncated_feed_keeps_the_entries_before_the_cut() -> None:
    whole = fixture("wordpress_content_encoded.xml")
    cut = whole[: whole.index(b"<title>Spring worker-to-worker")]
    feed = parse_feed(cut, FEED_URL, "application/rss+xml")
    assert feed.entries[0].title == "Heat standard signed at three more orchards"
    assert feed.warning is not None


def test_no_entries_and_broken_xml_is_a_parse_error() -> None:
    error = parse_error(b"<?xml version='1.0'?><rss version='2.0'><channel><title>x</titl")
    assert error.cause.startswith("no entries and the XML is broken: ")


def test_empty_but_valid_feed_is_not_an_error() -> None:
    body = b"<rss version='2.0'><channel><title>New member</title></channel></rss>"
    feed = parse_source(fetched(body, "application/rss+xml"))
    assert feed.entries == ()
    assert feed.title == "New member"
    assert feed.format == "rss20"


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/rss+xml", None])
def test_html_page_is_not_a_feed(content_type: str | None) -> None:
    error = parse_error(fixture("html_not_a_feed.html"), content_type)
    assert error.cause == "not a feed: the address returned an HTML page"
    assert str(error) == (f"riverbend: {FEED_URL}: not a feed: the address returned an HTML page")


def test_xhtml_page_with_an_xml_declaration_is_not_a_feed() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<!-- cached -->\n<!DOCTYPE html>'
        b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Home</title></head>'
        b"<body><p>Welcome</p></body></html>"
    )
    error = parse_error(body, "application/xml")
    assert error.cause == "not a feed: the address returned an HTML page"


def test_xml_that_is_no_feed_format_is_a_parse_error() -> None:
    error = parse_error(b"<?xml version='1.0'?><sitemap><loc>https://x.example/</loc></sitemap>")
    assert error.cause == "not a feed: the document is not RSS, Atom, RDF or JSON Feed"


def test_empty_body_and_missing_body_are_parse_errors() -> None:
    assert parse_error(b"  \n").cause == "not a feed: the address returned an empty body"
    assert parse_error(None).cause == "nothing to read: the fetch returned no body"


# --- JSON Feed ------------------------------------------------------------------------


def test_json_feed_11() -> None:
    feed = parse_source(fetched(fixture("jsonfeed_11.json"), "application/feed+json"))
    assert feed.format == "json11"
    assert feed.title == "Northfield Dairy Workers Project"
    assert feed.link == "https://northfield-dairy.example.org/"
    assert feed.language == "en"
    assert len(feed.entries) == 2
    first = feed.entries[0]
    assert first.guid == "https://northfield-dairy.example.org/posts/housing-inspections"
    assert first.link == "https://northfield-dairy.example.org/posts/housing-inspections"
    assert first.title == "Worker-led housing inspections begin on five farms"
    assert first.title_is_html is False
    assert first.content_html == (
        "<p>Inspection teams trained by workers visited <strong>five farms</strong> this week.</p>"
    )
    assert first.summary_html == "<p>Inspection teams trained by workers visited five farms.</p>"
    assert first.published == datetime(2025, 3, 10, 13, 0, tzinfo=UTC)
    assert first.updated == datetime(2025, 3, 11, 8, 30, tzinfo=UTC)
    assert first.authors == ("Ruth Adeyemi", "Carlos Fuentes")
    assert first.tags == ("housing", "inspections")
    assert first.image == "https://northfield-dairy.example.org/media/inspection-team.jpg"
    assert first.language == "en"
    assert first.base_url is None


def test_json_feed_11_text_item_with_number_id() -> None:
    feed = parse_feed(fixture("jsonfeed_11.json"), FEED_URL, None)
    item = feed.entries[1]
    assert item.guid == "1207"
    assert item.link == "https://northfield-dairy.example.org/es/posts/linea-de-quejas"
    assert item.title == "La línea de quejas ya atiende en español"
    assert item.content_html == (
        "<p>La línea funciona las 24 horas.</p>"
        "<p>Las quejas son confidenciales &amp; gratuitas.<br>Llame al 555-0142.</p>"
    )
    assert item.summary_html is None
    assert item.published == datetime(2025, 3, 5, 13, 15, tzinfo=UTC)
    assert item.updated is None
    assert item.image == "https://northfield-dairy.example.org/media/hotline-banner.png"
    assert item.language == "es"
    # Items without authors take the feed's (JSON Feed 1.1, "authors").
    assert item.authors == ("Northfield Dairy Workers Project",)


def test_json_feed_10() -> None:
    feed = parse_feed(fixture("jsonfeed_10.json"), FEED_URL, "application/json")
    assert feed.format == "json10"
    assert feed.title == "Lakeshore Restaurant Workers Council"
    assert feed.language is None
    first, second = feed.entries
    assert first.guid == "lrwc-2025-02-wage-theft-clinic"
    assert first.published == datetime(2025, 2, 14, 23, 0, tzinfo=UTC)
    assert first.authors == ("Priya Raman",)
    assert first.tags == ("wage theft", "clinics")
    assert first.content_html == (
        "<p>Bring your pay stubs; volunteers will help you file a claim.</p>"
    )
    assert second.authors == ("Council staff",)
    assert second.content_html == "<p>The report is out.</p>"
    assert second.published == datetime(2025, 1, 20, 12, 0, tzinfo=UTC)


def test_json_is_recognised_by_its_body_despite_bom_whitespace_and_a_wrong_type() -> None:
    body = b"\xef\xbb\xbf\n  " + fixture("jsonfeed_10.json")
    feed = parse_source(fetched(body, "text/plain"))
    assert feed.format == "json10"
    assert len(feed.entries) == 2


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        (
            b'{"version": "https://jsonfeed.org/version/1.1", "items": [',
            "not valid JSON Feed: the JSON is broken at line 1 column 59 (Expecting value)",
        ),
        (
            b'{"title": "x", "items": []}',
            'not valid JSON Feed: "version" should start with https://jsonfeed.org/version/',
        ),
        (
            b'{"version": "https://jsonfeed.org/version/1.1", "title": "x"}',
            'not valid JSON Feed: "items" is missing or is not a list',
        ),
        (
            b'["https://jsonfeed.org/version/1.1"]',
            "not valid JSON Feed: the top level is not an object",
        ),
        (b'{"version": "x"}\xff', "not valid JSON Feed: the body is not UTF-8 text"),
    ],
)
def test_json_that_is_not_a_json_feed(body: bytes, cause: str) -> None:
    assert parse_error(body, "application/feed+json").cause == cause


def test_json_feed_odd_items_are_skipped_with_a_warning() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "items": ['
        b'"not an item", {"id": "a", "title": "Kept", "tags": "not a list",'
        b' "date_published": "last Tuesday", "authors": [{"url": "https://x.example/"}]}]}'
    )
    feed = parse_feed(body, FEED_URL, "application/feed+json")
    (entry,) = feed.entries
    assert entry.title == "Kept"
    assert entry.tags == ()
    assert entry.published is None
    assert entry.authors == ()
    assert feed.warning == "1 item(s) are not JSON objects and were skipped"


def test_text_to_html() -> None:
    assert text_to_html("a < b\r\n\r\n\nc & d\ne") == "<p>a &lt; b</p><p>c &amp; d<br>e</p>"
    assert text_to_html("  \n ") == ""


def test_split_content_type() -> None:
    assert split_content_type('Text/XML; Charset="ISO-8859-1"') == ("text/xml", "iso-8859-1")
    assert split_content_type("application/json") == ("application/json", None)
    assert split_content_type(None) == ("", None)


# --- robustness: nothing but ParseError, whatever the bytes ---------------------------


JUNK = [
    b"\x00\xff" * 200,
    b"<",
    b"{",
    b"[" * 5000,
    b"<rss version='2.0'><channel><item>" * 200,
    b"\xff\xfe" + "<rss version='2.0'><channel>".encode("utf-16-le") + b"\x00\xd8",
    b"\xef\xbb\xbf",
    b"<?xml version='1.0' encoding='utf-16'?><rss/>",
    b"<?xml version='1.0' encoding='x-no-such-codec'?><rss version='2.0'/>",
    b"<!DOCTYPE rss [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;'>]><rss>&b;</rss>",
    b'{"version": "https://jsonfeed.org/version/1", "items": [{"id": null, "url": 5}]}',
]


@pytest.mark.parametrize("body", JUNK)
@pytest.mark.parametrize("content_type", [None, "application/json", "text/xml; charset=bogus"])
def test_junk_bytes_raise_nothing_but_parse_error(body: bytes, content_type: str | None) -> None:
    try:
        feed = parse_source(fetched(body, content_type))
    except ParseError as error:
        assert error.cause
    else:
        assert isinstance(feed, ParsedFeed)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=400), content_type=st.sampled_from([None, "text/xml", "x/y"]))
def test_random_bytes_raise_nothing_but_parse_error(body: bytes, content_type: str | None) -> None:
    try:
        parse_source(fetched(body, content_type))
    except ParseError as error:
        assert error.member_id == "riverbend"


def test_parse_feed_raises_format_error_a_value_error() -> None:
    with pytest.raises(FormatError) as raised:
        parse_feed(b"", FEED_URL, None)
    assert isinstance(raised.value, ValueError)


_HEADER = re.compile(r"^\s*Header:\s*Content-type:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def test_feedparser_corpus_raises_nothing_but_parse_error() -> None:
    folders = [
        CORPUS / name for name in ("wellformed", "illformed", "encoding", "entities", "json")
    ]
    if not all(folder.is_dir() for folder in folders):
        pytest.skip(f"the feedparser test corpus is not at {CORPUS}")
    files = sorted(path for folder in folders for path in folder.rglob("*") if path.is_file())
    parsed = 0
    for path in files:
        content = path.read_bytes()
        # Serve each file with the Content-Type its test asks for, as feedparser's suite does.
        header = _HEADER.search(content[:2048].decode("latin-1"))
        try:
            parse_source(fetched(content, header.group(1) if header else None))
        except ParseError as error:
            assert "the parser failed" not in error.cause, f"{path}: {error.cause}"
        else:
            parsed += 1
    assert len(files) > 2000
    assert parsed > 1500
