"""The Store on a real SQLite file: upserts, edits, cross-posts, failures, schema checks."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.errors import StorageError
from aggregator.ingest.poll import failed_report
from aggregator.models import CacheValidators
from aggregator.models import Config
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.models import PollOutcome
from aggregator.models import SourceConfig
from aggregator.store import Store
from tests.store.queries import count_items

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HARVEST_FEED = SourceConfig(member_id="harvest", kind="feed", url="https://harvest.example/feed/")
GARMENT_FEED = SourceConfig(
    member_id="garment", kind="feed", url="https://garment.example/feed.json"
)
CONFIG = Config(
    network=NetworkConfig(
        title="Sample network",
        url="https://network.example/",
        feed_url="https://network.example/news/",
    ),
    members=(
        MemberConfig(
            id="harvest",
            name="Harvest Alliance",
            url="https://harvest.example/",
            sources=(HARVEST_FEED,),
        ),
        MemberConfig(
            id="garment",
            name="Garment Monitor",
            url="https://garment.example/",
            sources=(GARMENT_FEED,),
        ),
    ),
)
TEXT = (
    "<p>Farmworkers walked out of the fields on Tuesday after temperatures passed forty degrees "
    "for the third day in a row, calling on growers to adopt the heat standard.</p>"
)


def item(source: SourceConfig = HARVEST_FEED, **overrides: object) -> Item:
    values: dict[str, object] = {
        "member_id": source.member_id,
        "source_url": source.url,
        "key": "guid:harvest-1",
        "url": "https://harvest.example/heat",
        "title": "Heat protections must cover every farmworker",
        "content_html": TEXT,
        "summary": "Farmworkers walked out.",
        "published": NOW,
        "updated": NOW,
        "date_from_source": True,
        "tags": ("heat",),
        "content_hash": "v1",
    }
    values.update(overrides)
    return Item(**values)  # type: ignore[arg-type]


def fetched(
    source: SourceConfig = HARVEST_FEED, body: bytes = b"<rss/>", at: datetime = NOW
) -> FetchResult:
    return FetchResult(
        source=source,
        fetched_at=at,
        final_url=source.url,
        status=200,
        content=body,
        validators=CacheValidators(etag='"abc"', last_modified="Fri, 20 Nov 2026 12:00:00 GMT"),
    )


@pytest.fixture
def synced(store: Store) -> Store:
    store.sync_config(CONFIG)
    return store


def test_new_items_are_stored_and_published(synced: Store) -> None:
    report = synced.record_items(fetched(), [item()])
    assert report.outcome is PollOutcome.NEW and report.new == 1
    stories = synced.latest_stories(10)
    assert [story.title for story in stories] == ["Heat protections must cover every farmworker"]
    assert stories[0].id.startswith("urn:uuid:")
    assert [credit.member_id for credit in stories[0].credits] == ["harvest"]
    state = synced.source_state(HARVEST_FEED.url)
    assert state.validators.etag == '"abc"' and state.body_hash is not None


def test_repolled_item_is_not_duplicated(synced: Store) -> None:
    synced.record_items(fetched(), [item()])
    report = synced.record_items(fetched(body=b"<rss> </rss>"), [item()])
    assert report.outcome is PollOutcome.UNCHANGED
    assert count_items(synced) == 1


def test_edited_item_is_updated_in_place_and_keeps_its_id(synced: Store) -> None:
    synced.record_items(fetched(), [item()])
    before = synced.latest_stories(10)[0]
    edited = item(
        title="Heat protections must cover every farmworker (updated)",
        content_hash="v2",
        updated=NOW + timedelta(hours=2),
    )
    report = synced.record_items(fetched(body=b"<rss>2</rss>"), [edited])
    assert report.outcome is PollOutcome.UPDATED and report.updated == 1
    after = synced.latest_stories(10)
    assert len(after) == 1
    assert after[0].id == before.id
    assert after[0].title.endswith("(updated)")
    assert after[0].updated == NOW + timedelta(hours=2)


def test_cross_post_is_one_story_credited_to_both_members(synced: Store) -> None:
    synced.record_items(fetched(), [item()])
    cross_post = item(
        GARMENT_FEED,
        key="guid:https://garment.example/news/heat",
        url="https://garment.example/news/heat",
        title="Statement: Heat protections must cover every farmworker",
        published=NOW + timedelta(hours=5),
        updated=NOW + timedelta(hours=5),
        tags=("apparel", "Heat"),
    )
    synced.record_items(fetched(GARMENT_FEED), [cross_post])
    stories = synced.latest_stories(10)
    assert len(stories) == 1
    assert [credit.member_id for credit in stories[0].credits] == ["harvest", "garment"]
    assert stories[0].credits[1].item_url == "https://garment.example/news/heat"
    assert stories[0].tags == ("heat", "apparel")
    assert stories[0].published == NOW
    assert len(synced.latest_stories(10, member_id="garment")) == 1


def test_generic_titles_from_two_members_stay_two_stories(synced: Store) -> None:
    synced.record_items(
        fetched(),
        [
            item(
                title="Weekly update",
                url="https://harvest.example/w46",
                content_html="<p>We trained forty new worker monitors in the northern fields.</p>",
            )
        ],
    )
    synced.record_items(
        fetched(GARMENT_FEED),
        [
            item(
                GARMENT_FEED,
                key="guid:g-w46",
                title="Weekly Update",
                url="https://garment.example/w46",
                content_html="<p>Our team visited three factories to verify fire exits.</p>",
            )
        ],
    )
    assert len(synced.latest_stories(10)) == 2


def test_failed_poll_keeps_everything_published(synced: Store) -> None:
    synced.record_items(fetched(), [item()])
    failure = dataclasses.replace(
        fetched(at=NOW + timedelta(hours=1)),
        status=500,
        content=None,
        error="HTTP 500 (server error)",
    )
    synced.record_failure(failure, "HTTP 500 (server error)")
    report = failed_report(failure, "HTTP 500 (server error)")
    assert report.outcome is PollOutcome.FAILED
    assert len(synced.latest_stories(10)) == 1
    state = synced.source_state(HARVEST_FEED.url)
    assert state.consecutive_failures == 1 and state.last_error == "HTTP 500 (server error)"
    assert state.validators.etag == '"abc"'  # the next poll is still conditional
    synced.record_unchanged(dataclasses.replace(fetched(), status=304, content=None))
    assert synced.source_state(HARVEST_FEED.url).consecutive_failures == 0


def test_latest_stories_are_newest_first_and_limited(synced: Store) -> None:
    items = [
        item(
            key=f"guid:{n}",
            url=f"https://harvest.example/{n}",
            title=f"Story number {n} of the season",
            published=NOW + timedelta(days=n),
            updated=NOW + timedelta(days=n),
        )
        for n in range(5)
    ]
    synced.record_items(fetched(), items)
    titles = [story.title for story in synced.latest_stories(3)]
    assert titles == [
        "Story number 4 of the season",
        "Story number 3 of the season",
        "Story number 2 of the season",
    ]


def test_repeated_entry_in_one_feed_is_stored_once(synced: Store) -> None:
    report = synced.record_items(fetched(), [item(), item()])
    assert report.new == 1 and count_items(synced) == 1


def test_story_ids_do_not_depend_on_database_order(tmp_path: Path) -> None:
    ids = []
    for name in ("one.db", "two.db"):
        store = Store.open(f"sqlite:///{tmp_path / name}")
        store.sync_config(CONFIG)
        store.record_items(fetched(), [item()])
        ids.append(store.latest_stories(1)[0].id)
        store.close()
    assert ids[0] == ids[1]


def test_database_at_an_unknown_revision_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    Store.open(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    before = path.read_bytes()
    with pytest.raises(StorageError, match="schema revision 9999, which this version"):
        Store.open(f"sqlite:///{path}")
    assert path.read_bytes() == before


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(StorageError, match="not created by this aggregator"):
        Store.open(f"sqlite:///{path}")


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    Store.open(f"sqlite:///{tmp_path / 'aggregator.db'}").close()
    with sqlite3.connect(tmp_path / "aggregator.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_singleton_job_runs_in_one_process_at_a_time(database_url: str) -> None:
    first, second = Store.open(database_url), Store.open(database_url)
    try:
        with first.singleton("alerts") as first_may:
            with second.singleton("alerts") as second_may:
                assert first_may
                # Workers sharing PostgreSQL exclude each other; an SQLite deployment has
                # one writing process, which always may.
                assert second_may is (database_url.startswith("sqlite"))
            with second.singleton("other job") as other_may:
                assert other_may
        with second.singleton("alerts") as second_may_now:
            assert second_may_now
    finally:
        first.close()
        second.close()


def test_a_cross_post_never_lends_its_picture_to_a_story(synced: Store) -> None:
    """A member joining a story adds a credit and nothing else (issue 12): not even a picture
    the first post lacks, or any member could put its image on another's story."""
    synced.record_items(fetched(), [item()])
    cross_post = item(
        GARMENT_FEED,
        key="guid:garment-heat",
        url="https://garment.example/news/heat",
        title="Statement: Heat protections must cover every farmworker",
        image="https://garment.example/img/heat.jpg",
    )
    synced.record_items(fetched(GARMENT_FEED), [cross_post])
    [story] = synced.latest_stories(10)
    assert story.url == "https://harvest.example/heat"  # the original still speaks for it
    assert story.image is None
    assert [credit.member_id for credit in story.credits] == ["harvest", "garment"]
