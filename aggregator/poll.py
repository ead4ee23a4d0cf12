"""One poll of one source, start to end, and a round over many sources.

fetch -> (a web page where a feed was expected: discover its feed) -> (skip when 304 or
byte-identical) -> parse -> normalize -> (follow: true: enrich new items from their pages)
-> language detection -> include/exclude/max_age filters -> store, each stage called with
plain data. This is the only module that strings the stages together for
polling, so the CLI, the scheduler and the benchmarks all poll the same way.

A fault in one source becomes a FAILED PollReport naming the member, the address and the
cause; it never raises into the caller and never touches what other sources stored.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from concurrent.futures import Executor
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import datetime

from aggregator.errors import ParseError
from aggregator.fetch import Fetcher
from aggregator.filters import filter_items
from aggregator.follow import follow_new_items
from aggregator.language import with_detected_language
from aggregator.models import Config
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import ParsedFeed
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import ScheduleHints
from aggregator.models import SourceConfig
from aggregator.normalize import normalize_feed
from aggregator.parse import parse_source
from aggregator.parse.discover import discover_feed
from aggregator.parse.discover import is_html_page
from aggregator.store import Store
from aggregator.store.database import SourceState
from aggregator.store.database import body_digest

ReportCallback = Callable[[PollReport], None]

# Below this many sources a round parses in threads: starting worker processes costs more
# than it saves (each imports the pipeline, about half a second of CPU).
PARSE_POOL_MIN_SOURCES = 16
PARSE_POOL_MAX_WORKERS = 4


def selected_sources(config: Config, member_id: str | None = None) -> list[SourceConfig]:
    return [
        source
        for member in config.members
        if member_id is None or member.id == member_id
        for source in member.sources
    ]


def parse_and_normalize(result: FetchResult, language: str | None) -> tuple[ParsedFeed, list[Item]]:
    """The pure, CPU-bound middle of a poll."""
    parsed = parse_source(result)
    return parsed, normalize_feed(parsed, result.source, result.fetched_at, language)


def parse_in_worker(
    result: FetchResult, language: str | None
) -> tuple[ParsedFeed | None, list[Item], str | None]:
    """parse_and_normalize for a worker process: (parsed, items, None) or (None, [], cause).

    A ParseError travels back as its cause (it does not survive pickling), and the parsed
    entries only when `follow` needs them, so that a feed's raw HTML is not sent back
    beside its normalized items.
    """
    try:
        parsed, items = parse_and_normalize(result, language)
    except ParseError as exc:
        return None, [], exc.cause
    return (parsed if result.source.follow else replace(parsed, entries=())), items, None


def parse_pool(sources: int) -> ProcessPoolExecutor | None:
    """Worker processes for a round's parsing, over the machine's cores; None when a round is
    too small to gain from them or there is one core. The forkserver starts them from a clean
    process (forking a process that runs threads can deadlock) with the pipeline imported."""
    cores = os.cpu_count() or 1
    if sources < PARSE_POOL_MIN_SOURCES or cores < 2:
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return ProcessPoolExecutor(min(cores, PARSE_POOL_MAX_WORKERS), mp_context=context)


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
    workers: Executor | None = None,
) -> PollReport:
    state = store.source_state(source.url)
    if state.gone_at is not None:
        return gone_report(source, state.gone_at)
    discovered = state.discovered_url if source.kind != "page" else None
    if discovered is not None:
        # The feed autodiscovery chose earlier is polled in place of the site's address;
        # results stay recorded under the configured address.
        result = await fetcher.fetch(replace(source, url=discovered), state.validators)
        result = replace(result, source=source)
        if result.status in (404, 410) or is_html_page(result):
            # The site moved its feed: forget it and look again from the configured address.
            store.remember_discovered_feed(source.url, None)
            return await poll_source(
                source, fetcher=fetcher, store=store, language=language, workers=workers
            )
    else:
        result = await fetcher.fetch(source, state.validators)
    if result.error is None and source.kind != "page" and is_html_page(result):
        discovery = await discover_feed(
            result, fetcher.fetch, read_feed=parse_source, resolver=fetcher.resolver
        )
        chosen = discovery.chosen
        if chosen is None or chosen.result is None:
            return with_hints(store.record_failure(result, discovery.problem), result)
        discovered = chosen.candidate.url
        store.remember_discovered_feed(source.url, discovered)
        result = replace(chosen.result, source=source)
        state = store.source_state(source.url)
    report = await _poll_result(
        source, result, state, fetcher=fetcher, store=store, language=language, workers=workers
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
    workers: Executor | None = None,
) -> PollReport:
    if result.error is not None:
        return with_hints(store.record_failure(result, result.error), result)
    if result.not_modified:
        return with_hints(store.record_unchanged(result), result)
    assert result.content is not None
    if state.body_hash is not None and body_digest(result.content) == state.body_hash:
        return with_hints(store.record_unchanged(result), result)
    if workers is not None:
        # A worker process uses another core; the event loop keeps downloading meanwhile.
        loop = asyncio.get_running_loop()
        done, items, cause = await loop.run_in_executor(workers, parse_in_worker, result, language)
        if done is None:
            return with_hints(store.record_failure(result, cause or "unreadable"), result)
        parsed = done
    else:
        try:
            # Parsing runs in a worker thread so that the event loop keeps other downloads
            # moving while a large feed is being read.
            parsed, items = await asyncio.to_thread(parse_and_normalize, result, language)
        except ParseError as exc:
            return with_hints(store.record_failure(result, exc.cause), result)
    if source.follow:
        items = await follow_new_items(
            parsed,
            source,
            store.known_item_keys(source.url),
            fetcher.fetch,
            result.fetched_at,
            language,
            resolver=fetcher.resolver,
        )
    chosen = filter_items(with_detected_language(items), source.filters, result.fetched_at)
    report = store.record_items(result, chosen.kept, warning=parsed.warning)
    return with_hints(replace(report, filtered=len(chosen.dropped)), result, parsed)


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

    workers = parse_pool(len(chosen))

    async def one(source: SourceConfig) -> PollReport:
        report = await poll_source(
            source,
            fetcher=fetcher,
            store=store,
            language=languages.get(source.member_id),
            workers=workers,
        )
        if on_report is not None:
            on_report(report)
        return report

    try:
        return list(await asyncio.gather(*(one(source) for source in chosen)))
    finally:
        if workers is not None:
            workers.shutdown(wait=True, cancel_futures=True)
