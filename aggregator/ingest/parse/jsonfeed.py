"""JSON Feed 1.0 and 1.1, read directly with json.loads, into a ParsedFeed.

It must never fetch anything, never clean or judge content, and never raise anything but
FormatError for a body it cannot read.
"""

import json
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any

from aggregator.ingest.parse.fields import FormatError
from aggregator.ingest.parse.fields import html_or_none
from aggregator.ingest.parse.fields import list_of
from aggregator.ingest.parse.fields import text_at
from aggregator.ingest.parse.fields import text_to_html
from aggregator.ingest.parse.fields import unique
from aggregator.ingest.parse.sniff import UTF8_BOM
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed

JSON_FEED_VERSION_PREFIX = "https://jsonfeed.org/version/"
_JSON_FEED_FORMATS = {"1": "json10", "1.0": "json10", "1.1": "json11"}


def parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    """Read JSON Feed 1.0 or 1.1 (https://www.jsonfeed.org/version/1.1/)."""
    try:
        document = json.loads(content.removeprefix(UTF8_BOM))
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

    feed_language = text_at(document, "language")
    feed_authors = _json_authors(document)
    entries = tuple(
        _json_entry(item, feed_language, feed_authors) for item in items if isinstance(item, dict)
    )
    skipped = len(items) - len(entries)
    return ParsedFeed(
        url=url,
        format=_JSON_FEED_FORMATS.get(version.removeprefix(JSON_FEED_VERSION_PREFIX), "json"),
        title=text_at(document, "title"),
        link=text_at(document, "home_page_url"),
        language=feed_language,
        entries=entries,
        warning=f"{skipped} item(s) are not JSON objects and were skipped" if skipped else None,
        hub_url=_json_websub_hub(document),
        self_url=text_at(document, "feed_url"),
    )


def _json_websub_hub(document: Mapping[str, Any]) -> str | None:
    """The first of JSON Feed's `hubs` whose type is WebSub (the spec's name for it)."""
    for hub in list_of(document, "hubs"):
        if isinstance(hub, dict) and str(hub.get("type") or "").casefold() == "websub":
            url = text_at(hub, "url")
            if url is not None:
                return url
    return None


def _json_entry(
    item: Mapping[str, Any], feed_language: str | None, feed_authors: tuple[str, ...]
) -> ParsedEntry:
    content_html = text_at(item, "content_html")
    if content_html is None:
        content_html = html_or_none(text_to_html(text_at(item, "content_text") or ""))
    summary = text_at(item, "summary")
    raw_id = item.get("id")
    guid = text_at(item, "id")
    if isinstance(raw_id, int | float) and not isinstance(raw_id, bool):
        # The spec says an id given as a number must be read as a string.
        guid = str(raw_id)
    return ParsedEntry(
        guid=guid,
        link=text_at(item, "url") or text_at(item, "external_url"),
        title=text_at(item, "title"),
        title_is_html=False,
        content_html=content_html,
        summary_html=html_or_none(text_to_html(summary)) if summary else None,
        published=_rfc3339(item.get("date_published")),
        updated=_rfc3339(item.get("date_modified")),
        # An item without authors has the feed's (spec, "authors").
        authors=_json_authors(item) or feed_authors,
        tags=unique(list_of(item, "tags")),
        image=text_at(item, "image") or text_at(item, "banner_image"),
        language=text_at(item, "language") or feed_language,
    )


def _json_authors(container: Mapping[str, Any]) -> tuple[str, ...]:
    """Names from 1.1 "authors", else from the 1.0 "author" object."""
    authors = container.get("authors")
    if isinstance(authors, list):
        names = unique(author.get("name") for author in authors if isinstance(author, dict))
        if names:
            return names
    author = container.get("author")
    return unique([author.get("name")]) if isinstance(author, dict) else ()


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
