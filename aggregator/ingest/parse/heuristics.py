"""Read a member's news page without selectors: find the listing of stories by its shape.

For `page:` sources with no `selectors:` (staff only know the address). The listing is found,
in this order of trust: schema.org JSON-LD (an ItemList, or several NewsArticle/BlogPosting
objects), then repeated `<article>` blocks, then any repeated blocks that each hold one
heading link (h2/h3 with a link, or a link around a heading), then repeated sibling blocks
that each hold a link and a date. Navigation, site header and footer, sidebars and widgets are
ignored. Dates come from `time[datetime]`, date-like classes, or date-like text.

`page_metadata` reads one story's own page (Open Graph, JSON-LD, `<meta name=description>`,
`<html lang>`) for `follow: true` sources, and `with_metadata` fills a listing entry's gaps
from it.

Like the rest of parse/, this module must never fetch, clean or absolutize (normalize does
that) and never raise: a page with no recognisable listing is a ParsedFeed with no entries
and a warning saying so.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from typing import Any
from urllib.parse import urljoin

from bs4 import BeautifulSoup
from bs4 import Tag

from aggregator.ingest.images import pixels
from aggregator.ingest.parse.pages import PAGE_FORMAT
from aggregator.ingest.parse.pages import attribute_text
from aggregator.ingest.parse.pages import decode_page
from aggregator.ingest.parse.pages import document_base_url
from aggregator.ingest.parse.pages import element_image_url
from aggregator.ingest.parse.pages import parse_date
from aggregator.models import ImageCandidate
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed

HEURISTIC_FORMAT = PAGE_FORMAT  # the same kind of source, read another way
MAX_ENTRIES = 100
MIN_TITLE_LENGTH = 8  # shorter link texts are "More", "Next", page numbers
MIN_SUMMARY_LENGTH = 30

# Page furniture: never part of the listing, whatever it contains.
_FURNITURE_TAGS = ("nav", "aside", "script", "style", "noscript", "template", "form", "iframe")
_FURNITURE_ROLES = ("navigation", "banner", "contentinfo", "complementary", "search")
# One class or id token naming furniture: "sidebar", "region-sidebar-first", "widget_recent".
# Layout flags on wrappers ("has-sidebar", "no-sidebar") describe the page, not the element.
_FURNITURE_TOKEN = re.compile(
    r"(?:^|[_-])(?:sidebar|widgets?|menu|breadcrumbs?|cookies?|newsletter|share|sharing|social"
    r"|related|pagination|pager|comments?|skip-link|masthead)(?:$|[_-])",
    re.IGNORECASE,
)
_LAYOUT_FLAG = re.compile(r"^(?:has|with|no|without|is)-", re.IGNORECASE)
_DATE_CLASS = re.compile(r"date|time|posted|published|meta|created", re.IGNORECASE)
_SUMMARY_CLASS = re.compile(r"summary|excerpt|teaser|description|body|intro|snippet", re.I)
_READ_MORE = re.compile(
    r"^(?:read|learn|see|view)\s+(?:more|the\s+\w+|full|story|post)|^(?:more|continue reading"
    r"|leer m[aá]s|ver m[aá]s|seguir leyendo|m[aá]s)\b",
    re.IGNORECASE,
)
# Drupal's and most US sites' numeric date: 03/10/2025 (month first), optional " - 14:30".
_SLASH_DATE = re.compile(
    r"\b(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<year>\d{4})(?:\s*-\s*(?P<h>\d{1,2}):(?P<m>\d{2}))?\b"
)
_YEAR = re.compile(r"\b(?:19|20)\d{2}\b")
_HEADINGS = ("h1", "h2", "h3", "h4")
_ARTICLE_TYPES = frozenset(
    {"NewsArticle", "BlogPosting", "Article", "Report", "AnalysisNewsArticle", "PressRelease"}
)


@dataclass(frozen=True)
class PageMetadata:
    """What one story's own page says about itself (Open Graph, JSON-LD, meta tags)."""

    title: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    image: str | None = None  # absolute when the page gave it so; else relative to `url`
    description: str | None = None
    language: str | None = None
    url: str | None = None  # the page's address, the base for its relative URLs
    # Every image the page names for itself (JSON-LD, og:image with og:image:width/height,
    # twitter:image), relative like `image`: the thumbnail is chosen among them and the
    # listing's own (ingest/images.choose_thumbnail).
    images: tuple[ImageCandidate, ...] = ()


