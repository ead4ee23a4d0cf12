"""Cross-post candidates and staff's corrections read from memory in write transactions
(live_candidates.LiveCandidates, corrections.CorrectionsTable): no candidate query, the same
answers as the database, and current with this process's writes (inserts, edits, savepoints
rolled back), other processes' commits and deletes; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy import Connection
from sqlalchemy import event

from aggregator.config import load_config
from aggregator.dedupe import Match
from aggregator.dedupe import TextFeatures
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.models import Item
from aggregator.models import StoryCorrection
from aggregator.store import Store
from aggregator.store.corrections import CorrectionsTable
from aggregator.store.corrections import _variants as variants
from aggregator.store.corrections import corrections_for
from aggregator.store.corrections import read_corrections
from aggregator.store.live_candidates import live_candidates
from aggregator.store.stories import candidate_ids
from bench.crosspost import load_set
from bench.crosspost import write_sites
from tests.store.test_concurrency import stores  # noqa: F401 (a fixture)
from tests.store.test_database import CONFIG
from tests.store.test_database import GARMENT_FEED
from tests.store.test_database import NOW
from tests.store.test_database import fetched
from tests.store.test_database import item
from tests.store.test_story_corrections import copy as garment_copy
from tests.support.server import FixtureServer


def candidate_queries(store: Store) -> list[str]:
    """A list that grows by each candidate query (stories.candidate_ids' UNION of range
    reads, or corrections_for's self-join) run on the store's engine."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if ("story_keys" in statement and "UNION ALL" in statement) or (
            "story_corrections" in statement and "JOIN" in statement
        ):
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    return seen


class SqlOnly(Store):
    """The store as before: every match asks the database."""

    def _find_story(
        self,
        connection: Connection,
        item: Item,
        features: TextFeatures | None = None,
        *,
        sql_only: bool = False,
    ) -> Match | None:
        return super()._find_story(connection, item, features, sql_only=True)


def stories_of(store: Store) -> set[frozenset[tuple[str, str | None]]]:
    return {
        frozenset((credit.member_id, credit.item_url) for credit in story.credits)
        for story in store.latest_stories(1000)
    }


def first_poll(store: Store, config_path: Path) -> None:
    """Every source polled through poll_all, one source per round in feeds.yaml's order
    (so that which half of a cross-post is stored first is the same in every run)."""
    config = load_config(config_path)
    store.sync_config(config)

    async def run() -> None:
        async with Fetcher() as fetcher:
            for member in config.members:
                for source in member.sources:
                    await poll_all(config, store, fetcher, sources=[source])

    asyncio.run(run())


def test_a_first_poll_runs_no_candidate_query_and_finds_the_same_stories(
    tmp_path: Path,
) -> None:
    sites = tmp_path / "sites"
    sites.mkdir()
    with FixtureServer(sites) as server:
        config_path = write_sites(load_set("tuning"), sites, server.base_url)
        live = Store.open(f"sqlite:///{tmp_path / 'live.db'}")
        by_sql = SqlOnly.open(f"sqlite:///{tmp_path / 'sql.db'}")
        try:
            queries, sql_queries = candidate_queries(live), candidate_queries(by_sql)
            first_poll(live, config_path)
            first_poll(by_sql, config_path)
            assert queries == []
            assert len(sql_queries) > 100  # the same poll by SQL: a query per new item
            found = stories_of(live)
            assert found == stories_of(by_sql)
            assert any(len(story) > 1 for story in found)  # cross-posts were merged
        finally:
            live.close()
            by_sql.close()


def unrelated() -> Item:
    return item(
        key="guid:harvest-other",
        url="https://harvest.example/other",
        title="Dairy coalition elects a new board",
        content_html="<p>The coalition met on Sunday.</p>",
        content_hash="other",
    )


def credited(store: Store) -> list[list[str]]:
    return sorted(
        sorted(credit.member_id for credit in story.credits)
        for story in store.latest_stories(10)
    )


def lookups_agree(store: Store, probe: Item) -> list[int]:
    """The candidates of `probe` from memory, checked against the database's."""
    live = live_candidates(store.engine)
    with store.engine.begin() as connection:
        remembered = live.lookup(connection, probe)
        assert remembered == candidate_ids(connection, probe)
    return remembered


@pytest.fixture
def two(stores: Callable[[], Store]) -> Iterator[tuple[Store, Store]]:  # noqa: F811
    """Two stores on one database, as two worker processes would have."""
    first, second = stores(), stores()
    first.sync_config(CONFIG)
    yield first, second


