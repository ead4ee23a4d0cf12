"""A member joining another's story adds a credit and nothing else (issue 12, "never hijacked").

Each case was a working attack before the fix: a member republishing another member's link
with an earlier date took the story over (title, summary, link, image, date), and re-dating
its copy to 1990 dropped the story out of every feed, the victim's own member feed included.
Checked through the store's published reads, which every feed and page renders from.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from aggregator.models import Item
from aggregator.models import PublishedStory
from aggregator.store import Store
from tests.store.test_database import CONFIG
from tests.store.test_database import GARMENT_FEED
from tests.store.test_database import NOW
from tests.store.test_database import fetched
from tests.store.test_database import item

VICTIM_URL = "https://harvest.example/heat"
THE_PAST = datetime(1990, 1, 1, tzinfo=UTC)


@pytest.fixture
def synced(store: Store) -> Store:
    store.sync_config(CONFIG)
    return store


def hijacker(**overrides: object) -> Item:
    values: dict[str, object] = {
        "key": "guid:garment-copy",
        "url": VICTIM_URL,  # the victim's own link: a link match joins the story
        "title": "Garment Monitor's own headline",
        "summary": "Someone else's summary.",
        "content_html": "<p>Someone else's text.</p>",
        "image": "https://garment.example/img/theirs.jpg",
        "published": NOW - timedelta(days=2),  # claims to be earlier
        "updated": NOW - timedelta(days=2),
        "content_hash": "copy-1",
    }
    values.update(overrides)
    return item(GARMENT_FEED, **values)


def only_story(store: Store, member_id: str | None = None) -> PublishedStory:
    stories = store.latest_stories(10, member_id=member_id)
    assert len(stories) == 1, [story.title for story in stories]
    return stories[0]


def test_an_earlier_dated_copy_of_a_link_does_not_take_the_story_over(synced: Store) -> None:
    synced.record_items(fetched(), [item(image="https://harvest.example/img/heat.jpg")])
    before = only_story(synced)
    synced.record_items(fetched(GARMENT_FEED, at=NOW + timedelta(hours=1)), [hijacker()])
    after = only_story(synced)
    assert after.id == before.id
    assert (after.title, after.summary, after.url, after.image) == (
        before.title,
        before.summary,
        before.url,
        before.image,
    )
    assert (after.published, after.updated) == (before.published, before.updated)
    assert [credit.member_id for credit in after.credits] == ["harvest", "garment"]


def test_redating_a_copy_to_1990_keeps_the_story_in_every_feed(synced: Store) -> None:
    synced.record_items(fetched(), [item()])
    synced.record_items(fetched(GARMENT_FEED, at=NOW + timedelta(hours=1)), [hijacker()])
    redated = hijacker(published=THE_PAST, updated=THE_PAST, content_hash="copy-2")
    synced.record_items(fetched(GARMENT_FEED, b"<rss>2</rss>", NOW + timedelta(hours=2)), [redated])
    newest = synced.latest_stories(1)
    assert [story.url for story in newest] == [VICTIM_URL]
    assert newest[0].published == NOW
    assert only_story(synced, "harvest").published == NOW


def test_an_edit_cannot_move_a_date_far_before_it_was_first_seen(synced: Store) -> None:
    """First-seen time bounds how far back any claim moves an item, and so its story."""
    synced.record_items(fetched(), [item()])
    redated = item(published=THE_PAST, updated=THE_PAST, content_hash="v2")
    synced.record_items(fetched(body=b"<rss>2</rss>", at=NOW + timedelta(hours=1)), [redated])
    story = only_story(synced)
    assert story.published >= NOW - timedelta(days=10)
    assert synced.latest_stories(1)[0].id == story.id


def test_a_members_feed_shows_its_own_post_of_a_shared_story(synced: Store) -> None:
    synced.record_items(fetched(), [item()])
    own_post = item(
        GARMENT_FEED,
        key="guid:garment-heat",
        url="https://garment.example/news/heat-protections",
        title="Statement: Heat protections must cover every farmworker | Garment Monitor",
        summary="Garment Monitor's summary.",
        published=NOW - timedelta(hours=3),
        updated=NOW - timedelta(hours=3),
        content_hash="garment-1",
    )
    synced.record_items(fetched(GARMENT_FEED, at=NOW + timedelta(hours=1)), [own_post])
    combined = only_story(synced)
    assert [credit.member_id for credit in combined.credits] == ["harvest", "garment"]
    assert combined.url == VICTIM_URL
    own = only_story(synced, "garment")
    assert own.id == combined.id  # one story, credited to both
    assert (own.title, own.url, own.summary) == (
        own_post.title,
        own_post.url,
        own_post.summary,
    )
    assert only_story(synced, "harvest").url == VICTIM_URL
