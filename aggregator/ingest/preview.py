"""`aggregator preview URL`: what a new member's address would give, before anything is stored.

Staff give an address (a site, a feed or a news page); the preview fetches it once, finds the
feed when it is a site (autodiscovery) or reads the page (selectors or heuristics), runs the
same parse and normalize stages a poll would, and reports the items with their dates and
links plus warnings a person should look at: no dates, relative links, items listed twice,
entries that would be skipped, nothing found at all. `source_yaml` writes the feeds.yaml
block to paste.

It must never write to the database or to feeds.yaml, and never print (cli.py does): the
result is a Preview value. The only I/O is the fetch function passed in.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

from bs4 import BeautifulSoup
from bs4 import Tag

from aggregator.errors import ParseError
from aggregator.ingest.fetch import describe_exception
from aggregator.ingest.normalize import normalize_feed
from aggregator.ingest.parse import parse_source
from aggregator.ingest.parse.discover import Discovery
from aggregator.ingest.parse.discover import FetchFunction
from aggregator.ingest.parse.discover import discover_if_page
from aggregator.ingest.parse.pages import PAGE_FORMAT
from aggregator.ingest.parse.pages import decode_page
from aggregator.ingest.safety import Resolver
from aggregator.ingest.safety import system_resolver
from aggregator.languages import detect_language
from aggregator.models import CacheValidators
from aggregator.models import FetchLimits
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import PageSelectors
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig
from aggregator.models import SourceKind
from aggregator.text import fold
from aggregator.text import html_to_text
from aggregator.text import short_id
from aggregator.urls import absolute_url
from aggregator.urls import canonical_url
from aggregator.urls import is_http_url

PREVIEW_MEMBER = "preview"
SELECTOR_KEYS = ("item", "title", "link", "date", "summary", "image")
_ENTRY_START = re.compile(r"<(?:item|entry)[\s>]", re.IGNORECASE)
_LINK = re.compile(
    r"<link>\s*([^<\s]+)\s*</link>|<link\b[^>]*?\bhref=[\"']([^\"']+)[\"']", re.IGNORECASE
)
_TITLE_SEPARATORS = re.compile(r"\s+(?:[|–—»:-]|&raquo;)\s+")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreviewItem:
    title: str
    url: str | None
    published: datetime | None  # None: the source gives no date
    relative_link: bool  # the source wrote the link relative to the page or feed


@dataclass(frozen=True)
class Preview:
    """What a source at `url` would contribute, as a poll would see it."""

    url: str  # as asked
    kind: SourceKind  # what feeds.yaml should say: "feed" or "page"
    source_url: str  # the address feeds.yaml should hold
    site_title: str | None = None
    format: str | None = None
    language: str | None = None  # the one language all items are written in (single_language)
    selectors: PageSelectors | None = None
    discovery: Discovery | None = None
    items: tuple[PreviewItem, ...] = ()
    warnings: tuple[str, ...] = ()
    error: str | None = None  # nothing could be read at all


def parse_selectors_option(text: str) -> PageSelectors:
    """`item=article.post,title=h2 a` -> PageSelectors; ValueError naming the mistake.

    Commas inside a selector (`h2, h3`) are kept: a part without `=` continues the last one.
    """
    found: dict[str, str] = {}
    last: str | None = None
    for part in text.split(","):
        key, separator, value = part.partition("=")
        if separator and key.strip() in SELECTOR_KEYS:
            last = key.strip()
            found[last] = value.strip()
        elif last is not None:
            found[last] += "," + part
        else:
            raise ValueError(
                f"{part.strip()!r} should be key=selector, with keys {', '.join(SELECTOR_KEYS)}"
            )
    if not found.get("item"):
        raise ValueError("--selectors needs item=… (the CSS selector matching each news item)")
    values = {key: value.strip() or None for key, value in found.items()}
    return PageSelectors(
        item=found["item"].strip(),
        title=values.get("title"),
        link=values.get("link"),
        date=values.get("date"),
        summary=values.get("summary"),
        image=values.get("image"),
    )


async def preview_source(
    url: str,
    *,
    fetch: FetchFunction,
    now: datetime,
    page: bool = False,
    selectors: PageSelectors | None = None,
    resolver: Resolver = system_resolver,
) -> Preview:
    """Fetch `url` once (plus discovery's candidates) and read it as a poll would.

    Never raises (but for cancellation): whatever the address gives, an exception on the way
    is the preview's error, in words, as a poll would record it for the source.
    """
    try:
        return await _preview_source(
            url, fetch=fetch, now=now, page=page, selectors=selectors, resolver=resolver
        )
    except Exception as exc:
        logger.exception("preview of %s failed", url)
        return Preview(
            url=url,
            kind="page" if page or selectors is not None else "feed",
            source_url=url,
            error=describe_exception(exc, FetchLimits()),
        )


async def _preview_source(
    url: str,
    *,
    fetch: FetchFunction,
    now: datetime,
    page: bool,
    selectors: PageSelectors | None,
    resolver: Resolver,
) -> Preview:
    as_page = page or selectors is not None
    kind: SourceKind = "page" if as_page else "url"
    source = SourceConfig(member_id=PREVIEW_MEMBER, kind=kind, url=url, selectors=selectors)
    result = await fetch(source, CacheValidators())
    if result.error is not None or result.content is None:
        return Preview(
            url=url,
            kind="page" if as_page else "feed",
            source_url=url,
            error=result.error or "the address returned nothing",
        )
    if as_page:
        return _read(url, "page", url, result, now, selectors=selectors)
    discovery = await discover_if_page(result, fetch, read_feed=parse_source, resolver=resolver)
    if discovery is None:
        return _read(url, "feed", url, result, now)
    chosen = discovery.chosen
    if chosen is not None and chosen.result is not None:
        found = _read(url, "feed", chosen.candidate.url, chosen.result, now, discovery=discovery)
        # The site's own page names the organization better than a feed titled "News".
        return replace(found, site_title=page_site_name(result) or found.site_title)
    # No feed: what the page itself would give as a `page:` source.
    preview = _read(url, "page", url, result, now, discovery=discovery)
    return _add_warning(
        replace(preview, site_title=page_site_name(result) or preview.site_title),
        "no feed was found on the site, so this address would be read as a news page",
    )


def _read(
    url: str,
    kind: SourceKind,
    source_url: str,
    result: FetchResult,
    now: datetime,
    *,
    selectors: PageSelectors | None = None,
    discovery: Discovery | None = None,
) -> Preview:
    source = SourceConfig(PREVIEW_MEMBER, kind, source_url, selectors=selectors)
    # The source as the preview reads it (the result may come from discovery or a `url:`).
    result = replace(result, source=source)
    try:
        parsed = parse_source(result)
    except ParseError as exc:
        return Preview(
            url=url,
            kind=kind,
            source_url=source_url,
            discovery=discovery,
            selectors=selectors,
            error=exc.cause,
        )
    items = normalize_feed(parsed, source, now)
    relative = relative_feed_links(parsed, result.content or b"")
    return Preview(
        url=url,
        kind=kind,
        source_url=source_url,
        site_title=parsed.title,
        format=parsed.format,
        language=single_language(items),
        selectors=selectors,
        discovery=discovery,
        items=tuple(_preview_items(parsed, items, relative)),
        warnings=tuple(preview_warnings(parsed, items, relative)),
    )


def single_language(items: list[Item]) -> str | None:
    """ "en" or "es" when every item whose text tells is written in it, else None.

    The text decides, not the feed's declaration: many sites declare their software's
    default ("en-US") whatever they write in. Items too short to tell do not count, but at
    least half of them must tell, so a list of bare headlines gives no answer.
    """
    found = [
        detect_language(" ".join((item.title, html_to_text(item.summary or item.content_html))))
        for item in items
    ]
    told = [language for language in found if language is not None]
    if not told or len(told) * 2 < len(items) or len(set(told)) != 1:
        return None
    return told[0]


def relative_feed_links(parsed: ParsedFeed, content: bytes) -> list[str]:
    """The item links a feed writes relative, as written.

    Relative links are the norm on web pages, but in a feed many readers get them wrong.
    feedparser resolves RSS/Atom links while parsing, so the body itself is looked at.
    """
    if parsed.format == PAGE_FORMAT:
        return []
    written = [entry.link for entry in parsed.entries if entry.link]  # JSON Feed: as written
    text = content.decode("utf-8", errors="replace")
    for block in _ENTRY_START.split(text)[1:]:
        written.extend(found.group(1) or found.group(2) for found in _LINK.finditer(block))
    return [link for link in dict.fromkeys(written) if not is_http_url(link)]


def _preview_items(
    parsed: ParsedFeed, items: list[Item], relative_links: list[str]
) -> list[PreviewItem]:
    relative = set()
    for link in relative_links:
        resolved = absolute_url(link, parsed.url)
        if resolved is not None:
            relative.add(canonical_url(resolved))
    return [
        PreviewItem(
            title=item.title,
            url=item.url,
            published=item.published if item.date_from_source else None,
            relative_link=item.url in relative,
        )
        for item in items
    ]


def preview_warnings(parsed: ParsedFeed, items: list[Item], relative: list[str]) -> list[str]:
    """What a person should check before adding this source, in plain words."""
    warnings: list[str] = []
    if parsed.warning:
        warnings.append(parsed.warning)
    if not items:
        warnings.append("nothing would be collected from this address: no news items were found")
        return warnings
    skipped = len(parsed.entries) - len(items)
    if skipped > 0:
        warnings.append(
            f"{skipped} entr{'y has' if skipped == 1 else 'ies have'} no title, "
            "link or text and would be skipped"
        )
    undated = sum(1 for item in items if not item.date_from_source)
    if undated and not (parsed.warning and "no dates" in parsed.warning):
        warnings.append(
            f"{undated} of {len(items)} items have no date; each would be dated when first seen"
        )
    if relative:
        warnings.append(
            f"{len(relative)} item link(s) are written relative (e.g. {relative[0]!r}); they were "
            f"completed from {parsed.url}: check that the links below open the right stories"
        )
    links = Counter(item.url for item in items if item.url)
    titles = Counter(fold(item.title) for item in items if item.title)
    repeated = [url for url, count in links.items() if count > 1]
    if repeated:
        warnings.append(
            f"{len(repeated)} item(s) appear more than once (same link, e.g. {repeated[0]}); "
            "they would be stored once"
        )
    elif any(count > 1 for count in titles.values()):
        warnings.append("some items have the same title; check that they are different stories")
    untitled = sum(1 for item in items if not item.title)
    if untitled:
        warnings.append(f"{untitled} item(s) have no title")
    return warnings


def page_site_name(result: FetchResult) -> str | None:
    """The organization's name from a web page: og:site_name, else its <title>."""
    if result.content is None:
        return None
    soup = BeautifulSoup(decode_page(result.content, result.content_type), "lxml")
    meta = soup.find("meta", attrs={"property": "og:site_name"})
    name = meta.get("content") if isinstance(meta, Tag) else None
    if isinstance(name, str) and name.strip():
        return " ".join(name.split())
    title = soup.find("title")
    return " ".join(title.get_text().split()) or None if isinstance(title, Tag) else None


def _add_warning(preview: Preview, warning: str) -> Preview:
    return replace(preview, warnings=(warning, *preview.warnings))


# --- the feeds.yaml block -------------------------------------------------------------


def member_id_for(preview: Preview) -> str:
    """A member id suggestion: the site's name as a slug, shortened when long (text.short_id)."""
    return short_id(site_name(preview), preview.url) or "new-member"


def site_name(preview: Preview) -> str:
    """The organization's name as the page or feed gives it ("News | Org" -> "Org")."""
    title = preview.site_title or ""
    parts = [part.strip() for part in _TITLE_SEPARATORS.split(title) if part.strip()]
    generic = {"news", "noticias", "blog", "home", "inicio", "comments", "feed"}
    named = [part for part in parts if fold(part) not in generic]
    if named:
        return named[-1] if len(named) > 1 and fold(parts[0]) in generic else named[0]
    host = urlsplit(preview.url).hostname or "new member"
    return host.removeprefix("www.")


def source_yaml(preview: Preview) -> str:
    """The member block to paste under `members:` in feeds.yaml (comments included)."""
    # The address as given, not its host's root: a site's /en/ or /es/ is a different site.
    lines = [
        f"  - id: {member_id_for(preview)}              # check: short, unique, lowercase",
        f"    name: {_quote(site_name(preview))}",
        f"    url: {preview.url}",
    ]
    # Only a site that clearly writes in one language gets one: a wrong `language:` would
    # label every story of a bilingual member wrongly, while none lets each be detected.
    if preview.language in ("en", "es"):
        lines.append(f"    language: {preview.language}")
    lines.append("    sources:")
    if preview.discovery is not None and preview.kind == "feed":
        lines.append(f"      # found on {preview.url} by autodiscovery")
    lines.append(f"      - {preview.kind}: {preview.source_url}")
    if preview.selectors is not None:
        lines.append("        selectors:")
        for key in SELECTOR_KEYS:
            value = getattr(preview.selectors, key)
            if value:
                lines.append(f"          {key}: {_quote(value)}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """YAML text, quoted when it would otherwise be read as something else."""
    plain = re.fullmatch(r"[A-Za-z0-9À-ÿ][^:#\[\]{},&*!|>'\"%@`]*", text)
    if (
        plain
        and not text.endswith(" ")
        and text.lower() not in ("yes", "no", "true", "false", "null")
    ):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
