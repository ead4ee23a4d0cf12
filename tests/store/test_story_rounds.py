"""A round's cross-post clusters do not depend on the order its polls finished (issue 12).

Three members post one story: Harvest and Garment each an excerpt of Valley's report under
its headline (so each matches Valley's post, but not the other's). When Valley's post is
stored last, it matches two stories: those came in the same round of polls, so they merge
(store/stories.py merge_same_round). Stories readers saw before the round, and stories staff
keep apart, are never merged. Each runs on SQLite and PostgreSQL (the `store` fixture).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from itertools import permutations

import pytest

from aggregator.dedupe import evidence_in_words
from aggregator.models import Config
from aggregator.models import Item
from aggregator.models import MemberConfig
from aggregator.models import SourceConfig
from aggregator.models import StoryCorrection
from aggregator.store import Store
from aggregator.store.stories import SAME_ROUND_MERGE
from tests.store.test_database import CONFIG
from tests.store.test_database import GARMENT_FEED
from tests.store.test_database import HARVEST_FEED
from tests.store.test_database import NOW
from tests.store.test_database import fetched
from tests.store.test_database import item

VALLEY_FEED = SourceConfig(member_id="valley", kind="feed", url="https://valley.example/feed/")
THREE_MEMBERS = replace(
    CONFIG,
    members=(
        *CONFIG.members,
        MemberConfig(
            id="valley",
            name="Valley Workers Center",
            url="https://valley.example/",
            sources=(VALLEY_FEED,),
        ),
    ),
)
TITLE = "Report: four in ten farmworker homes have no heat"
FIRST_HALF = (
    "surveyors visited two hundred farmworker homes across the county this winter and found "
    "that four in ten had no working heater at all while most of the others relied on "
    "portable electric units that tenants bought with their own wages"
)
SECOND_HALF = (
    "the housing authority has promised inspections before the next cold season but tenant "
    "groups say landlords who rent to seasonal crews are rarely fined and many families "
    "spend the coldest weeks sleeping in their cars or with relatives in town"
)
URLS = {
    "harvest": "https://harvest.example/2025/04/heat-report/",
    "garment": "https://garment.example/2025/04/heat-report/",
    "valley": "https://valley.example/2025/04/no-heat/",
}
TEXTS = {"harvest": FIRST_HALF, "garment": SECOND_HALF, "valley": f"{FIRST_HALF} {SECOND_HALF}"}
FEEDS = {"harvest": HARVEST_FEED, "garment": GARMENT_FEED, "valley": VALLEY_FEED}
# Hours after NOW each post claims: Valley's is nearer Harvest's, so it chooses Harvest's.
PUBLISHED = {"harvest": 1, "garment": 4, "valley": 2}


def post(member: str) -> Item:
    return item(
        FEEDS[member],
        key=f"guid:{member}-heat",
        url=URLS[member],
        title=TITLE,
        content_html=f"<p>{TEXTS[member]}</p>",
        summary=f"{member}'s summary.",
        published=NOW + timedelta(hours=PUBLISHED[member]),
        updated=NOW + timedelta(hours=PUBLISHED[member]),
        content_hash=f"{member}-1",
    )


def poll(store: Store, members: tuple[str, ...], minutes: int = 0) -> None:
    """Each member's post stored in turn, a minute apart, from `minutes` after NOW."""
    for offset, member in enumerate(members, start=minutes):
        at = NOW + timedelta(minutes=offset)
        store.record_items(fetched(FEEDS[member], at=at), [post(member)])


def credited(store: Store) -> list[list[str]]:
    stories = store.latest_stories(10)
    return sorted(sorted(credit.member_id for credit in story.credits) for story in stories)


def synced(store: Store, config: Config = THREE_MEMBERS) -> Store:
    store.sync_config(config)
    return store


def test_the_two_excerpts_alone_are_two_stories(store: Store) -> None:
    poll(synced(store), ("harvest", "garment"))
    assert credited(store) == [["garment"], ["harvest"]]


