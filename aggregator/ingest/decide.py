"""What a poll will write, decided in pure code: SourceState + what was fetched and parsed
-> SourceIntent (aggregator.models), which the store's single writer then applies.

The shape of lemon24/reader's update Decider: it reads nothing and writes nothing, it only
processes data. poll.py does the fetching, parsing and `follow:` page reads around it and
hands the intent to the writer (aggregator.store.writer); the state it decides from was
read once for the whole round (Store.source_states).

This module must never touch the database, the network, files or the clock: everything
it needs (the state, the fetch result, the parsed items, the settings) is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urljoin

from aggregator.identity import body_digest
from aggregator.ingest.filters import filter_items
from aggregator.ingest.language import with_detected_language
from aggregator.models import CacheValidators
from aggregator.models import FetchResult
from aggregator.models import IntentKind
from aggregator.models import Item
from aggregator.models import ParsedFeed
from aggregator.models import SourceIntent
from aggregator.models import SourceState
from aggregator.models import StoredEntry


@dataclass(frozen=True)
class PollSettings:
    """What the configuration says about storing one source's items, beside the source."""

    language: str | None  # the fallback for items whose language is not detected
    retention: timedelta | None  # older items are not stored (they would be pruned)


@dataclass(frozen=True)
class ItemsDecision:
    """The intent of a poll whose items were read, and how many the filters left out."""

    intent: SourceIntent
    filtered: int


def remembered_feed(state: SourceState, discovered_url: str | None) -> SourceState:
    """The state as Store.remember_discovered_feed leaves it (None: the feed forgotten):
    a change of address clears the validators and body hash, which were the old one's."""
    if state.discovered_url == discovered_url:
        return state
    return replace(
        state, discovered_url=discovered_url, validators=CacheValidators(), body_hash=None
    )


def failure_intent(
    result: FetchResult, cause: str, *, discovered: Sequence[str | None] = ()
) -> SourceIntent:
    """A failed poll: only the source's health changes; its stored items stay published."""
    return SourceIntent(
        result=result, kind=IntentKind.FAILURE, cause=cause, discovered=tuple(discovered)
    )


def intent_before_parse(
    state: SourceState, result: FetchResult, *, discovered: Sequence[str | None] = ()
) -> SourceIntent | None:
    """The intent when the body need not be parsed (a fault, a 304, or the very bytes
    stored last time); None when it must be parsed."""
    if result.error is not None:
        return failure_intent(result, result.error, discovered=discovered)
    if result.not_modified:
        return SourceIntent(result=result, kind=IntentKind.UNCHANGED, discovered=tuple(discovered))
    assert result.content is not None
    if state.body_hash is not None and body_digest(result.content) == state.body_hash:
        return SourceIntent(result=result, kind=IntentKind.UNCHANGED, discovered=tuple(discovered))
    return None


def items_intent(
    result: FetchResult,
    parsed: ParsedFeed,
    items: Sequence[Item],
    settings: PollSettings,
    *,
    pushed: bool = False,
    discovered: Sequence[str | None] = (),
    stored: Mapping[str, StoredEntry] | None = None,
) -> ItemsDecision:
    """The intent of a poll whose items were read (and, with `follow:`, enriched): what
    retention and the member's filters keep, in the items' order.

    `pushed`: the body came from a WebSub hub. It is not asked about its hub (a hub that
    sends entries without the feed's links must not end its own subscription) and, as it
    may be a replay of an old signed delivery, it never makes an item older.
    `stored`: the source's stored items by key (Store.stored_entries), when read: a kept
    item stored as it is but under another entry digest gets this poll's (unchanged_digests).
    """
    kept = list(items)
    if settings.retention is not None:
        # Stored, they would go at the next prune and come back at the next poll.
        oldest = result.fetched_at - settings.retention
        kept = [item for item in kept if item.published >= oldest]
    chosen = filter_items(with_detected_language(kept), result.source.filters, result.fetched_at)
    intent = SourceIntent(
        result=result,
        kind=IntentKind.ITEMS,
        items=tuple(chosen.kept),
        warning=parsed.warning,
        only_newer=pushed,
        discovered=tuple(discovered),
        websub_hub=None if pushed else advertised_hub(parsed),
        entry_digests=unchanged_digests(chosen.kept, stored or {}),
    )
    return ItemsDecision(intent=intent, filtered=len(chosen.dropped))


def unchanged_digests(
    kept: Sequence[Item], stored: Mapping[str, StoredEntry]
) -> tuple[tuple[str, str, str], ...]:
    """(key, content hash, entry digest) of the kept items the store holds with the same
    content hash under another entry digest (an edit of what readers do not see, a new
    configuration or NORMALIZE_VERSION, a row older than digests): the store leaves such an
    item as it is, and recording its digest lets the next poll skip its entry. Only kept
    items: one the filters left out must be normalized again to be counted as left out.
    The first item of a key, as the store keeps."""
    found = []
    seen: set[str] = set()
    for item in kept:
        if item.key in seen:
            continue
        seen.add(item.key)
        entry = stored.get(item.key)
        if (
            item.entry_digest is not None
            and entry is not None
            and entry.content_hash == item.content_hash
            and entry.entry_digest != item.entry_digest
        ):
            found.append((item.key, item.content_hash, item.entry_digest))
    return tuple(found)


def advertised_hub(parsed: ParsedFeed) -> tuple[str | None, str | None]:
    """The WebSub (hub, topic) a feed advertises, absolute; (None, None) when it has no hub.

    The topic is the feed's rel="self" address, else the address it was read from.
    """
    if parsed.hub_url is None:
        return None, None
    return urljoin(parsed.url, parsed.hub_url), urljoin(parsed.url, parsed.self_url or "")