# --- the listing ----------------------------------------------------------------------


def parse_page_heuristically(content: bytes, url: str, content_type: str | None) -> ParsedFeed:
    """The news listing on the page fetched from `url`, found without selectors."""
    soup = BeautifulSoup(decode_page(content, content_type), "lxml")
    base_url = document_base_url(soup, url)
    language = _page_language(soup)
    title_tag = soup.find("title")
    page_title = _text(title_tag) if isinstance(title_tag, Tag) else None

    structured = [
        entry for entry in _json_ld_entries(soup, base_url, language) if entry.link or entry.title
    ]
    _strip_furniture(soup)
    blocks = find_listing_blocks(soup)
    from_markup = [
        entry
        for entry in (_block_entry(block, base_url, language) for block in blocks)
        if entry is not None
    ]
    entries = _merge(from_markup, structured, base_url)[:MAX_ENTRIES]

    warning = None
    if not entries:
        warning = (
            "no news listing was recognised on this page (no repeated blocks with a headline "
            "link, and no schema.org data); add 'selectors:' for it, or look for a feed"
        )
    elif all(entry.published is None for entry in entries):
        warning = (
            "the news items on this page show no dates; each will be dated when first seen"
            " ('follow: true' can read dates from each story's own page)"
        )
    return ParsedFeed(
        url=url,
        format=HEURISTIC_FORMAT,
        title=page_title,
        link=url,
        language=language,
        entries=tuple(entries),
        warning=warning,
    )


def find_listing_blocks(root: Tag) -> list[Tag]:
    """The elements that are each one story of the page's listing, in page order."""
    articles = [
        article
        for article in root.find_all("article")
        if isinstance(article, Tag)
        and article.find_parent("article") is None
        # Squarespace's list puts the title in a plain link, not a heading.
        and (_headline_link(article) or _best_link(article)) is not None
    ]
    if len(articles) >= 2:
        return articles

    headline_links = _all_headline_links(root)
    if len(headline_links) >= 2:
        return _cards_around(headline_links)

    repeated = _repeated_blocks_with_link_and_date(root)
    if repeated:
        return repeated
    return articles  # one lone <article> is still better than nothing


def _all_headline_links(root: Tag) -> list[Tag]:
    """Links that are a heading's (h2 > a) or that hold a heading (a > h2), once each."""
    found: list[Tag] = []
    for heading in root.find_all(_HEADINGS[1:]):
        anchor = heading.find("a", href=True)
        if not isinstance(anchor, Tag):
            parent = heading.find_parent("a", href=True)
            anchor = parent if isinstance(parent, Tag) else None
        if anchor is not None and _usable_link(anchor) and anchor not in found:
            found.append(anchor)
    return found


def _cards_around(links: list[Tag]) -> list[Tag]:
    """For each headline link, the largest element around it holding no other headline link."""
    marked = {id(link) for link in links}
    cards: list[Tag] = []
    for link in links:
        card: Tag = link
        while card.parent is not None and card.parent.name not in ("body", "main", "[document]"):
            others = [anchor for anchor in card.parent.find_all("a") if id(anchor) in marked]
            if len(others) > 1:
                break
            card = card.parent
        if card not in cards:
            cards.append(card)
    return cards


def _repeated_blocks_with_link_and_date(root: Tag) -> list[Tag]:
    """Siblings of the same shape, three or more, each with a link and something dated."""
    best: list[Tag] = []
    for parent in root.find_all(True):
        children = [child for child in parent.children if isinstance(child, Tag)]
        if len(children) < 3:
            continue
        shapes = Counter(_shape(child) for child in children)
        shape, count = shapes.most_common(1)[0]
        if count < 3:
            continue
        group = [
            child
            for child in children
            if _shape(child) == shape and _best_link(child) is not None and _date(child)
        ]
        if len(group) >= 3 and len(group) > len(best):
            best = group
    return best


