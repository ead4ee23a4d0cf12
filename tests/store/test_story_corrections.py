"""Staff's corrections of the cross-post rule (feeds.yaml keep_apart:/merge:), in the store.

Each runs on SQLite and PostgreSQL (the `store` fixture): corrections apply at once to the
stored stories, hold when the automatic rule sees the items again (re-polls, a rebuilt
database), and never let a member take over another's story.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from aggregator.models import Config
from aggregator.models import Item
from aggregator.models import StoryCorrection
from aggregator.store import Store
from tests.store.test_database import CONFIG
from tests.store.test_database import GARMENT_FEED
from tests.store.test_database import NOW
from tests.store.test_database import fetched
from tests.store.test_database import item

HARVEST_URL = "https://harvest.example/heat"
GARMENT_URL = "https://garment.example/news/heat-walkout"


def copy(**overrides: object) -> Item:
    """Garment Monitor's post the automatic rule merges with Harvest's: the same headline and
    text, a day later, its own link."""
    values: dict[str, object] = {
        "key": "guid:garment-heat",
        "url": GARMENT_URL,
        "summary": "Garment Monitor's summary.",
        "published": NOW + timedelta(days=1),
        "updated": NOW + timedelta(days=1),
        "content_hash": "garment-1",
    }
    values.update(overrides)
    return item(GARMENT_FEED, **values)


def other_story() -> Item:
    """Garment Monitor's post the automatic rule keeps apart: a different headline and text."""
    return copy(
        title="Garment workers win back pay at Riverside Apparel",
        content_html="<p>Riverside Apparel agreed to pay wages owed to sewing machine "
        "operators after a two-year campaign by the union local.</p>",
    )


def corrected(*corrections: StoryCorrection) -> Config:
    return replace(CONFIG, corrections=corrections)


KEEP_APART = StoryCorrection("keep_apart", (HARVEST_URL, GARMENT_URL), "different walkouts")
MERGE = StoryCorrection("merge", (HARVEST_URL, GARMENT_URL), "same heat campaign")


def poll_both(store: Store, garment: Item) -> None:
    store.record_items(fetched(), [item()])
    store.record_items(fetched(GARMENT_FEED, at=NOW + timedelta(days=1)), [garment])


def credited(store: Store) -> list[list[str]]:
    stories = store.latest_stories(10)
    return sorted([credit.member_id for credit in story.credits] for story in stories)


def test_keep_apart_splits_a_stored_story(store: Store) -> None:
    store.sync_config(CONFIG)
    poll_both(store, copy())
    assert credited(store) == [["harvest", "garment"]]
    merged_id = store.latest_stories(1)[0].id
    store.sync_config(corrected(KEEP_APART))
    assert credited(store) == [["garment"], ["harvest"]]
    by_member = {story.credits[0].member_id: story for story in store.latest_stories(10)}
    # The item that spoke for the story keeps it (its id, title, date); the other is alone.
    assert by_member["harvest"].id == merged_id
    assert by_member["harvest"].url == HARVEST_URL
    assert by_member["garment"].url == GARMENT_URL
    assert by_member["garment"].published == NOW + timedelta(days=1)
    record = store.story_record(GARMENT_URL)
    assert record is not None and record.items[0].merge_reason is None


def test_keep_apart_holds_when_the_items_are_polled_again(store: Store) -> None:
    store.sync_config(corrected(KEEP_APART))
    poll_both(store, copy())
    assert credited(store) == [["garment"], ["harvest"]]
    edited = copy(content_hash="garment-2", summary="Edited.")
    store.record_items(fetched(GARMENT_FEED, b"<rss>2</rss>", NOW + timedelta(days=2)), [edited])
    assert credited(store) == [["garment"], ["harvest"]]


def test_merge_joins_two_stored_stories_and_the_first_seen_speaks(store: Store) -> None:
    store.sync_config(CONFIG)
    # The later-seen item claims an earlier date: it joins, it does not take over.
    poll_both(store, other_story())
    assert credited(store) == [["garment"], ["harvest"]]
    harvest_id = next(story.id for story in store.latest_stories(10) if story.url == HARVEST_URL)
    store.sync_config(corrected(MERGE))
    [story] = store.latest_stories(10)
    assert story.id == harvest_id
    assert [credit.member_id for credit in story.credits] == ["harvest", "garment"]
    assert (story.url, story.published) == (HARVEST_URL, NOW)
    [own] = store.latest_stories(10, member_id="garment")
    assert own.url == GARMENT_URL  # a member's own feed shows its own post
    record = store.story_record(harvest_id)
    assert record is not None
    reason = record.items[1].merge_reason
    assert reason is not None
    assert reason["rule"] == "staff merge"
    assert reason["merge_with"] == HARVEST_URL
    assert reason["reason"] == "same heat campaign"


def test_merge_cannot_let_an_earlier_dated_item_take_the_story_over(store: Store) -> None:
    store.sync_config(CONFIG)
    backdated = other_story()
    backdated = replace(
        backdated, published=NOW - timedelta(days=3), updated=NOW - timedelta(days=3)
    )
    poll_both(store, backdated)
    store.sync_config(corrected(MERGE))
    [story] = store.latest_stories(10)
    assert (story.url, story.published) == (HARVEST_URL, NOW)


def test_merge_applies_in_a_rebuilt_database_as_items_arrive(store: Store) -> None:
    """A rebuild syncs feeds.yaml first, then polls: the poll's matching joins the items."""
    store.sync_config(corrected(MERGE))
    poll_both(store, other_story())
    [story] = store.latest_stories(10)
    assert [credit.member_id for credit in story.credits] == ["harvest", "garment"]
    record = store.story_record(GARMENT_URL)
    assert record is not None and record.items[1].merge_reason is not None
    assert record.items[1].merge_reason["rule"] == "staff merge"


def test_resyncing_the_same_corrections_changes_nothing(store: Store) -> None:
    store.sync_config(corrected(MERGE))
    poll_both(store, other_story())
    before = store.latest_stories(10)
    store.sync_config(corrected(MERGE))
    store.sync_config(corrected(MERGE))
    assert store.latest_stories(10) == before
