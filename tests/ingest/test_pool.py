"""ingest/pool.py: parse_off_loop (parse -> normalize off the event loop) and ParsePool."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest

from aggregator.ingest import pool
from aggregator.ingest.normalize import normalize_feed
from aggregator.ingest.parse import parse_source
from aggregator.ingest.pool import parse_off_loop
from aggregator.models import FetchResult
from aggregator.models import SourceConfig
from tests import paths

FIXTURES = paths.FIXTURES
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URL = "https://riverbend-workers.example.org/feed/"


def fetched(name: str, *, follow: bool = False, content: bytes | None = None) -> FetchResult:
    source = SourceConfig(member_id="riverbend", kind="feed", url=URL, follow=follow)
    return FetchResult(
        source=source,
        fetched_at=NOW,
        final_url=URL,
        status=200,
        content=content if content is not None else (FIXTURES / name).read_bytes(),
        content_type="application/rss+xml; charset=utf-8",
    )


def test_items_are_those_of_parse_then_normalize() -> None:
    result = fetched("wordpress_content_encoded.xml")
    expected = normalize_feed(parse_source(result), result.source, NOW, "en")

    _, items, cause = parse_off_loop(result, "en")

    assert cause is None
    assert items == expected
    assert len(items) > 0


def test_raw_entries_stay_in_the_worker_unless_follow_needs_them() -> None:
    parsed, _, _ = parse_off_loop(fetched("wordpress_content_encoded.xml"), None)
    followed, _, _ = parse_off_loop(fetched("wordpress_content_encoded.xml", follow=True), None)

    assert parsed is not None and parsed.entries == ()
    assert parsed.format == "rss20"
    assert followed is not None and len(followed.entries) > 0


def test_an_unreadable_body_comes_back_as_its_cause() -> None:
    parsed, items, cause = parse_off_loop(fetched("", content=b"   "), None)

    assert parsed is None
    assert items == []
    assert cause is not None and "empty" in cause


async def parse_all(parser: pool.ParsePool, results: list[FetchResult]) -> list[Any]:
    try:
        return list(await asyncio.gather(*(parser(result, None) for result in results)))
    finally:
        parser.close()


def test_worker_processes_give_the_same_items_as_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results = [
        fetched("wordpress_content_encoded.xml"),
        fetched("rss10_iso8859_1.xml"),
        fetched("", content=b"<html><body>not a feed</body></html>"),
    ]
    in_threads = asyncio.run(parse_all(pool.ParsePool(1), results))
    monkeypatch.setattr(pool, "PARSE_POOL_MIN_SOURCES", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    pools: list[ProcessPoolExecutor] = []

    class RecordedPool(ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            pools.append(self)

    monkeypatch.setattr(pool, "ProcessPoolExecutor", RecordedPool)
    pooled = pool.ParsePool(len(results))

    in_processes = asyncio.run(parse_all(pooled, results))

    assert len(pools) == 1
    assert pooled._pool_usable  # no fallback to threads happened
    assert [items for _, items, _ in in_processes] == [items for _, items, _ in in_threads]
    assert [cause for _, _, cause in in_processes] == [cause for _, _, cause in in_threads]
    assert in_processes[2][2] is not None


class BrokenPool:
    """Stands in for a ProcessPoolExecutor whose workers died."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.shut_down = False

    def submit(self, *args: object, **kwargs: object) -> None:
        raise BrokenProcessPool("a worker died")

    def shutdown(self, *args: object, **kwargs: object) -> None:
        self.shut_down = True


def test_a_broken_pool_falls_back_to_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "PARSE_POOL_MIN_SOURCES", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(pool, "ProcessPoolExecutor", BrokenPool)
    result = fetched("wordpress_content_encoded.xml")

    [(_, items, cause)] = asyncio.run(parse_all(pool.ParsePool(1), [result]))

    assert cause is None
    assert items == normalize_feed(parse_source(result), result.source, NOW, None)


def test_small_rounds_never_start_worker_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "ProcessPoolExecutor", BrokenPool)
    started: list[object] = []
    monkeypatch.setattr(BrokenPool, "__init__", lambda self, *a, **k: started.append(self))
    results = [replace(fetched("wordpress_content_encoded.xml"))] * 3

    asyncio.run(parse_all(pool.ParsePool(pool.PARSE_POOL_MIN_SOURCES - 1), results))

    assert started == []


def test_a_big_round_starts_its_processes_with_its_first_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A re-poll of many sources in which a few feeds changed parses them on the core the
    # main process leaves, not in a thread sharing its GIL with fetching and the writer.
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    counts: list[int] = []

    def processes_of(count: int) -> BrokenPool:
        counts.append(count)
        return BrokenPool()

    monkeypatch.setattr(pool, "parse_processes", processes_of)
    parse = pool.ParsePool(pool.PARSE_POOL_MIN_SOURCES)
    assert counts == []  # a round whose sources all answer 304 starts nothing

    asyncio.run(parse_all(parse, [fetched("wordpress_content_encoded.xml")]))

    assert counts == [1]


def test_one_core_parses_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setattr(pool, "parse_processes", lambda count: pytest.fail("started a pool"))
    result = fetched("wordpress_content_encoded.xml")

    [(_, items, _)] = asyncio.run(parse_all(pool.ParsePool(1000), [result]))

    assert items == normalize_feed(parse_source(result), result.source, NOW, None)


@pytest.mark.parametrize(
    ("cores", "processes"), [(2, 1), (3, 2), (4, 3), (5, 4), (16, pool.PARSE_POOL_MAX_PROCESSES)]
)
def test_the_pool_leaves_one_core_to_the_main_process(
    monkeypatch: pytest.MonkeyPatch, cores: int, processes: int
) -> None:
    # The main process fetches and its writer matches every new item: a parse process per
    # core would wait for it, and cost its memory for the whole poll.
    monkeypatch.setattr(pool, "PARSE_POOL_MIN_SOURCES", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    counts: list[int] = []

    def processes_of(count: int) -> BrokenPool:
        counts.append(count)
        return BrokenPool()

    monkeypatch.setattr(pool, "parse_processes", processes_of)

    asyncio.run(parse_all(pool.ParsePool(1), [fetched("wordpress_content_encoded.xml")]))

    assert counts == [processes]
