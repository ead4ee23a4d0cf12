"""Cross-post matching stays cheap as the database grows (issue 12, "Scale").

A new item's candidates are ranked and capped (store/stories.py candidate_ids), and each
stored item keeps its text's match features (items.match_features, revision 0006), so the
rule never converts a candidate's HTML again. Checked on SQLite and PostgreSQL through the
store; the decisions themselves are the rule's (tests/test_dedupe.py, bench.crosspost).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy import update

from aggregator.dedupe import text_features
from aggregator.dedupe import title_key
from aggregator.models import Item
from aggregator.store import Store
from aggregator.store import schema
from aggregator.store.stories import MAX_CANDIDATES
from aggregator.store.stories import _candidates_statement
from aggregator.store.stories import candidate_ids
from aggregator.text import html_to_text
from tests.store.test_database import CONFIG
from tests.store.test_database import GARMENT_FEED
from tests.store.test_database import NOW
from tests.store.test_database import TEXT
from tests.store.test_database import fetched
from tests.store.test_database import item
from tests.store.test_migrate import fill_first_schema
from tests.store.test_migrate import migrate_to

TITLE = "Acme Orchards pickers win back wages after Kessler audit"


def lookalike(number: int) -> Item:
    """Another member's different story sharing two distinctive title words, dated closer
    to the new item than the real cross-post is."""
    return item(
        GARMENT_FEED,
        key=f"guid:lookalike-{number}",
        url=f"https://garment.example/news/lookalike-{number}",
        title=f"Acme Orchards announce season number{number} plan",
        content_html=f"<p>Different news, number {number}, about a season plan.</p>",
        published=NOW - timedelta(hours=number + 1),
        updated=NOW - timedelta(hours=number + 1),
        content_hash=f"lookalike-{number}",
    )


def stored_features(store: Store, url: str) -> object:
    items = schema.items.c
    with store.engine.connect() as connection:
        return connection.scalar(select(items.match_features).where(items.url == url))


def test_candidates_are_capped_and_the_cross_post_ranks_first(store: Store) -> None:
    store.sync_config(CONFIG)
    crowd = [lookalike(number) for number in range(MAX_CANDIDATES + 15)]
    original = item(
        GARMENT_FEED,
        key="guid:original",
        url="https://garment.example/news/acme-wages",
        title=TITLE,
        published=NOW - timedelta(days=4),  # farther in time than every look-alike
        updated=NOW - timedelta(days=4),
        content_hash="original",
    )
    store.record_items(fetched(GARMENT_FEED), [*crowd, original])
    new = item(title=TITLE, key="guid:harvest-acme", url="https://harvest.example/acme")
    with store.engine.connect() as connection:
        ids = candidate_ids(connection, new)
        first_url = connection.scalar(select(schema.items.c.url).where(schema.items.c.id == ids[0]))
    assert len(ids) == MAX_CANDIDATES
    assert first_url == original.url

    store.record_items(fetched(at=NOW + timedelta(hours=1)), [new])
    [story] = [s for s in store.latest_stories(100) if s.url == original.url]
    assert [credit.member_id for credit in story.credits] == ["garment", "harvest"]


def test_a_stored_item_keeps_its_text_features_for_matching(store: Store) -> None:
    store.sync_config(CONFIG)
    first = item()
    store.record_items(fetched(), [first])
    expected = text_features(html_to_text(TEXT), title_key(first.title)).to_json()
    assert stored_features(store, first.url or "") == expected

    edited_html = TEXT.replace("heat standard", "heat and shade standard")
    edited = item(content_html=edited_html, content_hash="v2")
    store.record_items(fetched(body=b"<rss>2</rss>", at=NOW + timedelta(hours=1)), [edited])
    expected = text_features(html_to_text(edited_html), title_key(edited.title)).to_json()
    assert stored_features(store, first.url or "") == expected


def test_an_item_stored_without_features_is_matched_on_its_text(store: Store) -> None:
    # A short title: only the texts' agreement can merge these two (no "long title" rule).
    title = "Heat standard signed"
    store.sync_config(CONFIG)
    store.record_items(fetched(), [item(title=title)])
    with store.engine.begin() as connection:
        connection.execute(update(schema.items).values(match_features=None))
    copy = item(
        GARMENT_FEED,
        key="guid:garment-heat",
        url="https://garment.example/heat-standard",
        title=title,
        content_hash="copy",
    )
    store.record_items(fetched(GARMENT_FEED, at=NOW + timedelta(hours=1)), [copy])
    [story] = store.latest_stories(10)
    assert [credit.member_id for credit in story.credits] == ["harvest", "garment"]


def test_the_upgrade_fills_the_features_of_stored_items(database_url: str) -> None:
    migrate_to(database_url, "0001")
    fill_first_schema(database_url)
    migrate_to(database_url, "head")
    store = Store.open(database_url)
    try:
        expected = text_features(html_to_text("<p>Text</p>"), "heat standard signed").to_json()
        assert stored_features(store, "https://ciw.example/heat") == expected
        assert stored_features(store, "https://wrc.example/heat") == expected
    finally:
        store.close()


def test_the_upgrade_indexes_stored_items_under_their_member(database_url: str) -> None:
    migrate_to(database_url, "0001")
    fill_first_schema(database_url)  # indexed by 0004, under no member until 0007
    migrate_to(database_url, "head")
    store = Store.open(database_url)
    keys, items = schema.story_keys.c, schema.items.c
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(
                select(keys.member_id, items.member_id.label("own")).join(
                    schema.items, items.id == keys.item_id
                )
            ).all()
        assert {row.own for row in rows} == {"ciw", "wrc"}
        assert all(row.member_id == row.own for row in rows)
    finally:
        store.close()


def test_a_candidate_read_touches_the_index_alone(tmp_path: Path) -> None:
    """Each key's read is a range of the covering index: no table row per entry read (the
    random reads that made a match at 1M stored items four times slower than at 10k)."""
    store = Store.open(f"sqlite:///{tmp_path / 'aggregator.db'}")
    try:
        statement = _candidates_statement((1, 0, 0)).compile(store.engine)
        values = [0 for _ in statement.positiontup or ()]
        with store.engine.connect() as connection:
            plan = [
                row[-1]
                for row in connection.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", tuple(values)
                )
            ]
    finally:
        store.close()
    reads = [step for step in plan if step.startswith(("SEARCH", "SCAN story_keys", "SCAN items"))]
    assert len(reads) == 6  # three keys, both sides of the item's date
    assert all(
        step.startswith("SEARCH story_keys USING COVERING INDEX ix_story_keys_candidates")
        for step in reads
    ), plan
