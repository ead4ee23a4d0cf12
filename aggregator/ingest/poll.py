"""One poll of one source, start to end, and a round over many sources.

fetch -> (a web page where a feed was expected: discover its feed) -> (skip when 304 or
byte-identical) -> parse -> normalize -> (follow: true: enrich new items from their pages)
-> language detection -> include/exclude/max_age filters -> store, each stage called with
plain data. This is the only module that strings the stages together for
polling, so the CLI, the scheduler and the benchmarks all poll the same way.

Parse and normalize (aggregator.ingest.parse_worker) run off the event loop so that downloads go
on meanwhile: in a thread, or in worker processes over the machine's cores once bodies
queue up for them (they are most of a first poll's CPU); see Parser.

A fault in one source becomes a FAILED PollReport naming the member, the address and the
cause; it never raises into the caller and never touches what other sources stored.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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
from aggregator.ingest.parse import parse_source
from aggregator.ingest.parse.discover import FetchFunction
from aggregator.ingest.parse.discover import discover_feed
from aggregator.ingest.parse.discover import is_html_page
from aggregator.ingest.parse_worker import parse_in_worker
from aggregator.models import MISSING_STATUSES
from aggregator.models import Config
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import ParsedFeed
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import ScheduleHints
from aggregator.models import SourceConfig
from aggregator.models import SourceState
from aggregator.store import Store

ReportCallback = Callable[[PollReport], None]

logger = logging.getLogger(__name__)

# Worker processes start only once this many fetched bodies wait for parsing at the same
# time: each costs about a second of CPU to start and tens of MB, which a round with a few
# changed sources (most answer 304) would pay for nothing.
PARSE_POOL_BACKLOG = 8
PARSE_POOL_MIN_SOURCES = 100  # a smaller round has too little to parse to repay that
PARSE_POOL_MAX_WORKERS = 4
PARSE_QUEUE = 8  # fetched bodies waiting for parsing, beyond the fetches in flight


def selected_sources(config: Config, member_id: str | None = None) -> list[SourceConfig]:
    return [
        source
        for member in config.members
        if member_id is None or member.id == member_id
        for source in member.sources
    ]


class Parser:
    """Runs parse_in_worker off the event loop, so that downloads go on meanwhile.

    In a thread, until PARSE_POOL_BACKLOG bodies wait at once in a round of at least
    PARSE_POOL_MIN_SOURCES sources (parsing is what a first poll spends its CPU on): then in
    worker processes over the machine's cores. They are spawned, not forked (forking a
    process that runs threads can deadlock). Like any spawned pool they re-import the
    program's main module, so a script that polls must keep its work under
    `if __name__ == "__main__":` (the CLI does); if they cannot start or one dies, parsing
    goes back to threads. Call close() when the round is over.
    """

    def __init__(self, sources: int) -> None:
        self._cores = os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._pool_usable = self._cores > 1 and sources >= PARSE_POOL_MIN_SOURCES
        self._waiting = 0

    async def __call__(
        self, result: FetchResult, language: str | None
    ) -> tuple[ParsedFeed | None, list[Item], str | None]:
        self._waiting += 1
        try:
            if self._pool is None and self._pool_usable and self._waiting >= PARSE_POOL_BACKLOG:
                context = multiprocessing.get_context("spawn")
                workers = min(self._cores, PARSE_POOL_MAX_WORKERS)
                self._pool = ProcessPoolExecutor(workers, mp_context=context)
            if self._pool is not None and self._pool_usable:
                loop = asyncio.get_running_loop()
                try:
                    return await loop.run_in_executor(self._pool, parse_in_worker, result, language)
                except BrokenProcessPool:
                    self._pool_usable = False
            return await asyncio.to_thread(parse_in_worker, result, language)
        finally:
            self._waiting -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


async def _parse(
    result: FetchResult, language: str | None, workers: Parser | None
) -> tuple[ParsedFeed | None, list[Item], str | None]:
    if workers is not None:
        return await workers(result, language)
    return await asyncio.to_thread(parse_in_worker, result, language)


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
    workers: Parser | None = None,
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
            workers=workers,
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
        return await asyncio.to_thread(store.record_failure, failed, cause)
    except Exception:
        # The database itself may be what failed: the report still names the cause.
        logger.exception(
            "member %s, source %s: could not record the failure", source.member_id, source.url
        )
        return PollReport(source=source, outcome=PollOutcome.FAILED, error=cause)


async def _poll_source(
    source: SourceConfig,
    *,
    fetcher: Fetcher,
    store: Store,
    language: str | None,
    workers: Parser | None = None,
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
                workers=workers,
                retention=retention,
            )
    else:
        result = await fetcher.fetch(source, state.validators)
    if result.error is None and source.kind != "page" and is_html_page(result):
        discovery = await discover_feed(
            result, found_by(fetcher, source), read_feed=parse_source, resolver=fetcher.resolver
        )
        chosen = discovery.chosen
        if chosen is None or chosen.result is None:
            return with_hints(store.record_failure(result, discovery.problem), result)
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
        workers=workers,
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
    workers: Parser | None = None,
    record_hub: bool = True,
    retention: timedelta | None = None,
) -> PollReport:
    if result.error is not None:
        return with_hints(store.record_failure(result, result.error), result)
    if result.not_modified:
        return with_hints(store.record_unchanged(result), result)
    assert result.content is not None
    if state.body_hash is not None and body_digest(result.content) == state.body_hash:
        return with_hints(store.record_unchanged(result), result)
    done, items, cause = await _parse(result, language, workers)
    if done is None:
        return with_hints(store.record_failure(result, cause or "unreadable"), result)
    parsed = done
    if record_hub:
        # A body a WebSub hub delivered is not asked about its hub (record_hub=False): a hub
        # that sends entries without the feed's links must not end its own subscription.
        store.remember_websub_hub(source.url, *advertised_hub(parsed))
    if source.follow:
        items = await follow_new_items(
            parsed,
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
    report = store.record_items(result, chosen.kept, warning=parsed.warning)
    return with_hints(replace(report, filtered=len(chosen.dropped)), result, parsed)


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
        record_hub=False,
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
    # Only a member's own declared language is a safe fallback: the network's default
    # ("en") would mislabel the Spanish posts of a bilingual member.
    languages = {member.id: member.language for member in config.members}

    workers = Parser(len(chosen))
    # Sources fetched but not yet parsed wait with their bodies in memory: when parsing is
    # slower than fetching (a fast network), keep that queue short, not the whole round.
    in_flight = asyncio.Semaphore(fetcher.limits.concurrency + PARSE_QUEUE)

    async def one(source: SourceConfig) -> PollReport:
        async with in_flight:
            return await poll_one(source)

    async def poll_one(source: SourceConfig) -> PollReport:
        report = await poll_source(
            source,
            fetcher=fetcher,
            store=store,
            language=languages.get(source.member_id),
            workers=workers,
            retention=config.network.retention,
        )
        if on_report is not None:
            on_report(report)
        return report

    try:
        return list(await asyncio.gather(*(one(source) for source in chosen)))
    finally:
        workers.close()
