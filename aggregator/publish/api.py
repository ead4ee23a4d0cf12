"""The JSON items API: what `/api/items` accepts and the document it answers with.

The item shape is the contract with the page helper's embed script (see the notes in
coordination): {"items": [{id, url, title, summary, summary_text, [content_html], published,
updated, image, language, tags, members: [{id, name, url, item_url}]}], "next": cursor|null}.
The static export writes the same documents as api/items.json and members/{id}/items.json.

Pure functions: this module must never read the clock, the database, the network or
files; a request's parameters come in as a mapping and bad ones raise ApiQueryError.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aggregator.errors import AggregatorError
from aggregator.models import PublishedStory
from aggregator.models import StoryCursor
from aggregator.publish.jsonfeed import credit_json
from aggregator.publish.jsonfeed import rfc3339
from aggregator.publish.syndication import summary_text
from aggregator.text import has_control_character
from aggregator.text import tag_slug

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_QUERY_LENGTH = 200
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")


class ApiQueryError(AggregatorError):
    """A request to the items API asked for something it cannot answer (an HTTP 400)."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        self.message = message
        super().__init__(f"{parameter}: {message}")


@dataclass(frozen=True)
class ItemsQuery:
    """One validated request for items; the defaults are the query-less request."""

    limit: int = DEFAULT_LIMIT
    member: str | None = None
    tag: str | None = None
    before: StoryCursor | None = None
    q: str | None = None
    lang: str | None = None
    full: bool = False


def parse_items_query(params: Mapping[str, str], member_ids: Collection[str]) -> ItemsQuery:
    """Validate the query parameters of /api/items; unknown ones are ignored.

    Ignoring unknown parameters lets callers add cache busters ("_=1700000000").
    A control character in a known one is refused: NUL is not valid in PostgreSQL text
    (the query would fail with a 500), and no member id, tag or search holds one.
    """
    for name in ("limit", "member", "tag", "before", "q", "lang", "full"):
        if has_control_character(params.get(name, "")):
            raise ApiQueryError(name, "should contain no control characters (such as NUL)")
    limit = DEFAULT_LIMIT
    if "limit" in params:
        text = params["limit"].strip()
        if not (text.isascii() and text.isdecimal()) or not 1 <= int(text) <= MAX_LIMIT:
            raise ApiQueryError("limit", f"should be a whole number from 1 to {MAX_LIMIT}")
        limit = int(text)
    member = params.get("member") or None
    if member is not None and member not in member_ids:
        raise ApiQueryError("member", f"no member with id {member!r}")
    tag = params.get("tag") or None
    if tag is not None and not tag_slug(tag):
        raise ApiQueryError("tag", "should contain a letter or a digit")
    before = None
    if params.get("before"):
        try:
            before = decode_cursor(params["before"])
        except ValueError:
            raise ApiQueryError(
                "before", "should be the `next` value of an earlier answer"
            ) from None
    q = (params.get("q") or "").strip() or None
    if q is not None and len(q) > MAX_QUERY_LENGTH:
        raise ApiQueryError("q", f"should be at most {MAX_QUERY_LENGTH} characters")
    lang = parse_language(params["lang"]) if params.get("lang") else None
    full = params.get("full", "0")
    if full not in {"0", "1"}:
        raise ApiQueryError("full", "should be 0 or 1")
    return ItemsQuery(
        limit=limit, member=member, tag=tag, before=before, q=q, lang=lang, full=full == "1"
    )


def parse_language(value: str) -> str:
    """A `lang` parameter: a language tag such as "es" or "es-MX", else ApiQueryError."""
    if not _LANGUAGE.match(value):
        raise ApiQueryError("lang", "should be a language tag such as 'en' or 'es-MX'")
    return value


def encode_cursor(cursor: StoryCursor) -> str:
    """The API's `next` token for a cursor: opaque and URL-safe; decode_cursor reads it."""
    text = f"{cursor.published.isoformat()}|{cursor.story_id}"
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(token: str) -> StoryCursor:
    """The cursor encode_cursor made; ValueError for anything else."""
    try:
        padded = token + "=" * (-len(token) % 4)
        text = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
        published_text, story_id_text = text.split("|")
        published = datetime.fromisoformat(published_text)
        story_id = int(story_id_text)
    except (ValueError, UnicodeError) as exc:
        raise ValueError(f"not a cursor this server made: {token!r}") from exc
    if published.tzinfo is None or story_id < 0:
        raise ValueError(f"not a cursor this server made: {token!r}")
    return StoryCursor(published=published, story_id=story_id)


def items_document(
    stories: Sequence[PublishedStory], next_cursor: StoryCursor | None, *, full: bool = False
) -> bytes:
    """The API's answer: the stories, in the given order, and the cursor of the next page."""
    document = {
        "items": [story_json(story, full=full) for story in stories],
        "next": encode_cursor(next_cursor) if next_cursor is not None else None,
    }
    return _dump(document)


def error_document(error: ApiQueryError) -> bytes:
    return _dump({"error": error.message, "parameter": error.parameter})


def story_json(story: PublishedStory, *, full: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": story.id,
        "url": story.url,
        "title": story.title,
        "summary": story.summary,
        "summary_text": summary_text(story.summary),
    }
    if full:
        item["content_html"] = story.content_html
    item.update(
        {
            "published": rfc3339(story.published),
            "updated": rfc3339(story.updated),
            "image": story.image,
            "language": story.language,
            "tags": list(story.tags),
            "members": [credit_json(credit) for credit in story.credits],
        }
    )
    return item


def _dump(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
