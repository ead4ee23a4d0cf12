"""Read a feed body (RSS 0.9x/1.0/2.0, Atom, JSON Feed 1.0/1.1) into a ParsedFeed.

Extraction only, faithful to what the source wrote: HTML is passed through raw (feedparser's
sanitizer and relative-URI rewriting are turned off because normalize sanitizes once, with
nh3), URLs stay as the format gives them, dates are not clamped. The one conversion done here
is plain text to escaped HTML, because every `*_html` field must be HTML.

This module must never fetch anything (the body arrives as bytes), never clean or judge
content, and never raise anything but FormatError for a body it cannot read.
"""

from __future__ import annotations

import calendar
import html
import io
import json
import re
import time
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import feedparser
from feedparser.exceptions import ThingsNobodyCaresAboutButMe

from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed


class FormatError(ValueError):
    """The body is not a readable feed; the message is the cause in plain words.

    parse_source turns it into a ParseError naming the member and the URL.
    """


HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
JSON_FEED_VERSION_PREFIX = "https://jsonfeed.org/version/"
_JSON_FEED_FORMATS = {"1": "json10", "1.0": "json10", "1.1": "json11"}
_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")
_HTML_START = re.compile(
    rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])",
    re.IGNORECASE | re.DOTALL,
)
_UTF8_BOM = b"\xef\xbb\xbf"
# A body that opens as a feed is one, whatever Content-Type a misconfigured server gave it.
_FEED_START = re.compile(
    rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*|<\?[^>]*>\s*|<!DOCTYPE[^>\[]*>\s*)*"
    rb"<(rss|feed|rdf:RDF|RDF)[\s>]",
    re.DOTALL,
)


# --- helpers shared with pages.py -----------------------------------------------------


def split_content_type(content_type: str | None) -> tuple[str, str | None]:
    """`text/xml; charset="ISO-8859-1"` -> ("text/xml", "iso-8859-1"); missing parts empty/None."""
    if not content_type:
        return "", None
    media_type, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'").strip().lower() or None
    return media_type.strip().lower(), charset


def text_to_html(text: str) -> str:
    """Plain text as escaped HTML: blank lines separate paragraphs, single newlines break lines."""
    paragraphs = [part.strip() for part in _BLANK_LINES.split(text.replace("\r\n", "\n"))]
    return "".join(
        "<p>" + html.escape(part).replace("\n", "<br>") + "</p>" for part in paragraphs if part
    )


def looks_like_html(content: bytes, content_type: str | None) -> bool:
    """Whether a body that is no feed is a web page (by its start or its media type)."""
    start = content[:4096].removeprefix(_UTF8_BOM)
    if _HTML_START.match(start):
        return True
    if _FEED_START.match(start) or start.lstrip()[:1] == b"{":
        return False
    media_type, _ = split_content_type(content_type)
    return media_type in HTML_TYPES


def is_json(content: bytes, content_type: str | None) -> bool:
    """JSON Feed is recognised by its media type or by a body that opens an object."""
    start = content[:4096].removeprefix(_UTF8_BOM).lstrip()[:1]
    if start == b"{":
        return True
    media_type, _ = split_content_type(content_type)
    # A server that labels everything JSON but sends XML is still sending XML.
    return "json" in media_type and start != b"<"


# --- entry point ----------------------------------------------------------------------


def parse_feed(content: bytes, url: str, content_type: str | None) -> ParsedFeed:
    """Read a feed body fetched from `url` (after redirects) with its Content-Type header."""
    if not content.strip():
        raise FormatError("not a feed: the address returned an empty body")
    if is_json(content, content_type):
        return parse_json_feed(content, url)
    return _parse_xml_feed(content, url, content_type)


# --- RSS, Atom, RDF through feedparser ------------------------------------------------

