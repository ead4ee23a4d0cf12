"""A poll round never runs SQL on the event loop's thread (issue 14).

`run --role all` serves HTTP from the loop the polls run on: a synchronous SQL call there
stalls every request behind it. Every statement the store sends during poll_all is
recorded with the thread it ran on; none may be the loop's.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from sqlalchemy import event

from aggregator.config import parse_config
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.models import PollOutcome
from aggregator.store import Store
from tests.site_fixtures import serve_sites


def test_no_store_call_runs_on_the_event_loop_during_poll_all(store: Store) -> None:
    statements: list[tuple[int, str]] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append((threading.get_ident(), statement))

    with serve_sites() as server:
        config = parse_config(f"""\
network:
  title: WSR Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news/
members:
  - id: gfc
    name: Greenway Farmworker Coalition
    url: {server.url("/wordpress/")}
    sources:
      - feed: {server.url("/wordpress/feed/")}
      - url: {server.url("/wordpress/")}
  - id: jl
    name: JSON-LD Workers
    url: {server.url("/jsonld/")}
    sources:
      - feed: {server.url("/jsonld/atom.xml")}
      - feed: {server.url("/missing.xml")}
""")
        store.sync_config(config)
        event.listen(store.engine, "before_cursor_execute", record)

        async def run() -> tuple[int, list[list[PollOutcome]]]:
            loop_thread = threading.get_ident()
            rounds = []
            async with Fetcher() as fetcher:
                for _ in range(2):  # a first poll, then an unchanged one
                    reports = await poll_all(config, store, fetcher)
                    rounds.append([report.outcome for report in reports])
            return loop_thread, rounds

        loop_thread, rounds = asyncio.run(run())
        event.remove(store.engine, "before_cursor_execute", record)
    assert rounds[0][0] is PollOutcome.NEW and rounds[0][3] is PollOutcome.FAILED
    assert rounds[1][0] is PollOutcome.UNCHANGED
    assert any("INSERT INTO items" in statement for _, statement in statements)
    on_loop = [statement for thread, statement in statements if thread == loop_thread]
    assert on_loop == []
