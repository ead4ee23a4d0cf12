"""`follow: true` page sources: read each new story's own page once for what the listing lacks.

A news listing often shows a title and a link but no date, image or summary; the story's
own page usually has them in Open Graph or schema.org JSON-LD. For each item the store does
not know yet (at most FOLLOW_LIMIT per poll, so a first poll of a long listing stays polite),
the story page is fetched once, read by parse.heuristics.page_metadata, merged into the
listing's entry and normalized again (only that entry: the others keep the Items the parse
pool made), so every rule of normalize (sanitizing, date
plausibility, absolute URLs) applies to what came from the story page too.

Items already stored are not returned: they were followed when new, and re-reading them from
the listing alone would replace the followed date and image with the listing's poorer data.

It must never fetch a story page on a private address from a public listing (SSRF), never
store anything, and never raise for a remote fault (the listing's item is kept as it was).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from aggregator.ingest.normalize import normalize_feed
from aggregator.ingest.parse.discover import FetchFunction
from aggregator.ingest.parse.discover import link_refusal
from aggregator.ingest.parse.heuristics import page_metadata
from aggregator.ingest.parse.heuristics import with_metadata
from aggregator.ingest.safety import Resolver
from aggregator.ingest.safety import system_resolver
from aggregator.models import CacheValidators
from aggregator.models import Item
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig

FOLLOW_LIMIT = 10  # story pages fetched per poll of one source


async def follow_new_items(
    parsed: ParsedFeed,
    entry_items: Sequence[tuple[ParsedEntry, Item]],
    source: SourceConfig,
    known_keys: set[str],
    fetch: FetchFunction,
    now: datetime,
    language: str | None,
    *,
    resolver: Resolver = system_resolver,
    limit: int = FOLLOW_LIMIT,
) -> list[Item]:
    """The listing's new items, each enriched from its own page where that could be read.

    `entry_items` are the listing's usable entries beside their normalized Items
    (normalize.normalize_entries, as the parse pool already made them): only an entry that
    was enriched is normalized again.
    """
    result: list[Item] = []
    seen: set[str] = set()
    budget = limit
    for entry, item in entry_items:
        if item.key in known_keys or item.key in seen:
            continue
        seen.add(item.key)
        if item.url is None or budget <= 0 or await link_refusal(parsed.url, item.url, resolver):
            result.append(item)
            continue
        budget -= 1
        page = await fetch(
            SourceConfig(member_id=source.member_id, kind="page", url=item.url), CacheValidators()
        )
        if page.error is not None or page.content is None:
            result.append(item)
            continue
        metadata = page_metadata(page.content, page.final_url, page.content_type)
        enriched = normalize_feed(
            replace(parsed, entries=(with_metadata(entry, metadata),)), source, now, language
        )
        result.append(enriched[0] if enriched else item)
    return result