# Byte signatures of XML in UTF-32/UTF-16 (with and without a BOM), longest first, and the
# codec that reads each back to the same bytes.
_WIDE_SIGNATURES = (
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16"),
    (b"\xff\xfe", "utf-16"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)
_DTD_SPECIAL = re.compile(r"[\"'\[\]>]|<!--")
_ELEMENT_START = re.compile(r"<[A-Za-z_:]")
# A real feed's internal DTD subset has a handful of declarations; past this many tokens
# the rest of the document is taken as DTD (and dropped) rather than scanned further.
_MAX_DTD_TOKENS = 10_000


def without_entity_declarations(content: bytes) -> bytes:
    """The document without its DOCTYPE when that declares entities.

    Entity declarations are how billion-laughs and quadratic-blowup bombs and XXE
    (`<!ENTITY x SYSTEM "file:///etc/passwd">`) get in; feedparser keeps "safe" ones
    and its loose parser expands them without limit (a 50 kB entity used 20,000 times
    took 3 GB). Feeds have no legitimate need for them: the references left behind are
    undefined, so feedparser falls back to its loose parser and reports the feed as broken.
    """
    for signature, codec in _WIDE_SIGNATURES:
        if content.startswith(signature):
            text = content.decode(codec, errors="replace")
            if "<!ENTITY" not in text:
                return content
            return _strip_entity_doctype(text).encode(codec, errors="replace")
    if b"<!ENTITY" not in content:
        return content
    # Latin-1 maps bytes to characters one to one, so positions found in it are byte
    # positions in any ASCII-compatible encoding (UTF-8 included) and nothing is altered.
    return _strip_entity_doctype(content.decode("latin-1")).encode("latin-1")


_DOCUMENT_END = re.compile(rb"</[A-Za-z_][\w:.-]*\s*>\s*$")


def _looks_truncated(content: bytes) -> bool:
    """Whether the body stops before its root element's end tag (a cut-off download)."""
    tail = content[-512:]
    if any(content.startswith(signature) for signature, _ in _WIDE_SIGNATURES):
        tail = tail.replace(b"\x00", b"")  # the end tag is ASCII in UTF-16/32 too
    return _DOCUMENT_END.search(tail) is None


def _strip_entity_doctype(text: str) -> str:
    start = text.find("<!DOCTYPE")
    if start == -1 or _ELEMENT_START.search(text, 0, start):
        return text  # no DOCTYPE, or "<!DOCTYPE" is text inside the document
    end = _doctype_end(text, start + len("<!DOCTYPE"))
    if "<!ENTITY" not in text[start:end]:
        return text
    return text[:start] + text[end:]


def _doctype_end(text: str, position: int) -> int:
    """Where the DOCTYPE declaration ends: its closing ">" outside quotes, comments and
    the [internal subset]; the end of the text if it never closes. Linear in the text."""
    depth = 0
    for _ in range(_MAX_DTD_TOKENS):
        match = _DTD_SPECIAL.search(text, position)
        if match is None:
            break
        token = match.group()
        if token in ("\"", "'", "<!--"):
            closing = "-->" if token == "<!--" else token
            close = text.find(closing, match.end())
            if close == -1:
                break
            position = close + len(closing)
            continue
        position = match.end()
        if token == "[":
            depth += 1
        elif token == "]":
            depth = max(depth - 1, 0)
        elif depth == 0:
            return position
    return len(text)



def _feedparser_content_type(content_type: str | None) -> str:
    """The Content-Type to show feedparser, so the charset is read header, then XML declaration.

    feedparser follows RFC 3023, which makes text/xml without a charset US-ASCII and a
    missing header ISO-8859-1; RFC 7303 replaced that with the XML declaration (or BOM,
    else UTF-8), which is what servers actually mean. Presenting the body as
    application/xml gets that order while a charset the server did send still wins.
    """
    _, charset = split_content_type(content_type)
    return f"application/xml; charset={charset}" if charset else "application/xml"


def _parse_xml_feed(content: bytes, url: str, content_type: str | None) -> ParsedFeed:
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
    if broken and entries_data and _looks_truncated(content):
        # The entry the cut went through is missing its end: stored, it would replace the
        # good copy of that entry with a headless one (or add a duplicate without its guid).
        entries_data = entries_data[:-1]
        warning = f"the document is cut off; its last, incomplete entry was left out ({bozo})"

    feed: Mapping[str, Any] = parsed.get("feed") or {}
    feed_language = _text(feed, "language")
    feed_authors = _author_names(feed) if version.startswith("atom") else ()
    entries = tuple(_entry(entry, feed_language, feed_authors) for entry in entries_data)
    return ParsedFeed(
        url=url,
        format=version or "unknown",
        title=_text(feed, "title"),
        link=_text(feed, "link"),
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
    for link in _mappings(feed, "links"):
        if _get(link, "rel") == rel and _text(link, "href"):
            return _text(link, "href")
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
    text = _text(feed, "ttl")
    return int(text) if text is not None and text.isdigit() else None


def _update_period(feed: Mapping[str, Any]) -> timedelta | None:
    """sy:updatePeriod divided by sy:updateFrequency (the module's default frequency is 1)."""
    period = _UPDATE_PERIODS.get((_text(feed, "sy_updateperiod") or "").lower())
    if period is None:
        return None
    frequency = _text(feed, "sy_updatefrequency")
    if frequency is not None and frequency.isdigit() and int(frequency) > 0:
        return period / int(frequency)
    return period


def _entry(
    entry: Mapping[str, Any], feed_language: str | None, feed_authors: tuple[str, ...]
) -> ParsedEntry:
    title_detail = _mapping(entry, "title_detail")
    summary_detail = _mapping(entry, "summary_detail")
    contents = _mappings(entry, "content")
    content = max(contents, key=lambda c: len(c.get("value") or ""), default=None)

    content_html = _detail_html(content)
    summary_html = _detail_html(summary_detail) if summary_detail else None
    if summary_html is None:
        summary_html = _html_or_none(_text(entry, "summary"))
    if summary_html == content_html:
        # feedparser copies content into summary when there is no summary of its own.
        summary_html = None

    title = _text(title_detail, "value") if title_detail else _text(entry, "title")
    base_url = _first_text(
        (detail, "base") for detail in (content, summary_detail, title_detail) if detail
    )
    language = _text(entry, "language") or _first_text(
        (detail, "language") for detail in (content, title_detail, summary_detail) if detail
    )
    return ParsedEntry(
        guid=_text(entry, "id"),
        link=_entry_link(entry),
        title=title,
        title_is_html=title_detail is not None and _get(title_detail, "type") in HTML_TYPES,
        content_html=content_html,
        summary_html=summary_html,
        published=_utc(_get(entry, "published_parsed")),
        updated=_utc(_get(entry, "updated_parsed")),
        authors=_author_names(entry) or feed_authors,
        tags=_unique(tag.get("term") or tag.get("label") for tag in _mappings(entry, "tags")),
        image=_entry_image(entry),
        language=language or feed_language,
        base_url=base_url,
    )


def _entry_link(entry: Mapping[str, Any]) -> str | None:
    for link in _mappings(entry, "links"):
        href = _text(link, "href")
        if href and _get(link, "rel") in (None, "alternate"):
            return href
    return _text(entry, "link")


def _entry_image(entry: Mapping[str, Any]) -> str | None:
    for thumbnail in _mappings(entry, "media_thumbnail"):
        if _text(thumbnail, "url"):
            return _text(thumbnail, "url")
    for media in _mappings(entry, "media_content"):
        media_type = str(media.get("type") or "")
        if (media.get("medium") == "image" or media_type.startswith("image/")) and _text(
            media, "url"
        ):
            return _text(media, "url")
    for link in _mappings(entry, "links"):
        if link.get("rel") == "enclosure" and str(link.get("type") or "").startswith("image/"):
            href = _text(link, "href")
            if href:
                return href
    # itunes:image is the one entry-level image feedparser stores under "image".
    return _text(_mapping(entry, "image"), "href")


def _author_names(container: Mapping[str, Any]) -> tuple[str, ...]:
    names = _unique(author.get("name") for author in _mappings(container, "authors"))
    if names:
        return names
    return _unique([_get(container, "author")])


def _detail_html(detail: Mapping[str, Any] | None) -> str | None:
    """The value of a feedparser *_detail/content dict as HTML (plain text gets escaped)."""
    if not detail:
        return None
    value = _text(detail, "value")
    if value is None:
        return None
    if detail.get("type") in HTML_TYPES:
        return value
    return _html_or_none(text_to_html(value))


def _utc(value: object) -> datetime | None:
    """feedparser's *_parsed struct_time (always UTC) as an aware datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, OSError, ValueError):
        return None


# --- JSON Feed ------------------------------------------------------------------------


def parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    """Read JSON Feed 1.0 or 1.1 (https://www.jsonfeed.org/version/1.1/)."""
    try:
        document = json.loads(content.removeprefix(_UTF8_BOM))
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"not valid JSON Feed: the JSON is broken at line {exc.lineno} column {exc.colno}"
            f" ({exc.msg})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise FormatError("not valid JSON Feed: the body is not UTF-8 text") from exc
    except RecursionError as exc:
        raise FormatError("not valid JSON Feed: the JSON is nested too deeply") from exc
    if not isinstance(document, dict):
        raise FormatError("not valid JSON Feed: the top level is not an object")
    version = document.get("version")
    if not isinstance(version, str) or not version.startswith(JSON_FEED_VERSION_PREFIX):
        raise FormatError(
            f'not valid JSON Feed: "version" should start with {JSON_FEED_VERSION_PREFIX}'
        )
    items = document.get("items")
    if not isinstance(items, list):
        raise FormatError('not valid JSON Feed: "items" is missing or is not a list')

    feed_language = _text(document, "language")
    feed_authors = _json_authors(document)
    entries = tuple(
        _json_entry(item, feed_language, feed_authors) for item in items if isinstance(item, dict)
    )
    skipped = len(items) - len(entries)
    return ParsedFeed(
        url=url,
        format=_JSON_FEED_FORMATS.get(version.removeprefix(JSON_FEED_VERSION_PREFIX), "json"),
        title=_text(document, "title"),
        link=_text(document, "home_page_url"),
        language=feed_language,
        entries=entries,
        warning=f"{skipped} item(s) are not JSON objects and were skipped" if skipped else None,
        hub_url=_json_websub_hub(document),
        self_url=_text(document, "feed_url"),
    )


def _json_websub_hub(document: Mapping[str, Any]) -> str | None:
    """The first of JSON Feed's `hubs` whose type is WebSub (the spec's name for it)."""
    for hub in _list(document, "hubs"):
        if isinstance(hub, dict) and str(hub.get("type") or "").casefold() == "websub":
            url = _text(hub, "url")
            if url is not None:
                return url
    return None


def _json_entry(
    item: Mapping[str, Any], feed_language: str | None, feed_authors: tuple[str, ...]
) -> ParsedEntry:
    content_html = _text(item, "content_html")
    if content_html is None:
        content_html = _html_or_none(text_to_html(_text(item, "content_text") or ""))
    summary = _text(item, "summary")
    raw_id = item.get("id")
    guid = _text(item, "id")
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        # The spec says an id given as a number must be read as a string.
        guid = str(raw_id)
    return ParsedEntry(
        guid=guid,
        link=_text(item, "url") or _text(item, "external_url"),
        title=_text(item, "title"),
        title_is_html=False,
        content_html=content_html,
        summary_html=_html_or_none(text_to_html(summary)) if summary else None,
        published=_rfc3339(item.get("date_published")),
        updated=_rfc3339(item.get("date_modified")),
        # An item without authors has the feed's (spec, "authors").
        authors=_json_authors(item) or feed_authors,
        tags=_unique(_list(item, "tags")),
        image=_text(item, "image") or _text(item, "banner_image"),
        language=_text(item, "language") or feed_language,
    )


def _json_authors(container: Mapping[str, Any]) -> tuple[str, ...]:
    """Names from 1.1 "authors", else from the 1.0 "author" object."""
    authors = container.get("authors")
    if isinstance(authors, list):
        names = _unique(author.get("name") for author in authors if isinstance(author, dict))
        if names:
            return names
    author = container.get("author")
    return _unique([author.get("name")]) if isinstance(author, dict) else ()


def _rfc3339(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --- small readers of loosely typed dicts ---------------------------------------------


def _get(container: Mapping[str, Any], key: str) -> Any:
    """Read with dict.get so FeedParserDict's aliases stay off (its "updated" falls back to
    "published", which would invent an update date the feed never gave)."""
    return dict.get(container, key) if isinstance(container, dict) else container.get(key)


def _text(container: Mapping[str, Any] | None, key: str) -> str | None:
    """A non-blank string value, or None."""
    if not container:
        return None
    value = _get(container, key)
    return value if isinstance(value, str) and value.strip() else None


def _first_text(pairs: Iterable[tuple[Mapping[str, Any], str]]) -> str | None:
    for container, key in pairs:
        value = _text(container, key)
        if value is not None:
            return value
    return None


def _mapping(container: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = _get(container, key)
    return value if isinstance(value, Mapping) else None


def _list(container: Mapping[str, Any], key: str) -> list[Any]:
    value = _get(container, key)
    return value if isinstance(value, list) else []


def _mappings(container: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [value for value in _list(container, key) if isinstance(value, Mapping)]


def _unique(values: Iterable[object]) -> tuple[str, ...]:
    """Non-blank strings, stripped, first occurrence kept."""
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and value.strip():
            seen.setdefault(value.strip(), None)
    return tuple(seen)


def _html_or_none(value: str | None) -> str | None:
    return value if value else None
