"""RSS 0.9x/1.0/2.0, RDF and Atom through feedparser, into a ParsedFeed.

Extraction only, faithful to what the source wrote: HTML is passed through raw (feedparser's
sanitizer and relative-URI rewriting are turned off because normalize sanitizes once, with
nh3), URLs stay as the format gives them, dates are not clamped. The one conversion done here
is plain text to escaped HTML, because every `*_html` field must be HTML.

It must never hand feedparser a string (it would open it as a path or URL), never let it
see entity declarations (xml_guard drops them first), and never raise anything but
FormatError for a body it cannot read.
"""

import io
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import feedparser
from feedparser.exceptions import ThingsNobodyCaresAboutButMe

from aggregator.ingest.images import pixels
from aggregator.ingest.parse.fields import FormatError
from aggregator.ingest.parse.fields import first_text
from aggregator.ingest.parse.fields import get
from aggregator.ingest.parse.fields import html_or_none
from aggregator.ingest.parse.fields import mapping
from aggregator.ingest.parse.fields import mappings
from aggregator.ingest.parse.fields import text_at
from aggregator.ingest.parse.fields import text_to_html
from aggregator.ingest.parse.fields import unique
from aggregator.ingest.parse.fields import utc
from aggregator.ingest.parse.sniff import HTML_TYPES
from aggregator.ingest.parse.sniff import looks_like_html
from aggregator.ingest.parse.sniff import split_content_type
from aggregator.ingest.parse.xml_guard import looks_truncated
from aggregator.ingest.parse.xml_guard import without_entity_declarations
from aggregator.models import ImageCandidate
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed


def _feedparser_content_type(content_type: str | None) -> str:
    """The Content-Type to show feedparser, so the charset is read header, then XML declaration.

    feedparser follows RFC 3023, which makes text/xml without a charset US-ASCII and a
    missing header ISO-8859-1; RFC 7303 replaced that with the XML declaration (or BOM,
    else UTF-8), which is what servers actually mean. Presenting the body as
    application/xml gets that order while a charset the server did send still wins.
    """
    _, charset = split_content_type(content_type)
    return f"application/xml; charset={charset}" if charset else "application/xml"


def parse_xml_feed(content: bytes, url: str, content_type: str | None) -> ParsedFeed:
    parsed = feedparser.parse(
        # A BytesIO, never bytes or str: feedparser treats a string as a path or URL to open.
        io.BytesIO(without_entity_declarations(content)),
        response_headers={
            "content-type": _feedparser_content_type(content_type),
            "content-location": url,
        },
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    version = str(parsed.get("version") or "")
    bozo = parsed.get("bozo_exception") if parsed.get("bozo") else None
    bozo_message = str(bozo) if bozo is not None else None
    # A charset note (declared one encoding, decoded as another) is not a broken document.
    broken = bozo is not None and not isinstance(bozo, ThingsNobodyCaresAboutButMe)
    entries_data: list[Mapping[str, Any]] = [
        entry for entry in parsed.get("entries", []) if isinstance(entry, Mapping)
    ]
    if not entries_data:
        if not version and looks_like_html(content, content_type):
            raise FormatError("not a feed: the address returned an HTML page")
        if broken:
            raise FormatError(f"no entries and the XML is broken: {bozo_message}")
        if not version:
            raise FormatError("not a feed: the document is not RSS, Atom, RDF or JSON Feed")

    warning = bozo_message
    if broken and entries_data and looks_truncated(content):
        # The entry the cut went through is missing its end: stored, it would replace the
        # good copy of that entry with a headless one (or add a duplicate without its guid).
        entries_data = entries_data[:-1]
        warning = f"the document is cut off; its last, incomplete entry was left out ({bozo})"

    feed: Mapping[str, Any] = parsed.get("feed") or {}
    feed_language = text_at(feed, "language")
    feed_authors = _author_names(feed) if version.startswith("atom") else ()
    entries = tuple(_entry(entry, feed_language, feed_authors) for entry in entries_data)
    return ParsedFeed(
        url=url,
        format=version or "unknown",
        title=text_at(feed, "title"),
        link=text_at(feed, "link"),
        language=feed_language,
        entries=entries,
        warning=warning,
        ttl_minutes=_ttl_minutes(feed),
        update_period=_update_period(feed),
        hub_url=_feed_link(feed, "hub"),
        self_url=_feed_link(feed, "self"),
    )


def _feed_link(feed: Mapping[str, Any], rel: str) -> str | None:
    """The first feed-level link with this rel (Atom <link>, or atom:link inside RSS)."""
    for link in mappings(feed, "links"):
        if get(link, "rel") == rel and text_at(link, "href"):
            return text_at(link, "href")
    return None


_UPDATE_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}


