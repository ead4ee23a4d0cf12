"""Several writers on one database (SQLite and PostgreSQL): source claims with leases,
item and story upserts, and two members' halves of a cross-post stored at the same instant."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from aggregator.models import CacheValidators
from aggregator.models import Config
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.models import PollOutcome
from aggregator.models import SourceConfig
from aggregator.store import Store
from aggregator.store import schema
from aggregator.store.items import _insert_story
from tests.store.queries import count_items
from tests.store.queries import leases

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
TEXT = (
    "<p>Members of both unions voted on Sunday to join the national day of action against "
    "the new labour code, with walkouts planned in every region and a rally at parliament.</p>"
)


def network_config(members: int, sources_each: int = 1) -> Config:
    return Config(
        network=NetworkConfig(
            title="Sample network",
            url="https://network.example/",
            feed_url="https://network.example/news/",
        ),
        members=tuple(
            MemberConfig(
                id=f"m{index}",
                name=f"Member {index}",
                url=f"https://m{index}.example/",
                sources=tuple(
                    SourceConfig(
                        member_id=f"m{index}",
                        kind="feed",
                        url=f"https://m{index}.example/feed{number}.xml",
                    )
                    for number in range(sources_each)
                ),
            )
            for index in range(members)
        ),
    )


def fetched(source: SourceConfig, body: bytes) -> FetchResult:
    return FetchResult(
        source=source,
        fetched_at=NOW,
        final_url=source.url,
        status=200,
        content=body,
        validators=CacheValidators(),
    )


def cross_post(source: SourceConfig, pair: int) -> Item:
    """One member's half of cross-post `pair`: same title and text, its own link."""
    return Item(
        member_id=source.member_id,
        source_url=source.url,
        key=f"guid:joint-{pair}",
        url=f"{source.url.rsplit('/', 1)[0]}/joint-{pair}",
        title=f"Unions join national day of action number {pair}",
        # Each pair its own text: 25 different stories with one identical long text would
        # be one story by the body rule (dedupe "same text").
        content_html=f"<p>Both unions join day of action {pair}.</p>",
        summary="Both unions join the day of action.",
        published=NOW - timedelta(hours=pair),
        updated=NOW - timedelta(hours=pair),
        date_from_source=True,
        content_hash=f"joint-{pair}",
    )


@pytest.fixture
def stores(database_url: str) -> Iterator[Callable[[], Store]]:
    """Opens more Store objects (engines, connection pools) on the one database: as many
    writers as separate processes would be."""
    opened: list[Store] = []

    def open_store() -> Store:
        store = Store.open(database_url)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def test_concurrent_claimers_claim_each_due_source_exactly_once(
    stores: Callable[[], Store],
) -> None:
    config = network_config(members=20, sources_each=3)
    stores().sync_config(config)
    claimers = [stores() for _ in range(4)]
    start = threading.Barrier(len(claimers))

    def claim_all(index: int) -> list[str]:
        store = claimers[index]
        start.wait()
        mine: list[str] = []
        while claimed := store.claim_due_sources(f"worker-{index}", NOW, lease=LEASE, limit=4):
            mine.extend(record.url for record in claimed)
        return mine

    with ThreadPoolExecutor(len(claimers)) as pool:
        claims = list(pool.map(claim_all, range(len(claimers))))
    every = [url for claimed in claims for url in claimed]
    expected = {source.url for member in config.members for source in member.sources}
    assert sorted(every) == sorted(expected)  # all of them, none twice
    held = leases(claimers[0])
    assert set(held) == expected
    assert {expires for _, expires in held.values()} == {NOW + LEASE}


