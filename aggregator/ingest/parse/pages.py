"""Read a member's HTML news page into a ParsedFeed, one entry per element matching its selectors.

The selectors come from feeds.yaml (PageSelectors); where one is not given, a sensible default
is used (first heading for the title, first link, first time[datetime], first paragraph,
first image). Extraction only: links stay relative (base_url says what they are relative to),
summaries are the raw inner HTML, dates are parsed but not clamped.

This module must never fetch (the body arrives as bytes), never clean the HTML it extracts,
and never raise anything but FormatError (for a selector that is not valid CSS).
"""

from __future__ import annotations

import calendar
import codecs
import re
import warnings
from datetime import UTC
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from bs4 import BeautifulSoup
from bs4 import MarkupResemblesLocatorWarning
from bs4 import Tag
from bs4 import XMLParsedAsHTMLWarning
from bs4.dammit import EncodingDetector
from feedparser.datetimes import _parse_date as feedparser_parse_date
from soupsieve import SelectorSyntaxError

from aggregator.ingest.parse.fields import FormatError
from aggregator.ingest.parse.sniff import split_content_type
from aggregator.models import PageSelectors
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed

# A page source is HTML by configuration, whatever its body looks like (XHTML, a bare URL);
# bs4's guesses otherwise are noise in every poll's log.
warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)
warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)

PAGE_FORMAT = "html-page"
DEFAULT_TITLE = "h1, h2, h3, h4"

# WHATWG: pages labelled Latin-1 or ASCII are decoded as windows-1252 by every browser, and
# their authors' curly quotes (0x91-0x94) depend on it.
_WINDOWS_1252_LABELS = frozenset(
    {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "us-ascii", "ascii", "l1"}
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan", "enero", "ene"),
            ("february", "feb", "febrero"),
            ("march", "mar", "marzo"),
            ("april", "apr", "abril", "abr"),
            ("may", "mayo"),
            ("june", "jun", "junio"),
            ("july", "jul", "julio"),
            ("august", "aug", "agosto", "ago"),
            ("september", "sep", "sept", "septiembre", "setiembre", "set"),
            ("october", "oct", "octubre"),
            ("november", "nov", "noviembre"),
            ("december", "dec", "diciembre", "dic"),
        ),
        start=1,
    )
    for name in names
}
_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    re.IGNORECASE,
)
_MONTH_FIRST = re.compile(
    r"\b(?P<month>[a-z]{3,10})\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})\b"
)
_DAY_FIRST = re.compile(
    r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?\.?\s+(?:de\s+)?(?P<month>[a-z]{3,10})\.?,?\s+"
    r"(?:del?\s+)?(?P<year>\d{4})\b"
)
_DOTTED_DAY_FIRST = re.compile(r"\b(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})\b")


def parse_page(
    content: bytes, url: str, content_type: str | None, selectors: PageSelectors
) -> ParsedFeed:
    """Scrape the news page fetched from `url` (after redirects) into entries."""
    soup = BeautifulSoup(decode_page(content, content_type), "lxml")
    base_url = document_base_url(soup, url)
    page_language = attribute_text(soup.html, "lang") if soup.html else None
    title_tag = soup.find("title")
    page_title = _collapse(title_tag.get_text()) if isinstance(title_tag, Tag) else None

    matches = _select(soup, selectors.item)
    entries = []
    for item in matches:
        entry = _entry(item, selectors, base_url, page_language)
        if entry is not None:
            entries.append(entry)

    warning = None
    if not matches:
        warning = f"the selector {selectors.item!r} matched nothing on the page"
    elif not entries:
        warning = (
            f"the selector {selectors.item!r} matched {len(matches)} element(s),"
            " but none had a title or a link"
        )
    return ParsedFeed(
        url=url,
        format=PAGE_FORMAT,
        title=page_title,
        link=url,
        language=page_language,
        entries=tuple(entries),
        warning=warning,
    )


def decode_page(content: bytes, content_type: str | None) -> str:
    """Bytes to text: the HTTP charset, else a BOM, else <meta charset>, else UTF-8."""
    _, header_charset = split_content_type(content_type)
    bom_charset = next((name for bom, name in _BOMS if content.startswith(bom)), None)
    meta_charset = EncodingDetector.find_declared_encoding(content, is_html=True)
    if meta_charset and meta_charset.startswith(("utf-16", "utf-32")):
        # A meta tag readable as ASCII cannot be right about UTF-16 (WHATWG says: UTF-8).
        meta_charset = "utf-8"
    for charset in (header_charset, bom_charset, meta_charset):
        if not charset:
            continue
        if charset in _WINDOWS_1252_LABELS:
            charset = "windows-1252"
        try:
            return content.decode(charset, errors="replace")
        except LookupError:
            continue  # an unknown or non-text codec name: try the next clue
    return content.decode("utf-8", errors="replace")