@pytest.mark.parametrize("order", list(permutations(("harvest", "garment", "valley"))))
def test_one_round_makes_one_story_whatever_the_order(
    store: Store, order: tuple[str, ...]
) -> None:
    poll(synced(store), order)
    assert credited(store) == [["garment", "harvest", "valley"]]


def test_the_merge_keeps_the_oldest_story_and_says_why(store: Store) -> None:
    poll(synced(store), ("harvest", "garment"))
    first = {story.credits[0].member_id: story.id for story in store.latest_stories(10)}
    poll(store, ("valley",), minutes=2)
    (story,) = store.latest_stories(10)
    assert story.id == first["harvest"]  # the oldest story row
    # The earliest published of the round speaks for it (Harvest's, as if stored first).
    assert story.url == URLS["harvest"]
    assert story.published == post("harvest").published
    record = store.story_record(story.id)
    assert record is not None
    reasons = {entry.member_id: entry.merge_reason for entry in record.items}
    moved = reasons["garment"]
    assert isinstance(moved, dict) and moved["rule"] == SAME_ROUND_MERGE
    assert moved["bridging_url"] == URLS["valley"]
    assert moved["bridging_member"] == "valley"
    words = evidence_in_words(moved)
    assert words.startswith(f"{SAME_ROUND_MERGE}: valley's {URLS['valley']}"), words
    assert "title+text" in words, words
    merges = store.recent_merges(NOW - timedelta(days=1), 10)
    assert SAME_ROUND_MERGE in {merge.rule for merge in merges}


def test_stories_seen_before_the_round_are_never_merged(store: Store) -> None:
    """A hijack attempt: a member whose post matches two older stories joins one of them
    and changes nothing else; both stay in every feed, under their own ids."""
    poll(synced(store), ("harvest", "garment"), minutes=-24 * 60)
    before = {story.credits[0].member_id: story for story in store.latest_stories(10)}
    poll(store, ("valley",))
    assert credited(store) == [["garment"], ["harvest", "valley"]]
    after = {story.id: story for story in store.latest_stories(10)}
    for member, story in before.items():
        assert story.id in after
        kept = after[story.id]
        assert (kept.url, kept.title, kept.published) == (story.url, story.title, story.published)
        assert [own.id for own in store.latest_stories(10, member_id=member)] == [story.id]


def test_a_story_seen_earlier_in_the_chosen_story_keeps_its_id(store: Store) -> None:
    """The chosen story was seen a day before: a same-round story joins it, never the
    reverse (the older story's readers keep its id)."""
    poll(synced(store), ("harvest",), minutes=-24 * 60)
    older = store.latest_stories(1)[0].id
    poll(store, ("garment", "valley"))
    stories = store.latest_stories(10)
    assert older in {story.id for story in stories}
    assert store.latest_stories(1, member_id="harvest")[0].id == older


def test_staff_keep_apart_is_respected(store: Store) -> None:
    apart = StoryCorrection("keep_apart", (URLS["harvest"], URLS["garment"]), "two reports")
    poll(synced(store, replace(THREE_MEMBERS, corrections=(apart,))), ("harvest", "garment"))
    poll(store, ("valley",), minutes=2)
    assert credited(store) == [["garment"], ["harvest", "valley"]]


def test_a_members_two_posts_are_not_merged_by_a_bridge(store: Store) -> None:
    """The rule never matches a member's two posts with each other (two posts, two
    stories), so an item matching both must not merge them either."""
    second = replace(
        post("garment"),
        member_id="harvest",
        source_url=HARVEST_FEED.url,
        key="guid:harvest-heat-2",
        url="https://harvest.example/2025/04/heat-report-2/",
        content_hash="harvest-2",
    )
    synced(store).record_items(fetched(HARVEST_FEED), [post("harvest"), second])
    poll(store, ("valley",), minutes=1)
    assert credited(store) == [["harvest"], ["harvest", "valley"]]