def _shape(tag: Tag) -> tuple[str, str]:
    classes = tag.get("class")
    first = classes[0] if isinstance(classes, list) and classes else ""
    return tag.name, str(first)


# --- one block ------------------------------------------------------------------------


def _block_entry(block: Tag, base_url: str, page_language: str | None) -> ParsedEntry | None:
    anchor = _headline_link(block) or _best_link(block)
    heading = block.find(_HEADINGS)
    title = _text(heading) if isinstance(heading, Tag) else None
    if not title and anchor is not None:
        title = _text(anchor)
    if anchor is None and not title:
        return None
    summary = _summary(block, title)
    image = block.find(["img", "picture"])
    return ParsedEntry(
        link=attribute_text(anchor, "href") if anchor is not None else None,
        title=title,
        summary_html=summary,
        published=_date(block),
        image=element_image_url(image) if isinstance(image, Tag) else None,
        language=attribute_text(block, "lang") or page_language,
        base_url=base_url,
    )


def _headline_link(block: Tag) -> Tag | None:
    links = _all_headline_links(block)
    if links:
        return links[0]
    return None


def _best_link(block: Tag) -> Tag | None:
    """The link with the most text that reads like a title (not "Read more", not an image)."""
    best: Tag | None = None
    best_length = 0
    for anchor in block.find_all("a", href=True):
        if not isinstance(anchor, Tag) or not _usable_link(anchor):
            continue
        text = _text(anchor) or ""
        if len(text) < MIN_TITLE_LENGTH or _READ_MORE.match(text):
            continue
        if len(text) > best_length:
            best, best_length = anchor, len(text)
    return best


def _usable_link(anchor: Tag) -> bool:
    href = attribute_text(anchor, "href") or ""
    if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
        return False
    return "/tag/" not in href and "/category/" not in href and "/author/" not in href


def _date(block: Tag) -> datetime | None:
    for time_tag in block.find_all("time"):
        # WordPress prints the published <time> before the "updated" one.
        classes = " ".join(time_tag.get("class") or [])
        if "updated" in classes and "published" not in classes:
            continue
        moment = _date_text(attribute_text(time_tag, "datetime")) or _date_text(time_tag.get_text())
        if moment is not None:
            return moment
    for element in block.find_all(class_=_DATE_CLASS):
        if isinstance(element, Tag) and element.name not in _HEADINGS and element.name != "a":
            moment = _date_text(attribute_text(element, "title")) or _date_text(
                element.get_text(" ")
            )
            if moment is not None:
                return moment
    for string in block.find_all(string=_YEAR):
        text = str(string)
        if len(text) <= 80:
            moment = _date_text(text)
            if moment is not None:
                return moment
    return None


def _date_text(text: str | None) -> datetime | None:
    if not text or len(text) > 200:
        return None
    slash = _SLASH_DATE.search(text)
    if slash is not None:
        first, second = int(slash.group("a")), int(slash.group("b"))
        # Month first unless that cannot be (13/03/2025 is only readable day first).
        month, day = (second, first) if first > 12 else (first, second)
        try:
            return datetime(
                int(slash.group("year")),
                month,
                day,
                int(slash.group("h") or 0),
                int(slash.group("m") or 0),
                tzinfo=UTC,
            )
        except ValueError:
            return None
    return parse_date(text)


def _summary(block: Tag, title: str | None) -> str | None:
    # Builders with hashed class names (Wix) still label parts in data-hook or itemprop.
    candidates = [
        element
        for attribute in ("class", "data-hook", "itemprop")
        for element in block.find_all(True, attrs={attribute: _SUMMARY_CLASS})
        if isinstance(element, Tag) and element.name not in _HEADINGS
    ]
    candidates += [p for p in block.find_all("p") if isinstance(p, Tag)]
    for element in candidates:
        text = _text(element) or ""
        if len(text) < MIN_SUMMARY_LENGTH or text == title or _READ_MORE.match(text):
            continue
        if element.find(_HEADINGS) is not None:
            continue
        return element.decode_contents().strip()
    return None


# --- furniture ------------------------------------------------------------------------


