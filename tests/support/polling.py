"""Filling a test store by a real poll, as `aggregator fetch` does."""

from __future__ import annotations

import asyncio

from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.models import Config
from aggregator.store import Store


def poll_once(config: Config, store: Store) -> None:
    """Poll every source of `config` into `store` once; every poll must succeed."""

    async def poll() -> None:
        async with Fetcher() as fetcher:
            reports = await poll_all(config, store, fetcher)
        assert all(report.error is None for report in reports), reports

    asyncio.run(poll())
