"""The single writer (aggregator.store.writer): batches in one transaction, a savepoint per
source, a failed batch retried source by source, every caller's future resolved; on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Connection
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from aggregator.models import AppliedIntent
from aggregator.models import FetchResult
from aggregator.models import IntentKind
from aggregator.models import Item
from aggregator.models import SourceConfig
from aggregator.models import SourceIntent
from aggregator.store import Store
from aggregator.store import StoreWriter
from tests.store.queries import count_items
from tests.store.test_concurrency import cross_post
from tests.store.test_concurrency import fetched
from tests.store.test_concurrency import network_config


def items_intent(source: SourceConfig, pair: int, **changes: Any) -> SourceIntent:
    return SourceIntent(
        result=fetched(source, f"<rss>{pair}</rss>".encode()),
        kind=IntentKind.ITEMS,
        items=(cross_post(source, pair),),
        **changes,
    )


def unchanged_intent(source: SourceConfig) -> SourceIntent:
    result = fetched(source, b"")
    return SourceIntent(
        result=FetchResult(
            source=source, fetched_at=result.fetched_at, final_url=source.url, status=304
        ),
        kind=IntentKind.UNCHANGED,
    )


def commits(store: Store) -> list[int]:
    """A list that grows by one at each commit on the store's engine."""
    counted: list[int] = []
    event.listen(store.engine, "commit", lambda _conn: counted.append(1))
    return counted


class Faulty(Store):
    """A store whose item writes for one source fail after writing (a disk error, a bug)."""

    failing: str = ""

    def store_items_on(
        self,
        connection: Connection,
        result: FetchResult,
        unique: Sequence[Item],
        warning: str | None,
        only_newer: bool,
    ) -> tuple[int, int]:
        stored = super().store_items_on(connection, result, unique, warning, only_newer)
        if result.source.url == self.failing:
            raise RuntimeError("the disk said no")
        return stored


class DeadlockError(Exception):
    sqlstate = "40P01"


class Unlucky(Store):
    """A store whose first `losses` transactions are deadlock victims (PostgreSQL rolls
    them back whole)."""

    losses = 1
    batches: list[int]

    def _apply_batch(self, group: Sequence[tuple[int, SourceIntent]]) -> list[AppliedIntent]:
        self.batches.append(len(group))
        if self.losses > 0:
            self.losses -= 1
            raise OperationalError("SELECT pg_advisory_xact_lock", {}, DeadlockError("deadlock"))
        return super()._apply_batch(group)


@pytest.fixture
def opened(database_url: str) -> Iterator[Callable[[type[Store]], Store]]:
    stores: list[Store] = []

    def open_store(kind: type[Store] = Store) -> Store:
        store = kind.open(database_url)
        stores.append(store)
        return store

    yield open_store
    for store in stores:
        store.close()


def test_a_batch_is_one_transaction_and_each_intent_gets_its_result(store: Store) -> None:
    config = network_config(members=6)
    store.sync_config(config)
    sources = [member.sources[0] for member in config.members]
    store.apply_intents([items_intent(source, 90) for source in sources[3:]])
    counted = commits(store)
    intents = [items_intent(source, index) for index, source in enumerate(sources[:3])]
    intents += [unchanged_intent(source) for source in sources[3:]]
    applied = store.apply_intents(intents)
    assert len(counted) == 1
    assert [result.stored.new for result in applied] == [1, 1, 1, 0, 0, 0]
    assert all(result.error is None for result in applied)
    assert all(store.source_state(source.url).last_success_at for source in sources)


def test_the_writer_resolves_every_future_and_batches_what_waits(store: Store) -> None:
    config = network_config(members=20)
    store.sync_config(config)
    sources = [member.sources[0] for member in config.members]
    counted = commits(store)

    async def run() -> list[AppliedIntent]:
        writer = StoreWriter(store)
        try:
            return await asyncio.gather(
                *(writer.apply(items_intent(source, index)) for index, source in enumerate(sources))
            )
        finally:
            await writer.aclose()

    applied = asyncio.run(run())
    assert [result.stored.new for result in applied] == [1] * len(sources)
    assert count_items(store) == len(sources)
    assert len(counted) < len(sources)  # batched: fewer commits than sources


def test_one_failing_source_is_rolled_back_alone_and_recorded_as_its_failure(
    opened: Callable[[type[Store]], Store],
) -> None:
    store = opened(Faulty)
    config = network_config(members=3)
    store.sync_config(config)
    good, bad, other = (member.sources[0] for member in config.members)
    assert isinstance(store, Faulty)
    store.failing = bad.url
    applied = store.apply_intents(
        [
            items_intent(good, 1),
            items_intent(bad, 2, discovered=("https://m1.example/found.xml",)),
            items_intent(other, 3),
        ]
    )
    assert [result.stored.new for result in applied] == [1, 0, 1]
    assert applied[0].error is None and applied[2].error is None
    assert applied[1].error is not None and "the disk said no" in applied[1].error
    assert count_items(store) == 2  # the bad source's item was rolled back
    state = store.source_state(bad.url)
    assert state.consecutive_failures == 1 and state.discovered_url is None
    assert state.last_error is not None and "the disk said no" in state.last_error
    assert store.source_state(good.url).consecutive_failures == 0


def test_a_batch_that_fails_whole_is_stored_source_by_source(
    opened: Callable[[type[Store]], Store],
) -> None:
    store = opened(Unlucky)
    assert isinstance(store, Unlucky)
    store.batches = []
    config = network_config(members=4)
    store.sync_config(config)
    sources = [member.sources[0] for member in config.members]
    applied = store.apply_intents([items_intent(source, n) for n, source in enumerate(sources)])
    assert store.batches == [4, 1, 1, 1, 1]  # the batch, then each source alone
    assert [result.stored.new for result in applied] == [1] * 4
    assert count_items(store) == 4


def test_a_deadlock_victim_alone_is_run_again(opened: Callable[[type[Store]], Store]) -> None:
    store = opened(Unlucky)
    assert isinstance(store, Unlucky)
    store.batches, store.losses = [], 2
    config = network_config(members=1)
    store.sync_config(config)
    [applied] = store.apply_intents([items_intent(config.members[0].sources[0], 1)])
    assert store.batches == [1, 1, 1]  # the batch, then alone: rolled back, then stored
    assert applied.error is None and applied.stored.new == 1


def test_two_writers_batching_cross_posts_in_opposite_orders_neither_deadlock_nor_split(
    opened: Callable[[type[Store]], Store],
) -> None:
    config = network_config(members=4)
    opened(Store).sync_config(config)
    sources = [member.sources[0] for member in config.members]
    writers = [opened(Store), opened(Store)]
    pairs = 10
    together = threading.Barrier(2)

    def write(index: int) -> list[AppliedIntent]:
        # Writer 0 stores members 0 and 1, writer 1 members 2 and 3 (reversed): every pair
        # is a cross-post of all four members, each writer's batch holding two halves.
        mine = sources[:2] if index == 0 else sources[2:][::-1]
        applied = []
        for pair in range(pairs):
            together.wait()
            applied += writers[index].apply_intents([items_intent(s, pair) for s in mine])
        return applied

    with ThreadPoolExecutor(2) as pool:
        results = [result for done in pool.map(write, range(2)) for result in done]
    assert all(result.error is None for result in results)
    assert count_items(writers[0]) == 4 * pairs
    assert writers[0].count_stories() == pairs