def parse_date(text: str) -> datetime | None:
    """A date as people write them on web pages, in UTC (naive counts as UTC), or None.

    ISO 8601, RFC 2822, "March 3, 2025", "3 March 2025", "3 de marzo de 2025", "03.03.2025",
    also inside a longer text such as "Posted on March 3rd, 2025 by Ana".
    """
    text = " ".join(text.split())
    if not text:
        return None
    moment = _iso(text) or _rfc2822(text)
    if moment is None:
        found = _ISO_DATE.search(text)
        moment = _iso(found.group(0)) if found else None
    if moment is None:
        moment = _named_month(text.lower())
    if moment is None:
        moment = _feedparser_date(text)
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- one item -------------------------------------------------------------------------


def _entry(
    item: Tag, selectors: PageSelectors, base_url: str, page_language: str | None
) -> ParsedEntry | None:
    title = _title(item, selectors.title)
    link = _link(item, selectors.link)
    if title is None and link is None:
        return None
    summary = _pick(item, selectors.summary, "p")
    summary_html = summary.decode_contents().strip() if summary else ""
    image = _pick(item, selectors.image, "img")
    return ParsedEntry(
        guid=None,
        link=link,
        title=title,
        title_is_html=False,
        summary_html=summary_html or None,
        published=_date(item, selectors.date),
        image=element_image_url(image) if image else None,
        language=attribute_text(item, "lang") or page_language,
        base_url=base_url,
    )


def _title(item: Tag, selector: str | None) -> str | None:
    element = _pick(item, selector, DEFAULT_TITLE) or (
        None if selector else _select_one(item, "a[href]")
    )
    return _collapse(element.get_text()) if element else None


def _link(item: Tag, selector: str | None) -> str | None:
    element = _select_one(item, selector) if selector else item
    if element is None:
        return None
    if element.name == "a" and attribute_text(element, "href"):
        return attribute_text(element, "href")
    anchor = _select_one(element, "a[href]")
    return attribute_text(anchor, "href") if anchor else None


def _date(item: Tag, selector: str | None) -> datetime | None:
    if selector:
        element = _select_one(item, selector)
    else:
        element = _select_one(item, "time[datetime]") or _select_one(item, "time")
    if element is None:
        return None
    candidates = [attribute_text(element, "datetime")]
    inner_time = _select_one(element, "time[datetime]")
    if inner_time is not None:
        candidates.append(attribute_text(inner_time, "datetime"))
    candidates.append(element.get_text())
    for candidate in candidates:
        moment = parse_date(candidate) if candidate else None
        if moment is not None:
            return moment
    return None


def element_image_url(element: Tag) -> str | None:
    """src, else a lazy-loading data-src, else the first srcset candidate; looks inside too."""
    for tag in (element, *element.select("img, source")):
        for name in ("src", "data-src", "data-lazy-src"):
            value = attribute_text(tag, name)
            # Lazy loaders park a tiny data: placeholder in src until the image scrolls in.
            if value and not value.startswith("data:"):
                return value
        for name in ("srcset", "data-srcset"):
            value = attribute_text(tag, name)
            if value:
                first = value.split(",")[0].split()
                if first:
                    return first[0]
    return None


# --- helpers --------------------------------------------------------------------------


def document_base_url(soup: BeautifulSoup, url: str) -> str:
    """The page URL, or the first <base href> resolved against it (as browsers do)."""
    base = soup.find("base", href=True)
    href = attribute_text(base, "href") if isinstance(base, Tag) else None
    return urljoin(url, href) if href else url


def _pick(item: Tag, selector: str | None, default: str) -> Tag | None:
    return _select_one(item, selector or default)


def _select(root: Tag, selector: str) -> list[Tag]:
    try:
        return list(root.select(selector))
    except SelectorSyntaxError as exc:
        raise FormatError(f"the selector {selector!r} is not valid CSS: {exc}") from exc


def _select_one(root: Tag, selector: str) -> Tag | None:
    try:
        return root.select_one(selector)
    except SelectorSyntaxError as exc:
        raise FormatError(f"the selector {selector!r} is not valid CSS: {exc}") from exc


def attribute_text(tag: Tag | None, name: str) -> str | None:
    if tag is None:
        return None
    value = tag.get(name)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _collapse(text: str) -> str | None:
    return " ".join(text.split()) or None


def _iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _rfc2822(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def _feedparser_date(text: str) -> datetime | None:
    """feedparser knows many more formats (and languages); its struct_time is UTC."""
    parsed = feedparser_parse_date(text)
    if parsed is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _named_month(text: str) -> datetime | None:
    for pattern in (_MONTH_FIRST, _DAY_FIRST, _DOTTED_DAY_FIRST):
        for found in pattern.finditer(text):
            month_text = found.group("month")
            month = int(month_text) if month_text.isdigit() else _MONTHS.get(month_text)
            if month is None:
                continue
            try:
                return datetime(int(found.group("year")), month, int(found.group("day")))
            except ValueError:
                continue
    return None