def _ttl_minutes(feed: Mapping[str, Any]) -> int | None:
    """RSS <ttl>: minutes the channel may be cached; None when absent or not a number."""
    text = text_at(feed, "ttl")
    return int(text) if text is not None and text.isdigit() else None


def _update_period(feed: Mapping[str, Any]) -> timedelta | None:
    """sy:updatePeriod divided by sy:updateFrequency (the module's default frequency is 1)."""
    period = _UPDATE_PERIODS.get((text_at(feed, "sy_updateperiod") or "").lower())
    if period is None:
        return None
    frequency = text_at(feed, "sy_updatefrequency")
    if frequency is not None and frequency.isdigit() and int(frequency) > 0:
        return period / int(frequency)
    return period


def _entry(
    entry: Mapping[str, Any], feed_language: str | None, feed_authors: tuple[str, ...]
) -> ParsedEntry:
    title_detail = mapping(entry, "title_detail")
    summary_detail = mapping(entry, "summary_detail")
    contents = mappings(entry, "content")
    content = max(contents, key=lambda c: len(c.get("value") or ""), default=None)

    content_html = _detail_html(content)
    summary_html = _detail_html(summary_detail) if summary_detail else None
    if summary_html is None:
        summary_html = html_or_none(text_at(entry, "summary"))
    if summary_html == content_html:
        # feedparser copies content into summary when there is no summary of its own.
        summary_html = None

    title = text_at(title_detail, "value") if title_detail else text_at(entry, "title")
    base_url = first_text(
        (detail, "base") for detail in (content, summary_detail, title_detail) if detail
    )
    images = _entry_images(entry)
    language = text_at(entry, "language") or first_text(
        (detail, "language") for detail in (content, title_detail, summary_detail) if detail
    )
    return ParsedEntry(
        guid=text_at(entry, "id"),
        link=_entry_link(entry),
        title=title,
        title_is_html=title_detail is not None and get(title_detail, "type") in HTML_TYPES,
        content_html=content_html,
        summary_html=summary_html,
        published=utc(get(entry, "published_parsed")),
        updated=utc(get(entry, "updated_parsed")),
        authors=_author_names(entry) or feed_authors,
        tags=unique(tag.get("term") or tag.get("label") for tag in mappings(entry, "tags")),
        image=images[0].url if images else None,
        images=images,
        language=language or feed_language,
        base_url=base_url,
    )


def _entry_link(entry: Mapping[str, Any]) -> str | None:
    for link in mappings(entry, "links"):
        href = text_at(link, "href")
        if href and get(link, "rel") in (None, "alternate"):
            return href
    return text_at(entry, "link")


def _entry_images(entry: Mapping[str, Any]) -> tuple[ImageCandidate, ...]:
    """Every image the entry's metadata offers, with declared sizes, most specific first.

    normalize ranks them with the content's own images (ingest/images.choose_thumbnail).
    """
    found: list[ImageCandidate] = []
    for media in mappings(entry, "media_thumbnail"):
        found += _sized(media, "url")
    for media in mappings(entry, "media_content"):
        media_type = str(media.get("type") or "")
        if media.get("medium") == "image" or media_type.startswith("image/"):
            found += _sized(media, "url")
    for link in mappings(entry, "links"):
        if link.get("rel") == "enclosure" and str(link.get("type") or "").startswith("image/"):
            found += _sized(link, "href")
    # itunes:image is the one entry-level image feedparser stores under "image".
    found += _sized(mapping(entry, "image") or {}, "href")
    return tuple(found)


def _sized(element: Mapping[str, Any], key: str) -> list[ImageCandidate]:
    url = text_at(element, key)
    if url is None:
        return []
    return [
        ImageCandidate(url, pixels(text_at(element, "width")), pixels(text_at(element, "height")))
    ]


def _author_names(container: Mapping[str, Any]) -> tuple[str, ...]:
    names = unique(author.get("name") for author in mappings(container, "authors"))
    if names:
        return names
    return unique([get(container, "author")])


def _detail_html(detail: Mapping[str, Any] | None) -> str | None:
    """The value of a feedparser *_detail/content dict as HTML (plain text gets escaped)."""
    if not detail:
        return None
    value = text_at(detail, "value")
    if value is None:
        return None
    if detail.get("type") in HTML_TYPES:
        return value
    return html_or_none(text_to_html(value))
