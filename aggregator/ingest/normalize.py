"""Turn a ParsedFeed into Items that are safe to store and republish.

Pure: sanitizes HTML against an allow-list, makes every URL absolute, cleans text,
settles dates in UTC, and derives each item's identity key and content hash. What comes
out is what members' readers will see in the combined feed, so anything a member's CMS
(or an attacker who got into it) put there that could run, track or break a reader's page
is removed here.

A poll of a changed feed does not normalize the entries it stored unchanged
(normalize_poll): each entry has a digest (entry_digests) of every field of the parsed
entry, the feed's address and language, the source's member, address and filters, the
fallback language, the poll's limits, NORMALIZE_VERSION and the versions of the libraries
the result depends on. The store keeps, with each item, the digest of the entry it was last
written from; an entry whose digest the source's stored items hold is "unchanged". Why
skipping it leaves what is stored exactly as it was: normalizing is deterministic in what
the digest covers except for the clock, which only moves dates; so the entry would give an
item with the stored item's key and content hash, which the store leaves untouched (dates
included). What else a present item could change is kept by not skipping: every entry
when the feed holds more than items_per_poll (the newest are chosen among all), an entry
the source's max_age would now leave out (counted as filtered), an entry whose identity
cleaning could change (no link), and all of them when an entry that is normalized shares a
key or an address with a skipped one (the store's first-of-a-key and re-keying rules look
at the whole batch). An item limits.limit_items cut carries no digest, so its note recurs. An
item a poll finds unchanged under another digest (its entry's dates moved, or the settings
changed) takes the new one (decide.unchanged_digests), so the next poll skips it.
Bump NORMALIZE_VERSION with any change here (or in what this module calls) that changes
what it makes of some entry: every entry is then normalized again, once.

It must never do I/O: no network, no clock (`now` is passed in), no database.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
import sys
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import fields
from dataclasses import is_dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import cache
from functools import partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version
from typing import Any

import nh3

from aggregator.ingest.filters import too_old
from aggregator.ingest.images import choose_thumbnail
from aggregator.ingest.images import content_images
from aggregator.ingest.images import is_tracking_pixel
from aggregator.ingest.images import pixels
from aggregator.ingest.limits import SUMMARY_LENGTH
from aggregator.ingest.site_debris import clean_entry
from aggregator.models import FetchLimits
from aggregator.models import ImageCandidate
from aggregator.models import Item
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig
from aggregator.text import ALLOWED_TAGS
from aggregator.text import ELLIPSIS
from aggregator.text import INVALID_CHARS
from aggregator.text import REMOVED_WITH_CONTENT
from aggregator.text import clean_line
from aggregator.text import excerpt
from aggregator.text import html_to_text
from aggregator.urls import absolute_url
from aggregator.urls import canonical_url
from aggregator.urls import is_http_url

ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "*": frozenset({"lang"}),
    "a": frozenset({"href", "title"}),
    "img": frozenset({"src", "alt", "title", "width", "height"}),
    "abbr": frozenset({"title"}),
    "th": frozenset({"colspan", "rowspan"}),
    "td": frozenset({"colspan", "rowspan"}),
}


URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer"

# A feed "summary" longer than this is really the full text; a short excerpt replaces it.
SUMMARY_HTML_MAX_TEXT = 1_000
MAX_CONTENT_LENGTH = 200_000  # characters of sanitized HTML
# Raw HTML beyond this is not even parsed: it bounds the work one entry can cause, with room
# for inline data: images, which sanitizing removes.
MAX_INPUT_LENGTH = 2_000_000
# html5ever (inside nh3) takes time quadratic in the nesting depth (100,000 nested <div>s:
# 27 s); real articles stay far below this, a hostile one loses its markup past it.
MAX_NESTING = 256

# Part of every entry digest: bump it when a change to this module, or to what it calls
# (site_debris, images, aggregator.text, aggregator.urls), changes what it makes of some
# entry, so that stored items stop matching and each changed feed is normalized again.
NORMALIZE_VERSION = 1
# The libraries whose versions are part of every entry digest (they shape the output).
_DIGESTED_LIBRARIES = ("nh3", "beautifulsoup4")

EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(minutes=10)

# nh3 serializes attribute values double-quoted with '"', '<' and '>' escaped, so this
# reads its output exactly; it is never applied to unsanitized input.
_IMG_TAG = re.compile(r'<img((?:\s+[^\s"\'<>/=]+(?:="[^"]*")?)*)\s*/?>')
_ATTRIBUTE = re.compile(r'([^\s"\'<>/=]+)(?:="([^"]*)")?')
_BLOCK_END = re.compile(
    r"</(?:p|div|li|ul|ol|dl|blockquote|pre|table|figure|h[1-6])>|<br>|<hr>", re.IGNORECASE
)
_NESTING_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)(?:\s[^<>]*?)?(/?)>")
_NOT_NESTING = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "thead", "tbody",
    }
)  # fmt: skip
_LANGUAGE = re.compile(r"[a-z]{2,8}(?:-[a-z0-9]{1,8})*")

# Elements whose boundaries separate words when HTML is read as text.


def normalize_feed(
    parsed: ParsedFeed,
    source: SourceConfig,
    now: datetime,
    default_language: str | None = None,
) -> list[Item]:
    """One Item per usable entry, in the feed's order.

    Entries with nothing to show (no title and no content: a GUID or a link alone) are
    dropped; count them with `len(parsed.entries) - len(items)`. `now` stands in for
    missing, implausible or future dates and must be timezone-aware.
    """
    return [item for _, item in normalize_entries(parsed, source, now, default_language)]


def normalize_entries(
    parsed: ParsedFeed,
    source: SourceConfig,
    now: datetime,
    default_language: str | None = None,
) -> list[tuple[ParsedEntry, Item]]:
    """normalize_feed with each Item beside the entry it came from (follow enriches entries)."""
    now = _utc(now)
    pairs = []
    for entry in parsed.entries:
        item = _normalize_entry(entry, parsed, source, now, default_language)
        if item is not None:
            pairs.append((entry, item))
    return pairs


@dataclass(frozen=True)
class PollEntries:
    """What normalize_poll made of a feed."""

    pairs: list[tuple[ParsedEntry, Item]]  # in the feed's order, each Item with its digest
    unchanged: int  # entries not normalized: their stored items are what they would give


def normalize_poll(
    parsed: ParsedFeed,
    source: SourceConfig,
    now: datetime,
    default_language: str | None,
    *,
    limits: FetchLimits,
    known: frozenset[str] = frozenset(),
) -> PollEntries:
    """normalize_entries for a poll that stores what it reads: each Item carries its
    entry digest, and the entries whose digest is in `known` (the digests of the source's
    stored items) are left out when that cannot change what is stored (module docstring).

    Every usable entry is either in `pairs` or counted in `unchanged` (a stored item came
    from it, so it had something to show).
    """
    now = _utc(now)
    digests = entry_digests(parsed, source, default_language, limits)
    skipped = _unchanged_identities(parsed, source, now, digests, known, limits)
    made: dict[int, Item | None] = {
        index: _normalize_entry(entry, parsed, source, now, default_language, digests[index])
        for index, entry in enumerate(parsed.entries)
        if index not in skipped
    }
    if skipped and _shares_identity(made.values(), skipped.values()):
        # The store would see these entries beside the others: normalize them after all.
        made.update(
            (index, _normalize_entry(entry, parsed, source, now, default_language, digests[index]))
            for index, entry in enumerate(parsed.entries)
            if index in skipped
        )
        skipped = {}
    pairs = [
        (entry, item)
        for index, entry in enumerate(parsed.entries)
        if (item := made.get(index)) is not None
    ]
    return PollEntries(pairs=pairs, unchanged=len(skipped))


def entry_digests(
    parsed: ParsedFeed, source: SourceConfig, language: str | None, limits: FetchLimits
) -> list[str]:
    """One digest per entry of `parsed`: of all its fields, and of everything else what
    normalize_poll makes of it and what the poll then does with it depend on (module
    docstring). Canonical JSON under SHA-256, so the same on every process, run and machine
    (Python's hash() of a str is salted per process). A value of a type it does not know
    makes its entry look changed at every poll: a repr may not show all of a value.
    """
    context = hashlib.sha256(
        _canonical(
            [
                NORMALIZE_VERSION,
                _library_versions(),
                source.member_id,
                source.url,
                source.follow,
                source.filters,
                language,
                parsed.url,
                parsed.language,
                [limits.tags_per_item, limits.title_length, limits.summary_length],
                limits.items_per_poll,
            ]
        )
    )
    digests = []
    for entry in parsed.entries:
        digest = context.copy()
        digest.update(_canonical(entry))
        digests.append(digest.hexdigest()[:32])
    return digests


def _unchanged_identities(
    parsed: ParsedFeed,
    source: SourceConfig,
    now: datetime,
    digests: Sequence[str],
    known: frozenset[str],
    limits: FetchLimits,
) -> dict[int, tuple[str, str | None]]:
    """The entries normalize_poll may skip, by index, each with its (key, url)."""
    if not known or len(parsed.entries) > limits.items_per_poll:
        return {}
    aging = [rule for rule in source.filters if rule.max_age is not None]
    skipped = {}
    for index, entry in enumerate(parsed.entries):
        if digests[index] not in known:
            continue
        identity = _identity(entry, parsed)
        if identity is None:
            continue
        if aging:
            published, _, from_source = _dates(entry, now)
            if any(too_old(rule, published, from_source, now) for rule in aging):
                continue
        skipped[index] = identity
    return skipped


def _identity(entry: ParsedEntry, parsed: ParsedFeed) -> tuple[str, str | None] | None:
    """The (key, url) _normalize_entry gives the entry, read without cleaning it; None when
    cleaning could change them (an entry without a link takes the "read more" link of its
    content) or when the key is a hash of the text."""
    if not entry.link:
        return None
    url = _item_url(entry, _entry_base(entry, parsed))
    key = _identity_key(entry.guid, url)
    return None if key is None else (key, url)


def _shares_identity(
    made: Iterable[Item | None], skipped: Iterable[tuple[str, str | None]]
) -> bool:
    """Whether a normalized item has the key or the address of a skipped entry: then the
    skipped one matters to the store (which keeps the first item of a key, and re-keys a
    stored item to a new key only when its content hash, address included, is the same)."""
    keys = set()
    urls = set()
    for key, url in skipped:
        keys.add(key)
        urls.add(url)
    return any(item is not None and (item.key in keys or item.url in urls) for item in made)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC)


@cache
def _library_versions() -> list[str]:
    found = [f"python {sys.version_info[0]}.{sys.version_info[1]}"]
    for name in _DIGESTED_LIBRARIES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} ?")
    return found


def _canonical(value: object) -> bytes:
    return json.dumps(value, default=_json_value, separators=(",", ":")).encode("ascii")


def _json_value(value: object) -> Any:
    """What JSON cannot hold, tagged with its type, so that no two values read the same."""
    if isinstance(value, datetime):
        # The offset is in it; two spellings of one instant only make an entry look changed.
        return ["datetime", value.isoformat()]
    if isinstance(value, timedelta):
        return ["timedelta", value.total_seconds()]
    if is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__, *(getattr(value, field.name) for field in fields(value))]
    return ["never the same", secrets.token_hex(16)]


def sanitize_html(html: str, base_url: str | None) -> str:
    """Allow-listed HTML with absolute http(s)/mailto URLs and no tracking pixels.

    Scripts, styles, frames, plugins, forms and SVG go with their content; event handlers,
    style attributes and javascript:/data: URLs go. A relative URL with no base is dropped.
    """
    # Cutting raw HTML anywhere is safe: nh3 copes with whatever half-tag is left.
    cleaned = nh3.clean(
        _limit_nesting(INVALID_CHARS.sub("", html[:MAX_INPUT_LENGTH])),
        tags=ALLOWED_TAGS,
        clean_content_tags=REMOVED_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=partial(_filter_attribute, base_url),
        strip_comments=True,
        link_rel=LINK_REL,
        url_schemes=URL_SCHEMES,
    )
    return _IMG_TAG.sub(_keep_useful_image, cleaned).strip()


def _limit_nesting(html: str) -> str:
    """The HTML, or only its text when elements nest deeper than MAX_NESTING.

    Linear: one pass over the tags, counting like a browser would for the elements that
    nest (void elements and those an HTML parser closes by itself are not counted).
    """
    if html.count("<") <= MAX_NESTING:
        return html
    depth = 0
    for match in _NESTING_TAG.finditer(html):
        closing, name, self_closing = match.groups()
        if self_closing or name.lower() in _NOT_NESTING:
            continue
        if closing:
            depth = max(depth - 1, 0)
            continue
        depth += 1
        if depth > MAX_NESTING:
            # Every tag goes (script and style bodies stay as inert, escaped text).
            return _NESTING_TAG.sub(" ", html)
    return html


# --- one entry -------------------------------------------------------------------------


def _normalize_entry(
    entry: ParsedEntry,
    parsed: ParsedFeed,
    source: SourceConfig,
    now: datetime,
    default_language: str | None,
    digest: str | None = None,
) -> Item | None:
    # Before sanitizing: the repairs read what the sanitizer removes (lazy images' data-src,
    # plugin classes, <noscript> fallbacks), and their output is sanitized like any input.
    entry = clean_entry(entry)
    base = _entry_base(entry, parsed)
    raw_title = entry.title or ""
    title = html_to_text(raw_title) if entry.title_is_html else clean_line(raw_title)
    url = _item_url(entry, base)

    content = _sanitize_content(entry.content_html, base)
    content_text = html_to_text(content)
    summary_html = _sanitize_content(entry.summary_html, base)
    summary_text = html_to_text(summary_html)
    raw_content = entry.content_html
    if not _has_substance(content, content_text):
        content, content_text = summary_html, summary_text
        raw_content = entry.summary_html
    if not _has_substance(content, content_text):
        # Nothing a reader could see: a link or a GUID alone would be stored as a story
        # with an empty headline, and overwrite the stored story that has that GUID.
        if not title:
            return None
        content = content_text = ""

    summary = _summary(summary_html, summary_text, content_text)
    published, updated, date_from_source = _dates(entry, now)
    authors = _unique(entry.authors, casefold=False)
    tags = _unique(entry.tags, casefold=True)
    named = (ImageCandidate(entry.image),) if entry.image else ()
    # Read before sanitizing: the sanitizer drops srcset, whose widths rank the images.
    in_content = content_images(raw_content or "") if content else []
    image = choose_thumbnail([*entry.images, *named, *in_content], base)

    key = _identity_key(entry.guid, url) or "hash:" + _digest(
        [title, content_text], separator="\n"
    )
    # Everything a reader of the combined feed sees, and nothing else (dates excluded:
    # a bumped `updated` alone is not an edit worth republishing).
    seen_by_reader = [
        title,
        url or "",
        content,
        summary,
        image or "",
        "\x1e".join(tags),
        "\x1e".join(authors),
    ]

    return Item(
        member_id=source.member_id,
        source_url=source.url,
        key=key,
        url=url,
        title=title,
        content_html=content,
        summary=summary,
        published=published,
        updated=updated,
        date_from_source=date_from_source,
        authors=authors,
        tags=tags,
        image=image,
        language=_language(entry.language, parsed.language, default_language),
        content_hash=_digest(seen_by_reader, separator="\x1f"),
        entry_digest=digest,
    )


def _identity_key(guid: str | None, url: str | None) -> str | None:
    """The item's key from its GUID, else its address; None: a hash of its text must do."""
    cleaned = INVALID_CHARS.sub("", guid or "").strip()
    if cleaned:
        return "guid:" + cleaned
    return None if url is None else "link:" + url


def _sanitize_content(raw: str | None, base: str) -> str:
    if not raw:
        return ""
    sanitized = sanitize_html(raw, base)
    if len(sanitized) > MAX_CONTENT_LENGTH:
        return _truncate_html(sanitized, MAX_CONTENT_LENGTH)
    return sanitized


def _entry_base(entry: ParsedEntry, parsed: ParsedFeed) -> str:
    if entry.base_url:
        return absolute_url(entry.base_url, parsed.url) or parsed.url
    return parsed.url


def _item_url(entry: ParsedEntry, base: str) -> str | None:
    link = absolute_url(entry.link, base)
    if link is None and entry.guid and is_http_url(entry.guid.strip()):
        # RSS guids with isPermaLink (the default) are the item's link.
        link = entry.guid.strip()
    return canonical_url(link) if link else None


def _summary(summary_html: str, summary_text: str, content_text: str) -> str:
    if summary_text and len(summary_text) <= SUMMARY_HTML_MAX_TEXT:
        return summary_html
    return html.escape(excerpt(summary_text or content_text, SUMMARY_LENGTH))


def _dates(entry: ParsedEntry, now: datetime) -> tuple[datetime, datetime, bool]:
    """(published, updated, date_from_source), all UTC.

    The first plausible of the entry's published and updated dates is `published`; with
    neither, `now` is (and date_from_source says so). `updated` is never before `published`.
    """
    published = _plausible(entry.published, now) or _plausible(entry.updated, now)
    if published is None:
        return now, now, False
    updated = _plausible(entry.updated, now) or published
    return published, max(updated, published), True


def _plausible(value: datetime | None, now: datetime) -> datetime | None:
    """The date in UTC, or None when missing, unusable, before 1990 or far in the future.

    A date up to FUTURE_TOLERANCE ahead is clock skew and is kept; one further ahead is a
    timezone or typing mistake (or a scheduled post leaking early) and counts as missing,
    so it ends up as `now`.
    """
    if not isinstance(value, datetime):
        return None
    try:
        # A naive date would mean a parser bug upstream; UTC is what feedparser assumes.
        utc = value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    if utc < EARLIEST_DATE or utc > now + FUTURE_TOLERANCE:
        return None
    return utc


def _unique(values: Iterable[str], *, casefold: bool) -> tuple[str, ...]:
    seen: set[str] = set()
    result = []
    for value in values:
        cleaned = clean_line(value)
        marker = cleaned.casefold() if casefold else cleaned
        if cleaned and marker not in seen:
            seen.add(marker)
            result.append(cleaned)
    return tuple(result)


def _language(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate:
            tag = candidate.strip().lower().replace("_", "-")
            if _LANGUAGE.fullmatch(tag):
                return tag
    return None


def _digest(parts: list[str], *, separator: str) -> str:
    return hashlib.sha256(separator.join(parts).encode("utf-8")).hexdigest()[:32]


# --- images ----------------------------------------------------------------------------


def _keep_useful_image(match: re.Match[str]) -> str:
    attributes = _img_attributes(match.group(1))
    src = attributes.get("src")
    if not src or is_tracking_pixel(src):
        return ""
    width = pixels(attributes.get("width"))
    height = pixels(attributes.get("height"))
    if width is not None and height is not None and width <= 1 and height <= 1:
        return ""
    return match.group(0)


def _img_attributes(serialized: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _ATTRIBUTE.findall(serialized)}


# --- HTML helpers ----------------------------------------------------------------------


def _filter_attribute(base_url: str | None, tag: str, attribute: str, value: str) -> str | None:
    """nh3 attribute_filter: make href/src absolute in the same pass as cleaning.

    nh3 checks URL schemes before calling this and does not check what it returns, so
    only http(s) URLs and the mailto: links it already accepted may come out.
    """
    if attribute not in ("href", "src"):
        return value
    if attribute == "href" and value.strip().lower().startswith("mailto:"):
        return value.strip()
    return absolute_url(value, base_url)


def _has_substance(sanitized: str, text: str) -> bool:
    return bool(text) or "<img" in sanitized


def _truncate_html(sanitized: str, limit: int) -> str:
    """Cut long sanitized HTML at an element boundary, keep it well-formed, mark the cut."""
    cut = 0
    for match in _BLOCK_END.finditer(sanitized, 0, limit):
        cut = match.end()
    if cut < limit // 2:
        # In sanitized output every literal "<" opens a tag, so this never splits one.
        cut = sanitized.rfind("<", 0, limit)
    if cut < limit // 2:
        # One huge text run: entities hold no spaces, so a space never splits one.
        cut = sanitized.rfind(" ", 0, limit)
    if cut < limit // 2:
        cut = limit
        entity_start = sanitized.rfind("&", limit - 12, limit)
        if entity_start != -1 and ";" not in sanitized[entity_start:limit]:
            cut = entity_start
    # Re-sanitizing closes whatever the cut left open.
    return sanitize_html(sanitized[:cut], None) + f"<p>{ELLIPSIS}</p>"
