"""Any exception while polling one source is that source's failure, never the round's.

Not only fetching: discovery, parsing, normalizing, `follow:` and storing can meet an input
nobody foresaw (or a bug of ours). The faults are injected into a real store and a real
parse stage, since no known input raises there today; the test is that whatever raises is
recorded for /status with its cause and logged, while every other member's items are stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.demo.server import Route
from aggregator.ingest import poll as poll_module
from aggregator.ingest import pool as pool_module
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import StoredItems
from aggregator.store import Store
from tests.hostile.server import config_for
from tests.hostile.server import poll
from tests.hostile.test_url_faults import GOOD_FEED
from tests.hostile.test_url_faults import XML
from tests.support.server import FixtureServer

HOSTILE_FEED = GOOD_FEED.replace(b"good.example.org", b"hostile.example.org").replace(
    b"Farmworkers ratify the heat standard", b"Hostile headline"
)


class StoreFailingFor(Store):
    """A real store whose record_items breaks for one source, as a bug of ours would."""

    failing_url = ""

    def record_items(
        self, result: FetchResult, items: Sequence[Item], **options: Any
    ) -> StoredItems:
        if result.source.url == self.failing_url:
            raise RuntimeError("boom while storing")
        return super().record_items(result, items, **options)


def _serve_two(server: FixtureServer) -> tuple[str, str]:
    server.routes["/hostile.xml"] = Route(body=HOSTILE_FEED, headers=XML)
    server.routes["/good.xml"] = Route(body=GOOD_FEED, headers=XML)
    return server.url("/hostile.xml"), server.url("/good.xml")


def _check_round(reports: list[PollReport], store: Store, hostile: str, cause: str) -> None:
    by_url = {report.source.url: report for report in reports}
    assert by_url[hostile].outcome is PollOutcome.FAILED
    error = by_url[hostile].error
    assert error is not None and cause in error
    good = [report for url, report in by_url.items() if url != hostile]
    assert [report.outcome for report in good] == [PollOutcome.NEW]
    titles = [story.title for story in store.latest_stories(10)]
    assert titles == ["Farmworkers ratify the heat standard"]
    health = {row.url: row for row in store.source_health()}
    last_error = health[hostile].last_error
    assert last_error is not None and cause in last_error


def test_a_fault_while_storing_one_source_is_its_failure(
    server: FixtureServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hostile, good = _serve_two(server)
    store = StoreFailingFor.open(f"sqlite:///{tmp_path / 'a.db'}")
    store.failing_url = hostile
    try:
        with caplog.at_level(logging.ERROR, logger="aggregator.ingest.poll"):
            reports = poll(config_for({"hostile": [hostile], "good": [good]}), store)
        _check_round(reports, store, hostile, "boom while storing")
        assert any(
            "member hostile" in record.getMessage() and hostile in record.getMessage()
            for record in caplog.records
        )
    finally:
        store.close()


def test_a_fault_while_parsing_one_source_is_its_failure(
    server: FixtureServer,
    sqlite_store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hostile, good = _serve_two(server)
    real_parse = pool_module.parse_off_loop

    def parse(result: FetchResult, language: str | None, *rest: Any) -> Any:
        if result.source.url == hostile:
            raise RecursionError("maximum recursion depth exceeded")
        return real_parse(result, language, *rest)

    # In a round the parse pool calls it (in a thread: a small round never starts processes).
    monkeypatch.setattr(pool_module, "parse_off_loop", parse)
    monkeypatch.setattr(poll_module, "parse_off_loop", parse)
    reports = poll(config_for({"hostile": [hostile], "good": [good]}), sqlite_store)
    _check_round(reports, sqlite_store, hostile, "maximum recursion depth")


def test_a_fault_while_reading_a_preview_is_its_error_not_a_crash(
    server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator.ingest import preview as preview_module
    from aggregator.ingest.fetch import Fetcher

    hostile, _ = _serve_two(server)

    def normalize(*args: object, **kwargs: object) -> list[Item]:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(preview_module, "normalize_feed", normalize)

    async def run() -> preview_module.Preview:
        async with Fetcher() as fetcher:
            return await preview_module.preview_source(
                hostile, fetch=fetcher.fetch, now=datetime.now(UTC)
            )

    shown = asyncio.run(run())
    assert shown.error is not None and "maximum recursion depth" in shown.error
    assert not shown.items