def test_an_item_another_store_committed_is_a_candidate(two: tuple[Store, Store]) -> None:
    mine, other = two
    mine.record_items(fetched(), [unrelated()])  # mine's index is read (its first match)
    other.record_items(fetched(), [item()])
    queries = candidate_queries(mine)
    mine.record_items(fetched(GARMENT_FEED, at=NOW + timedelta(days=1)), [garment_copy()])
    assert queries == []
    assert credited(mine) == [["garment", "harvest"], ["harvest"]]


def test_an_edited_item_is_a_candidate_under_its_new_title_only(store: Store) -> None:
    store.sync_config(CONFIG)
    store.record_items(fetched(), [unrelated()])
    store.record_items(fetched(), [item(title="Growers sign the Kessler accord", content_hash="1")])
    [edited] = lookups_agree(store, garment_copy(title="Growers sign the Kessler accord"))
    store.record_items(fetched(), [item(title="Immokalee pickers win back wages")])
    assert lookups_agree(store, garment_copy(title="Growers sign the Kessler accord")) == []
    assert lookups_agree(store, garment_copy(title="Immokalee pickers win back wages")) == [
        edited
    ]


def test_a_savepoint_rolled_back_leaves_no_candidate(store: Store) -> None:
    store.sync_config(CONFIG)
    store.record_items(fetched(), [unrelated()])
    with store.engine.begin() as connection:
        savepoint = connection.begin_nested()
        store.record_items(fetched(), [item()], connection=connection)
        savepoint.rollback()
        live = live_candidates(store.engine)
        assert live.lookup(connection, garment_copy()) == []
        assert candidate_ids(connection, garment_copy()) == []
    store.record_items(fetched(GARMENT_FEED, at=NOW + timedelta(days=1)), [garment_copy()])
    assert credited(store) == [["garment"], ["harvest"]]


def test_an_item_deleted_by_another_store_is_never_a_candidate(
    two: tuple[Store, Store],
) -> None:
    mine, other = two
    newer = replace(unrelated(), published=NOW + timedelta(hours=2))
    mine.record_items(fetched(), [item(), newer])
    other.prune(NOW + timedelta(hours=1), NOW)  # retention, in another process
    mine.record_items(fetched(GARMENT_FEED, at=NOW + timedelta(days=1)), [garment_copy()])
    assert credited(mine) == [["garment"], ["harvest"]]
    later = garment_copy(key="guid:later", url="https://garment.example/later")
    assert lookups_agree(mine, later) == []


def test_items_this_store_prunes_leave_the_index(store: Store) -> None:
    store.sync_config(CONFIG)
    newer = replace(unrelated(), published=NOW + timedelta(hours=2))
    store.record_items(fetched(), [item(), newer])
    assert lookups_agree(store, garment_copy()) != []
    store.prune(NOW + timedelta(hours=1), NOW)
    assert lookups_agree(store, garment_copy()) == []


URLS = ("https://a.example/x", "https://a.example/x/", "https://b.example/y", "https://c.example/")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    groups=st.lists(
        st.tuples(
            st.sampled_from(("merge", "keep_apart")),
            st.lists(st.sampled_from(URLS), min_size=2, max_size=3, unique=True),
            st.one_of(st.none(), st.sampled_from(("same campaign", "different walkouts"))),
        ),
        max_size=5,
    ),
    url=st.one_of(st.none(), st.sampled_from((*URLS, "https://d.example/z"))),
)
def test_corrections_read_once_answer_as_the_query(
    store: Store, groups: list[tuple[str, list[str], str | None]], url: str | None
) -> None:
    store.sync_corrections(
        StoryCorrection(kind, tuple(urls), reason) for kind, urls, reason in groups
    )
    with store.engine.connect() as connection:
        expected = corrections_for(connection, url)
        found = read_corrections(connection).for_url(url)
    assert found.apart == expected.apart
    assert sorted(found.merge) == sorted(expected.merge)
    assert found.merge_reason == expected.merge_reason
    # The pending-item check of store_items_on asks the same table for an item's partners.
    named = expected.apart | set(expected.merge)
    partners = read_corrections_of(store).partners([url])
    assert partners.get(url or "", frozenset()) == frozenset(variants(named) if named else ())


def read_corrections_of(store: Store) -> CorrectionsTable:
    with store.engine.connect() as connection:
        return read_corrections(connection)
