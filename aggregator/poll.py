"""One poll of one source, start to end, and a round over many sources.

fetch -> (skip when 304 or byte-identical) -> parse -> normalize -> store, each stage
called with plain data. This is the only module that strings the stages together for
polling, so the CLI, the scheduler and the benchmarks all poll the same way.

A fault in one source becomes a FAILED PollReport naming the member, the address and the
cause; it never raises into the caller and never touches what other sources stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence

from aggregator.errors import ParseError
from aggregator.fetch import Fetcher
from aggregator.models import Config
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import ParsedFeed
from aggregator.models import PollReport
from aggregator.models import SourceConfig
from aggregator.normalize import normalize_feed
from aggregator.parse import parse_source
from aggregator.store import Store
from aggregator.store.database import body_digest

ReportCallback = Callable[[PollReport], None]


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


async def poll_source(
    source: SourceConfig, *, fetcher: Fetcher, store: Store, language: str | None
) -> PollReport:
    state = store.source_state(source.url)
    result = await fetcher.fetch(source, state.validators)
    if result.error is not None:
        return store.record_failure(result, result.error)
    if result.not_modified:
        return store.record_unchanged(result)
    assert result.content is not None
    if state.body_hash is not None and body_digest(result.content) == state.body_hash:
        return store.record_unchanged(result)
    try:
        # Parsing runs in a worker thread so that the event loop keeps other downloads
        # moving while a large feed is being read.
        parsed, items = await asyncio.to_thread(parse_and_normalize, result, language)
    except ParseError as exc:
        return store.record_failure(result, exc.cause)
    return store.record_items(result, items, warning=parsed.warning)


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

    async def one(source: SourceConfig) -> PollReport:
        report = await poll_source(
            source, fetcher=fetcher, store=store, language=languages.get(source.member_id)
        )
        if on_report is not None:
            on_report(report)
        return report

    return list(await asyncio.gather(*(one(source) for source in chosen)))
