"""The service's poll round (a tick's claim, the polls, their writes and the schedule saves)
runs no SQL on the event loop's thread, which `run --role all` also serves HTTP from."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from sqlalchemy import event

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.models import PollOutcome
from aggregator.store import Store
from tests.service.test_scheduler import PLAIN_RSS
from tests.service.test_scheduler import FakeClock
from tests.service.test_scheduler import config_text
from tests.service.test_scheduler import make_scheduler
from tests.support.server import FixtureServer


def test_a_tick_claims_polls_and_saves_off_the_event_loop(
    server: FixtureServer, store: Store
) -> None:
    server.routes["/one.xml"] = Route(body=PLAIN_RSS)
    server.routes["/two.xml"] = Route(body=PLAIN_RSS.replace(b"plain-one", b"plain-two"))
    config = parse_config(config_text(server.base_url, ["/one.xml", "/two.xml", "/gone.xml"]))
    threads: list[int] = []

    def record(*_args: Any) -> None:
        threads.append(threading.get_ident())

    async def scenario() -> tuple[int, list[PollOutcome]]:
        async with Fetcher() as fetcher:
            scheduler = make_scheduler(config, store, fetcher, FakeClock())
            event.listen(store.engine, "before_cursor_execute", record)
            try:
                started = await scheduler.start_due_polls_off_loop()
                reports = await asyncio.gather(*started)
            finally:
                await scheduler.stop()
                event.remove(store.engine, "before_cursor_execute", record)
            return threading.get_ident(), [r.outcome for r in reports if r is not None]

    loop_thread, outcomes = asyncio.run(scenario())
    assert sorted(outcome.value for outcome in outcomes) == ["failed", "new", "new"]
    assert threads  # the round did write
    assert loop_thread not in threads
    records = store.schedule_records()
    assert all(record.next_poll_at is not None for record in records.values())
