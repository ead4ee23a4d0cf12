"""What every feed reader (rss_atom, jsonfeed, pages) shares: FormatError, plain text as
HTML, and small readers of the loosely typed dicts that feedparser and json.loads return.

It must never fetch, clean or judge content.
"""

import calendar
import html
import re
import time
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any


class FormatError(ValueError):
    """The body is not a readable feed; the message is the cause in plain words.

    parse_source turns it into a ParseError naming the member and the URL.
    """


_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def text_to_html(text: str) -> str:
    """Plain text as escaped HTML: blank lines separate paragraphs, single newlines break lines."""
    paragraphs = [part.strip() for part in _BLANK_LINES.split(text.replace("\r\n", "\n"))]
    return "".join(
        "<p>" + html.escape(part).replace("\n", "<br>") + "</p>" for part in paragraphs if part
    )


def utc(value: object) -> datetime | None:
    """feedparser's *_parsed struct_time (always UTC) as an aware datetime."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def get(container: Mapping[str, Any], key: str) -> Any:
    """Read with dict.get so FeedParserDict's aliases stay off (its "updated" falls back to
    "published", which would invent an update date the feed never gave)."""
    return dict.get(container, key) if isinstance(container, dict) else container.get(key)


def text_at(container: Mapping[str, Any] | None, key: str) -> str | None:
    """A non-blank string value, or None."""
    if not container:
        return None
    value = get(container, key)
    return value if isinstance(value, str) and value.strip() else None


def first_text(pairs: Iterable[tuple[Mapping[str, Any], str]]) -> str | None:
    for container, key in pairs:
        value = text_at(container, key)
        if value is not None:
            return value
    return None


def mapping(container: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = get(container, key)
    return value if isinstance(value, Mapping) else None


def list_of(container: Mapping[str, Any], key: str) -> list[Any]:
    value = get(container, key)
    return value if isinstance(value, list) else []


def mappings(container: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [value for value in list_of(container, key) if isinstance(value, Mapping)]


def unique(values: Iterable[object]) -> tuple[str, ...]:
    """Non-blank strings, stripped, first occurrence kept."""
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str) and value.strip():
            seen.setdefault(value.strip(), None)
    return tuple(seen)


def html_or_none(value: str | None) -> str | None:
    return value if value else None
