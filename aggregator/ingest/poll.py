"""One poll of one source, start to end, and a round over many sources.

fetch -> (a web page where a feed was expected: discover its feed) -> (skip when 304 or
byte-identical) -> parse -> normalize -> (follow: true: enrich new items from their pages)
-> language detection -> include/exclude/max_age filters -> store, each stage called with
plain data. This is the only module that strings the stages together for
polling, so the CLI, the scheduler and the benchmarks all poll the same way.

Parse and normalize run off the event loop so that downloads go on meanwhile: in a thread,
or in a pool of processes over the machine's cores once bodies queue up for them (they are
most of a first poll's CPU); see aggregator.ingest.pool.ParsePool.

A fault in one source becomes a FAILED PollReport naming the member, the address and the
cause; it never raises into the caller and never touches what other sources stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from functools import partial
from urllib.parse import urljoin

from aggregator.identity import body_digest
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.fetch import describe_exception
from aggregator.ingest.filters import filter_items
from aggregator.ingest.follow import follow_new_items
from aggregator.ingest.language import with_detected_language
from aggregator.ingest.normalize import limit_items
from aggregator.ingest.parse import parse_source
from aggregator.ingest.parse.discover import FetchFunction
from aggregator.ingest.parse.discover import discover_if_page
from aggregator.ingest.parse.discover import is_html_page
from aggregator.ingest.pool import ParsePool
from aggregator.ingest.pool import parse_off_loop
from aggregator.models import MISSING_STATUSES
from aggregator.models import Config
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import ScheduleHints
from aggregator.models import SourceConfig
from aggregator.models import SourceState
from aggregator.models import StoredItems
from aggregator.store import Store

ReportCallback = Callable[[PollReport], None]

logger = logging.getLogger(__name__)
PARSE_QUEUE = 8  # fetched bodies waiting for parsing, beyond the fetches in flight


@dataclass(frozen=True)
class PollSettings:
    """What the configuration says about storing one source's items, beside the source."""

    language: str | None  # the fallback for items whose language is not detected
    retention: timedelta | None  # older items are not stored (they would be pruned)


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
    result: FetchResult, language: str | None, pool: ParsePool | None
) -> tuple[ParsedFeed | None, list[Item], str | None]:
    if pool is not None:
        return await pool(result, language)
    return await asyncio.to_thread(parse_off_loop, result, language)


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
) -> PollReport:
    """`retention` (network.retention): older items are not stored (they would be pruned).

    Never raises (but for cancellation): any exception on the way, in discovery, parsing,
    normalizing, `follow:` or storing, is this source's failure, logged with its traceback
    (it is a bug of ours or an input nobody foresaw) and recorded for /status, so that one
    member's hostile feed never stops the round for everyone else.
    """
    try:
        return await _poll_source(
            source,
            fetcher=fetcher,
            store=store,
            language=language,
            pool=pool,
            retention=retention,
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
        # Off the event loop: the store's calls are synchronous SQL.
        await asyncio.to_thread(store.record_failure, failed, cause)
    except Exception:
        # The database itself may be what failed: the report still names the cause.
        logger.exception(
            "member %s, source %s: could not record the failure", source.member_id, source.url
        )
    return failed_report(failed, cause)


async def _poll_source(
    source: SourceConfig,
    *,
    fetcher: Fetcher,
    store: Store,
    language: str | None,
    pool: ParsePool | None = None,
    retention: timedelta | None = None,
) -> PollReport:
    state = store.source_state(source.url)
    if state.gone_at is not None:
        return gone_report(source, state.gone_at)
    discovered = state.discovered_url if source.kind != "page" else None
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
            store.remember_discovered_feed(source.url, None)
            return await _poll_source(
                source,
                fetcher=fetcher,
                store=store,
                language=language,
                pool=pool,
                retention=retention,
            )
    else:
        result = await fetcher.fetch(source, state.validators)
    discovery = await discover_if_page(
        result, found_by(fetcher, source), read_feed=parse_source, resolver=fetcher.resolver
    )
    if discovery is not None:
        chosen = discovery.chosen
        if chosen is None or chosen.result is None:
            store.record_failure(result, discovery.problem)
            return with_hints(failed_report(result, discovery.problem), result)
        discovered = chosen.candidate.url
        store.remember_discovered_feed(source.url, discovered)
        result = replace(chosen.result, source=source)
        state = store.source_state(source.url)
    report = await _poll_result(
        source,
        result,
        state,
        fetcher=fetcher,
        store=store,
        language=language,
        pool=pool,
        retention=retention,
    )
    return replace(report, discovered=discovered) if discovered is not None else report


async def _poll_result(
    source: SourceConfig,
    result: FetchResult,
    state: SourceState,
    *,
    fetcher: Fetcher,
    store: Store,
    language: str | None,
    pool: ParsePool | None = None,
    pushed: bool = False,
    retention: timedelta | None = None,
) -> PollReport:
    if result.error is not None:
        store.record_failure(result, result.error)
        return with_hints(failed_report(result, result.error), result)
    if result.not_modified:
        store.record_unchanged(result)
        return with_hints(unchanged_report(result), result)
    assert result.content is not None
    if state.body_hash is not None and body_digest(result.content) == state.body_hash:
        store.record_unchanged(result)
        return with_hints(unchanged_report(result), result)
    done, items, cause = await _parse(result, language, pool)
    if done is None:
        store.record_failure(result, cause or "unreadable")
        return with_hints(failed_report(result, cause or "unreadable"), result)
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
    if not pushed:
        # A body a WebSub hub delivered (pushed) is not asked about its hub: a hub that
        # sends entries without the feed's links must not end its own subscription.
        store.remember_websub_hub(source.url, *advertised_hub(parsed))
    if source.follow:
        # For a follow source the pool sends back exactly the entries behind `items`.
        items = await follow_new_items(
            parsed,
            list(zip(parsed.entries, items, strict=True)),
            source,
            store.known_item_keys(source.url),
            found_by(fetcher, source),
            result.fetched_at,
            language,
            resolver=fetcher.resolver,
        )
    if retention is not None:
        # Stored, they would go at the next prune and come back at the next poll.
        items = [item for item in items if item.published >= result.fetched_at - retention]
    chosen = filter_items(with_detected_language(items), source.filters, result.fetched_at)
    # A pushed body may be a replay of an old signed delivery: it never makes an item older.
    stored = store.record_items(result, chosen.kept, warning=parsed.warning, only_newer=pushed)
    report = items_report(result, stored, warning=parsed.warning, filtered=len(chosen.dropped))
    return with_hints(report, result, parsed)


def found_by(fetcher: Fetcher, source: SourceConfig) -> FetchFunction:
    """Fetches addresses found from `source` (discovered feeds, story pages) as found: only
    the host staff wrote for the source may be private (Fetcher.fetch's found_from)."""
    return partial(fetcher.fetch, found_from=source.url)


def advertised_hub(parsed: ParsedFeed) -> tuple[str | None, str | None]:
    """The WebSub (hub, topic) a feed advertises, absolute; (None, None) when it has no hub.

    The topic is the feed's rel="self" address, else the address it was read from.
    """
    if parsed.hub_url is None:
        return None, None
    return urljoin(parsed.url, parsed.hub_url), urljoin(parsed.url, parsed.self_url or "")


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
) -> PollReport:
    """Store a body that arrived without a poll (a WebSub delivery of the feed at `url`)
    exactly as a poll that downloaded it would: parse, normalize, filter, store.

    The source's validators are kept, so its next (fallback) poll is still conditional.
    """
    state = store.source_state(source.url)
    result = FetchResult(
        source=source,
        fetched_at=now,
        final_url=url,
        status=200,
        content=body,
        content_type=content_type,
        validators=state.validators,
    )
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
            )
    return await _poll_result(
        source,
        result,
        state,
        fetcher=fetcher,
        store=store,
        language=language,
        retention=retention,
        pushed=True,
    )


async def poll_all(
    config: Config,
    store: Store,
    fetcher: Fetcher,
    *,
    sources: Iterable[SourceConfig] | None = None,
    on_report: ReportCallback | None = None,
) -> list[PollReport]:
    """Poll the given sources (default: all) concurrently; reports in configuration order."""
    chosen: Sequence[SourceConfig] = (
        list(sources) if sources is not None else selected_sources(config)
    )

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
        )
        if on_report is not None:
            on_report(report)
        return report

    try:
        return list(await asyncio.gather(*(one(source) for source in chosen)))
    finally:
        pool.close()
