"""One poll of one source, start to end, and a round over many sources.

fetch -> (a web page where a feed was expected: discover its feed) -> (skip when 304 or
byte-identical) -> parse -> normalize (but the entries of stored items, unchanged since:
normalize.normalize_poll) -> (follow: true: enrich new items from their pages)
-> language detection -> include/exclude/max_age filters -> store, each stage called with
plain data. This is the only module that strings the stages together for
polling, so the CLI, the scheduler and the benchmarks all poll the same way.

Parse and normalize run off the event loop so that downloads go on meanwhile: in a thread,
or, in a round of many sources, in a pool of processes over the cores the main process
leaves (parsing is most of a first poll's CPU); see aggregator.ingest.pool.ParsePool.

The parse stack (bs4 and its builders, feedparser, nh3, soupsieve, lxml, html5lib, and
normalize, site_debris and the page readers that need them) is imported by the code that
needs it when it first runs, not with this module: the process that polls must not load it
(11 MB and 0.1 s of every `aggregator fetch`) before it parses itself, and in a round big
enough for parse processes, or one where every source answers 304, it never does. Feed
discovery (a web page answered) and `follow:` (story pages) load what they need here.

A fault in one source becomes a FAILED PollReport naming the member, the address and the
cause; it never raises into the caller and never touches what other sources stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING

from aggregator.ingest.decide import PollSettings
from aggregator.ingest.decide import advertised_hub
from aggregator.ingest.decide import failure_intent
from aggregator.ingest.decide import intent_before_parse
from aggregator.ingest.decide import items_intent
from aggregator.ingest.decide import remembered_feed
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.fetch import describe_exception
from aggregator.ingest.limits import limit_items
from aggregator.ingest.parse import parse_source
from aggregator.ingest.parse.sniff import is_html_page
from aggregator.ingest.pool import ParsePool
from aggregator.ingest.pool import parse_off_loop
from aggregator.models import MISSING_STATUSES
from aggregator.models import AppliedIntent
from aggregator.models import Config
from aggregator.models import FetchLimits
from aggregator.models import FetchResult
from aggregator.models import IntentKind
from aggregator.models import Item
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import ScheduleHints
from aggregator.models import SourceConfig
from aggregator.models import SourceIntent
from aggregator.models import SourceState
from aggregator.models import StoredEntry
from aggregator.models import StoredItems
from aggregator.store import Store
from aggregator.store import StoreWriter

if TYPE_CHECKING:
    from aggregator.ingest.parse.discover import Discovery
    from aggregator.ingest.parse.discover import FetchFunction

__all__ = ["PollSettings", "advertised_hub", "ingest_body", "poll_all", "poll_source"]

ReportCallback = Callable[[PollReport], None]

logger = logging.getLogger(__name__)
PARSE_QUEUE = 8  # fetched bodies waiting for parsing, beyond the fetches in flight


def poll_settings(config: Config, source: SourceConfig) -> PollSettings:
    """The one place a poll's language and retention are worked out (CLI, scheduler, WebSub).

    Only a member's own declared language is a safe fallback: the network's default ("en")
    would mislabel the Spanish posts of a bilingual member.
    """
    language = next(
        (member.language for member in config.members if member.id == source.member_id), None
    )
    return PollSettings(language=language, retention=config.network.retention)


def selected_sources(config: Config, member_id: str | None = None) -> list[SourceConfig]:
    return [
        source
        for member in config.members
        if member_id is None or member.id == member_id
        for source in member.sources
    ]


async def _parse(
    result: FetchResult,
    language: str | None,
    pool: ParsePool | None,
    known: frozenset[str],
    limits: FetchLimits,
) -> tuple[ParsedFeed | None, list[Item], str | None]:
    if pool is not None:
        return await pool(result, language, known, limits)
    return await asyncio.to_thread(parse_off_loop, result, language, known, limits)


def with_hints(
    report: PollReport, result: FetchResult, parsed: ParsedFeed | None = None
) -> PollReport:
    """The report carrying what the fetch and parse learned for the scheduler."""
    hints = ScheduleHints(
        status=result.status,
        cache_max_age=result.cache_max_age,
        retry_after=result.retry_after,
        ttl_minutes=parsed.ttl_minutes if parsed is not None else None,
        update_period=parsed.update_period if parsed is not None else None,
        conditional=bool(result.validators.etag or result.validators.last_modified),
    )
    return replace(report, hints=hints)


def failed_report(result: FetchResult, cause: str) -> PollReport:
    """A poll that failed: the cause in plain words, and where a permanent redirect points."""
    return PollReport(
        source=result.source,
        outcome=PollOutcome.FAILED,
        error=cause,
        moved_to=result.permanent_redirect,
    )


def unchanged_report(result: FetchResult) -> PollReport:
    """A 304, or a body byte-identical to the last one."""
    return PollReport(
        source=result.source, outcome=PollOutcome.UNCHANGED, moved_to=result.permanent_redirect
    )


def items_report(
    result: FetchResult, stored: StoredItems, *, warning: str | None, filtered: int = 0
) -> PollReport:
    """A poll whose items were stored: what was new or updated, and what filters left out."""
    return PollReport(
        source=result.source,
        outcome=stored.outcome,
        new=stored.new,
        updated=stored.updated,
        moved_to=result.permanent_redirect,
        warning=warning,
        filtered=filtered,
    )


def gone_report(source: SourceConfig, gone_at: datetime) -> PollReport:
    """A source whose site said 410 Gone is not polled again until feeds.yaml changes it."""
    return PollReport(
        source=source,
        outcome=PollOutcome.FAILED,
        error=(
            f"gone: on {gone_at:%Y-%m-%d} the site said this address was removed for good"
            " (HTTP 410); it is no longer checked. Put the member's new address in feeds.yaml,"
            " or remove this source"
        ),
    )


async def poll_source(
    source: SourceConfig,
    *,
    fetcher: Fetcher,
    store: Store,
    language: str | None,
    pool: ParsePool | None = None,
    retention: timedelta | None = None,
    state: SourceState | None = None,
    writer: StoreWriter | None = None,
) -> PollReport:
    """`retention` (network.retention): older items are not stored (they would be pruned).
    `state`: the source's, when the round read it (else it is read here, off the loop);
    `writer`: the round's or the service's StoreWriter (else the intent is applied alone,
    in a thread).

    Never raises (but for cancellation): any exception on the way, in discovery, parsing,
    normalizing, `follow:` or storing, is this source's failure, logged with its traceback
    (it is a bug of ours or an input nobody foresaw) and recorded for /status, so that one
    member's hostile feed never stops the round for everyone else.
    """
    settings = PollSettings(language=language, retention=retention)
    try:
        if state is None:
            state = await asyncio.to_thread(store.source_state, source.url)
        return await _poll_source(
            source, state, settings, fetcher=fetcher, store=store, writer=writer, pool=pool
        )
    except Exception as exc:
        cause = describe_exception(exc, fetcher.limits)
        logger.exception(
            "member %s, source %s: polling failed: %s", source.member_id, source.url, cause
        )
    failed = FetchResult(
        source=source, fetched_at=fetcher.now(), final_url=source.url, status=None, error=cause
    )
    try:
        applied = await _write(store, writer, failure_intent(failed, cause))
        if applied.error is not None:
            logger.error(
                "member %s, source %s: could not record the failure: %s",
                source.member_id,
                source.url,
                applied.error,
            )
    except Exception:
        # The database itself may be what failed: the report still names the cause.
        logger.exception(
            "member %s, source %s: could not record the failure", source.member_id, source.url
        )
    return failed_report(failed, cause)


async def _write(store: Store, writer: StoreWriter | None, intent: SourceIntent) -> AppliedIntent:
    """Apply `intent` through the writer, or alone in a thread: never on the event loop."""
    if writer is not None:
        return await writer.apply(intent)
    [applied] = await asyncio.to_thread(store.apply_intents, [intent])
    return applied


async def _poll_source(
    source: SourceConfig,
    state: SourceState,
    settings: PollSettings,
    *,
    fetcher: Fetcher,
    store: Store,
    writer: StoreWriter | None,
    pool: ParsePool | None = None,
) -> PollReport:
    if state.gone_at is not None:
        return gone_report(source, state.gone_at)
    # What autodiscovery changes is written with the poll's outcome, in the same savepoint.
    remembered: list[str | None] = []
    discovered = state.discovered_url if source.kind != "page" else None
    result: FetchResult | None = None
    if discovered is not None:
        # The feed autodiscovery chose earlier is polled in place of the site's address;
        # results stay recorded under the configured address.
        # Fetched as found, not as written: only the configured host may be private, and
        # the remembered address is checked again each time (its DNS may have changed).
        result = await fetcher.fetch(
            replace(source, url=discovered), state.validators, found_from=source.url
        )
        result = replace(result, source=source)
        if result.status in MISSING_STATUSES or is_html_page(result):
            # The site moved its feed: forget it and look again from the configured address.
            remembered.append(None)
            state = remembered_feed(state, None)
            discovered = None
            result = None
    if result is None:
        result = await fetcher.fetch(source, state.validators)
    discovery = await _discover_if_page(result, fetcher, source)
    if discovery is not None:
        chosen = discovery.chosen
        if chosen is None or chosen.result is None:
            intent = failure_intent(result, discovery.problem, discovered=remembered)
            await _write(store, writer, intent)
            return with_hints(failed_report(result, discovery.problem), result)
        discovered = chosen.candidate.url
        remembered.append(discovered)
        state = remembered_feed(state, discovered)
        result = replace(chosen.result, source=source)
    report = await _poll_result(
        source,
        result,
        state,
        settings,
        fetcher=fetcher,
        store=store,
        writer=writer,
        pool=pool,
        remembered=remembered,
    )
    return replace(report, discovered=discovered) if discovered is not None else report


async def _poll_result(
    source: SourceConfig,
    result: FetchResult,
    state: SourceState,
    settings: PollSettings,
    *,
    fetcher: Fetcher,
    store: Store,
    writer: StoreWriter | None,
    pool: ParsePool | None = None,
    pushed: bool = False,
    remembered: Sequence[str | None] = (),
) -> PollReport:
    skipped = intent_before_parse(state, result, discovered=remembered)
    if skipped is not None:
        applied = await _write(store, writer, skipped)
        if skipped.kind is IntentKind.FAILURE:
            return with_hints(failed_report(result, skipped.cause or "unknown cause"), result)
        if applied.error is not None:
            return with_hints(failed_report(result, applied.error), result)
        return with_hints(unchanged_report(result), result)
    # The entries of the source's stored items, unchanged since, are not normalized again
    # (normalize.normalize_poll): their digests are read for this changed source only, off
    # the loop. A source without a body hash has stored no poll's items to compare with.
    stored: dict[str, StoredEntry] = {}
    if state.body_hash is not None:
        stored = await asyncio.to_thread(store.stored_entries, source.url)
    digests = frozenset(entry.entry_digest for entry in stored.values() if entry.entry_digest)
    done, items, cause = await _parse(result, settings.language, pool, digests, fetcher.limits)
    if done is None:
        cause = cause or "unreadable"
        await _write(store, writer, failure_intent(result, cause, discovered=remembered))
        return with_hints(failed_report(result, cause), result)
    # network.limits: what one source may store per poll. For a follow source the pool sent
    # back exactly the entries behind `items`, and they are cut with them.
    entries: list[ParsedEntry | None] = (
        list(done.entries) if source.follow else [None] * len(items)
    )
    pairs, notes = limit_items(list(zip(entries, items, strict=True)), fetcher.limits)
    items = [item for _, item in pairs]
    kept_entries = tuple(entry for entry, _ in pairs if entry is not None)
    warning = "; ".join(filter(None, [done.warning, *notes])) or None
    parsed = replace(done, warning=warning, entries=kept_entries)
    if source.follow:
        # Deferred (see the module's docstring): reading story pages needs the parse stack.
        from aggregator.ingest.follow import follow_new_items

        # Only a follow source needs its stored keys (to read only new items' pages).
        known = await asyncio.to_thread(store.known_item_keys, source.url)
        # For a follow source the pool sends back exactly the entries behind `items`.
        items = await follow_new_items(
            parsed,
            list(zip(parsed.entries, items, strict=True)),
            source,
            known,
            found_by(fetcher, source),
            result.fetched_at,
            settings.language,
            resolver=fetcher.resolver,
        )
    decision = items_intent(
        result, parsed, items, settings, pushed=pushed, discovered=remembered, stored=stored
    )
    applied = await _write(store, writer, decision.intent)
    if applied.error is not None:
        return with_hints(failed_report(result, applied.error), result, parsed)
    report = items_report(
        result, applied.stored, warning=parsed.warning, filtered=decision.filtered
    )
    return with_hints(report, result, parsed)


async def _discover_if_page(
    result: FetchResult, fetcher: Fetcher, source: SourceConfig
) -> Discovery | None:
    """discover.discover_if_page (which decides), its module loaded only for a web page."""
    if not is_html_page(result):
        return None
    # Deferred (see the module's docstring): discovery reads the page with BeautifulSoup.
    from aggregator.ingest.parse.discover import discover_if_page

    return await discover_if_page(
        result, found_by(fetcher, source), read_feed=parse_source, resolver=fetcher.resolver
    )


def found_by(fetcher: Fetcher, source: SourceConfig) -> FetchFunction:
    """Fetches addresses found from `source` (discovered feeds, story pages) as found: only
    the host staff wrote for the source may be private (Fetcher.fetch's found_from)."""
    return partial(fetcher.fetch, found_from=source.url)


async def ingest_body(
    source: SourceConfig,
    body: bytes,
    content_type: str | None,
    *,
    url: str,
    store: Store,
    now: datetime,
    language: str | None,
    fetcher: Fetcher | None = None,
    retention: timedelta | None = None,
    writer: StoreWriter | None = None,
) -> PollReport:
    """Store a body that arrived without a poll (a WebSub delivery of the feed at `url`)
    exactly as a poll that downloaded it would: parse, normalize, filter, store (through
    `writer`, the service's, when given).

    The source's validators are kept, so its next (fallback) poll is still conditional.
    """
    if fetcher is None:
        # Only `follow: true` sources fetch anything while storing; the service passes its own.
        async with Fetcher() as own:
            return await ingest_body(
                source,
                body,
                content_type,
                url=url,
                store=store,
                now=now,
                language=language,
                fetcher=own,
                retention=retention,
                writer=writer,
            )
    state = await asyncio.to_thread(store.source_state, source.url)
    result = FetchResult(
        source=source,
        fetched_at=now,
        final_url=url,
        status=200,
        content=body,
        content_type=content_type,
        validators=state.validators,
    )
    return await _poll_result(
        source,
        result,
        state,
        PollSettings(language=language, retention=retention),
        fetcher=fetcher,
        store=store,
        writer=writer,
        pushed=True,
    )


async def poll_all(
    config: Config,
    store: Store,
    fetcher: Fetcher,
    *,
    sources: Iterable[SourceConfig] | None = None,
    on_report: ReportCallback | None = None,
    writer: StoreWriter | None = None,
) -> list[PollReport]:
    """Poll the given sources (default: all) concurrently; reports in configuration order.

    The round reads every source's state in one query, and its writes go through one
    StoreWriter (`writer`, or one of its own, closed at the end): no SQL runs on the
    event loop.
    """
    chosen: Sequence[SourceConfig] = (
        list(sources) if sources is not None else selected_sources(config)
    )
    states = await asyncio.to_thread(store.source_states, [source.url for source in chosen])
    own_writer = writer is None
    round_writer = writer if writer is not None else StoreWriter(store)

    pool = ParsePool(len(chosen))
    # Sources fetched but not yet parsed wait with their bodies in memory: when parsing is
    # slower than fetching (a fast network), keep that queue short, not the whole round.
    in_flight = asyncio.Semaphore(fetcher.limits.concurrency + PARSE_QUEUE)

    async def one(source: SourceConfig) -> PollReport:
        async with in_flight:
            return await poll_one(source)

    async def poll_one(source: SourceConfig) -> PollReport:
        settings = poll_settings(config, source)
        report = await poll_source(
            source,
            fetcher=fetcher,
            store=store,
            language=settings.language,
            pool=pool,
            retention=settings.retention,
            # A source missing from the database: poll_source reads it and reports why.
            state=states.get(source.url),
            writer=round_writer,
        )
        if on_report is not None:
            on_report(report)
        return report

    try:
        return list(await asyncio.gather(*(one(source) for source in chosen)))
    finally:
        pool.close()
        if own_writer:
            await round_writer.aclose()