def _strip_furniture(soup: BeautifulSoup) -> None:
    """Remove navigation, site header/footer, sidebars and widgets from the tree."""
    doomed: list[Tag] = []
    for tag in soup.find_all(True):
        if not isinstance(tag, Tag) or tag.name in ("html", "body", "main"):
            continue
        if tag.name in _FURNITURE_TAGS or attribute_text(tag, "role") in _FURNITURE_ROLES:
            doomed.append(tag)
        elif tag.name in ("header", "footer"):
            # A story card's own header (title, date) stays; the site's goes.
            if tag.find_parent(["article", "main"]) is None:
                doomed.append(tag)
        elif tag.find_parent("article") is None and tag.name != "article":
            tokens = [*(tag.get("class") or []), attribute_text(tag, "id") or ""]
            if any(
                _FURNITURE_TOKEN.search(token) and not _LAYOUT_FLAG.match(token) for token in tokens
            ):
                doomed.append(tag)
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()


# --- schema.org JSON-LD ---------------------------------------------------------------


def _json_ld_objects(soup: BeautifulSoup) -> Iterator[dict[str, Any]]:
    """Every JSON object in the page's JSON-LD scripts, nested ones and @graph included."""
    for script in soup.find_all("script", type=re.compile(r"ld\+json", re.IGNORECASE)):
        try:
            document = json.loads(script.get_text())
        except (json.JSONDecodeError, RecursionError):
            continue  # a broken block among good ones is common; skip only it
        pending: list[Any] = [document]
        while pending:
            value = pending.pop(0)
            if isinstance(value, list):
                pending.extend(value)
            elif isinstance(value, dict):
                yield value
                graph = value.get("@graph")
                if isinstance(graph, list):
                    pending.extend(graph)


def _types(value: dict[str, Any]) -> set[str]:
    kinds = value.get("@type")
    names = kinds if isinstance(kinds, list) else [kinds]
    return {str(name).rsplit("/", 1)[-1] for name in names if isinstance(name, str)}


def _json_ld_entries(soup: BeautifulSoup, base_url: str, language: str | None) -> list[ParsedEntry]:
    """Stories the page lists in JSON-LD: an ItemList's elements, else several articles."""
    objects = list(_json_ld_objects(soup))
    for value in objects:
        if "ItemList" in _types(value) and isinstance(value.get("itemListElement"), list):
            entries = []
            for element in value["itemListElement"]:
                if not isinstance(element, dict):
                    continue
                item = element.get("item")
                story = item if isinstance(item, dict) else element
                if isinstance(item, str) and not story.get("url"):
                    story = {**element, "url": item}
                entries.append(_json_ld_entry(story, base_url, language))
            if entries:
                return entries
    articles = [value for value in objects if _types(value) & _ARTICLE_TYPES]
    if len(articles) >= 2:  # a single article is the page itself, not a listing
        return [_json_ld_entry(article, base_url, language) for article in articles]
    return []


def _json_ld_entry(story: dict[str, Any], base_url: str, language: str | None) -> ParsedEntry:
    description = _json_text(story.get("description"))
    return ParsedEntry(
        link=_json_text(story.get("url")) or _json_text(story.get("@id")),
        title=_json_text(story.get("headline")) or _json_text(story.get("name")),
        summary_html=_escape(description) if description else None,
        published=_date_text(_json_text(story.get("datePublished"))),
        updated=_date_text(_json_text(story.get("dateModified"))),
        authors=_json_authors(story.get("author")),
        image=_json_image(story.get("image")),
        language=_json_text(story.get("inLanguage")) or language,
        base_url=base_url,
    )


def _json_text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


def _json_image(value: object) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl")
    return _json_text(value)


def _json_authors(value: object) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    names = []
    for author in values:
        name = _json_text(author.get("name")) if isinstance(author, dict) else _json_text(author)
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _merge(
    from_markup: list[ParsedEntry], structured: list[ParsedEntry], base_url: str
) -> list[ParsedEntry]:
    """The markup's entries with gaps filled from JSON-LD (matched by link), or JSON-LD's."""
    if not from_markup:
        return structured
    by_link = {_resolve(entry.link, base_url): entry for entry in structured if entry.link}
    merged = []
    for entry in from_markup:
        data = by_link.get(_resolve(entry.link, base_url))
        if data is not None:
            entry = replace(
                entry,
                published=entry.published or data.published,
                updated=entry.updated or data.updated,
                image=entry.image or data.image,
                summary_html=entry.summary_html or data.summary_html,
                authors=entry.authors or data.authors,
            )
        merged.append(entry)
    return merged