def test_a_claim_lasts_until_its_lease_ends_or_its_outcome_is_saved(
    stores: Callable[[], Store],
) -> None:
    config = network_config(members=2)
    store = stores()
    store.sync_config(config)
    first, second = (member.sources[0].url for member in config.members)
    store.set_next_poll(second, NOW + timedelta(hours=1))  # not due

    claimed = store.claim_due_sources("dead", NOW, lease=LEASE, limit=10)
    assert [record.url for record in claimed] == [first]
    later = NOW + timedelta(minutes=4)
    assert store.claim_due_sources("other", later, lease=LEASE, limit=10) == []
    # The dead worker's lease has lapsed: another worker takes the source over.
    taken = store.claim_due_sources("other", NOW + LEASE, lease=LEASE, limit=10)
    assert [record.url for record in taken] == [first]
    # The dead worker's late release does not end the new owner's lease.
    store.release_lease(first, "dead")
    assert leases(store)[first] == ("other", NOW + 2 * LEASE)
    store.save_schedule(
        first,
        next_poll_at=NOW + timedelta(hours=1),
        interval_seconds=None,
        unchanged_polls=0,
        declared_interval_seconds=None,
        lease_owner="other",
    )
    assert leases(store) == {}
    # A release (a poll abandoned at shutdown) makes a due source claimable at once.
    store.set_next_poll(first, None)
    assert store.claim_due_sources("a", NOW, lease=LEASE, limit=10)[0].url == first
    store.release_lease(first, "a")
    assert store.claim_due_sources("b", NOW, lease=LEASE, limit=10)[0].url == first


def test_claims_take_the_longest_due_first_and_skip_what_the_worker_must_not_poll(
    stores: Callable[[], Store],
) -> None:
    config = network_config(members=4)
    store = stores()
    store.sync_config(config)
    urls = [member.sources[0].url for member in config.members]
    store.set_next_poll(urls[0], NOW - timedelta(minutes=1))
    store.set_next_poll(urls[1], NOW - timedelta(hours=2))
    store.set_next_poll(urls[2], NOW - timedelta(minutes=30))
    # urls[3] was never scheduled: due first of all.

    claimed = store.claim_due_sources(
        "w", NOW, lease=LEASE, limit=2, eligible=lambda url: url != urls[3]
    )
    assert [record.url for record in claimed] == [urls[1], urls[2]]
    assert claimed[0].next_poll_at == NOW - timedelta(hours=2)
    rest = store.claim_due_sources("w", NOW, lease=LEASE, limit=10)
    assert [record.url for record in rest] == [urls[3], urls[0]]


def test_two_members_halves_of_cross_posts_stored_at_the_same_instant_make_one_story(
    stores: Callable[[], Store],
) -> None:
    config = network_config(members=2)
    stores().sync_config(config)
    sources = [member.sources[0] for member in config.members]
    writers = [stores(), stores()]
    pairs = 25
    together = threading.Barrier(2)

    def post_all(index: int) -> list[PollOutcome]:
        source = sources[index]
        outcomes = []
        for pair in range(pairs):
            together.wait()  # both halves of this pair are written at the same moment
            report = writers[index].record_items(
                fetched(source, f"<rss>{pair}</rss>".encode()), [cross_post(source, pair)]
            )
            outcomes.append(report.outcome)
        return outcomes

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(post_all, range(2)))
    assert outcomes == [[PollOutcome.NEW] * pairs] * 2
    store = writers[0]
    assert count_items(store) == 2 * pairs
    assert store.count_stories() == pairs
    for story in store.latest_stories(pairs):
        assert sorted(credit.member_id for credit in story.credits) == ["m0", "m1"]


def test_an_item_another_writer_stored_meanwhile_is_kept_once(
    stores: Callable[[], Store],
) -> None:
    config = network_config(members=1)
    store = stores()
    store.sync_config(config)
    source = config.members[0].sources[0]
    item = cross_post(source, 1)
    store.record_items(fetched(source, b"<rss>1</rss>"), [item])
    with store.engine.begin() as connection:
        source_id = connection.scalar(select(schema.sources.c.id))
        assert source_id is not None
        # As if `known` had been read before the other writer's commit: the insert meets
        # the unique constraint and gives way instead of failing the whole poll.
        outcome = store._upsert_item(
            connection, source_id, item, NOW, frozenset({item.key}), known={}, stale={}
        )
    assert outcome is PollOutcome.UNCHANGED
    assert count_items(store) == 1
    with store.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(schema.stories)) == 1


def test_a_story_uid_stored_already_is_reused_not_inserted_twice(
    stores: Callable[[], Store],
) -> None:
    config = network_config(members=1)
    store = stores()
    store.sync_config(config)
    item = cross_post(config.members[0].sources[0], 3)
    with store.engine.begin() as connection:
        first = _insert_story(connection, item)
        second = _insert_story(connection, item)
    assert first[1] is True
    assert second == (first[0], False)