def _resolve(link: str | None, base_url: str) -> str:
    if not link:
        return ""
    try:
        return urljoin(base_url, link).split("#", 1)[0].rstrip("/")
    except ValueError:
        return link


# --- one story's own page (follow: true) ----------------------------------------------


def page_metadata(content: bytes, url: str, content_type: str | None) -> PageMetadata:
    """What a story's page says about itself: JSON-LD first, then Open Graph and meta tags."""
    soup = BeautifulSoup(decode_page(content, content_type), "lxml")
    base_url = document_base_url(soup, url)
    article = next(
        (value for value in _json_ld_objects(soup) if _types(value) & _ARTICLE_TYPES), None
    )
    data = _json_ld_entry(article, base_url, None) if article is not None else ParsedEntry()

    def meta(*names: str) -> str | None:
        for name in names:
            tag = soup.find("meta", attrs={"property": name}) or soup.find(
                "meta", attrs={"name": name}
            )
            value = attribute_text(tag, "content") if isinstance(tag, Tag) else None
            if value:
                return value
        return None

    published = data.published or _date_text(meta("article:published_time", "date"))
    if published is None:
        time_tag = soup.find("time", datetime=True)
        if isinstance(time_tag, Tag):
            published = _date_text(attribute_text(time_tag, "datetime"))
    description = meta("og:description", "description", "twitter:description")
    images = [ImageCandidate(data.image)] if data.image else []
    open_graph = meta("og:image", "og:image:url", "og:image:secure_url")
    if open_graph:
        width, height = pixels(meta("og:image:width")), pixels(meta("og:image:height"))
        images.append(ImageCandidate(open_graph, width, height))
    twitter = meta("twitter:image")
    if twitter:
        images.append(ImageCandidate(twitter))
    return PageMetadata(
        title=data.title or meta("og:title", "twitter:title"),
        published=published,
        updated=data.updated or _date_text(meta("article:modified_time", "og:updated_time")),
        image=data.image or meta("og:image", "og:image:url", "twitter:image"),
        description=_html_text(data.summary_html) or description,
        language=_page_language(soup),
        url=base_url,
        images=tuple(images),
    )


def with_metadata(entry: ParsedEntry, metadata: PageMetadata) -> ParsedEntry:
    """The listing's entry with what it lacked taken from the story's own page.

    The listing wins where it has a value: it is what the member chose to show there.
    """
    image = entry.image
    if image is None and metadata.image:
        # The story page's image is relative to the story page, not to the listing.
        image = urljoin(metadata.url, metadata.image) if metadata.url else metadata.image
    # The page's images join the listing's as thumbnail candidates, made absolute likewise.
    page_images = tuple(
        replace(found, url=urljoin(metadata.url, found.url) if metadata.url else found.url)
        for found in metadata.images
    )
    summary = entry.summary_html
    if not summary and metadata.description:
        summary = _escape(metadata.description)
    return replace(
        entry,
        title=entry.title or metadata.title,
        published=entry.published or metadata.published,
        updated=entry.updated or metadata.updated,
        image=image,
        images=entry.images + page_images,
        summary_html=summary,
        language=metadata.language or entry.language,
    )


# --- small helpers --------------------------------------------------------------------


def _page_language(soup: BeautifulSoup) -> str | None:
    language = attribute_text(soup.html, "lang") if soup.html else None
    if language:
        return language
    locale = soup.find("meta", attrs={"property": "og:locale"})
    value = attribute_text(locale, "content") if isinstance(locale, Tag) else None
    return value.replace("_", "-") if value else None


def _text(tag: Tag | None) -> str | None:
    if tag is None:
        return None
    return " ".join(tag.get_text(" ").split()) or None


def _escape(text: str) -> str:
    return "<p>" + text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</p>"


def _html_text(html: str | None) -> str | None:
    if not html:
        return None
    return _text(BeautifulSoup(html, "lxml")) or None
