"""Cross-post matching rules (pure)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from aggregator.dedupe import StoryCandidate
from aggregator.dedupe import match_story
from aggregator.dedupe import text_similarity
from aggregator.dedupe import title_key

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HEAT_TEXT = (
    "Farmworkers across the valley walked out of the fields on Tuesday after temperatures "
    "passed 40 degrees for the third day in a row. The alliance is calling on growers to "
    "adopt the heat standard negotiated last spring, with shade, water and paid rest breaks."
)


def candidate(**overrides: object) -> StoryCandidate:
    values: dict[str, object] = {
        "story_id": 7,
        "member_id": "harvest",
        "url": "https://harvest.example/heat",
        "title_key": title_key("Heat protections must cover every farmworker"),
        "published": NOW,
        "text": HEAT_TEXT,
    }
    values.update(overrides)
    return StoryCandidate(**values)  # type: ignore[arg-type]


def test_title_key_ignores_case_punctuation_accents_and_labels() -> None:
    assert title_key("BREAKING: Heat protections — now!") == "heat protections now"
    assert title_key("Statement: Heat protections now") == "heat protections now"
    assert title_key("[Update] - Heat protections now") == "heat protections now"
    assert title_key("Trabajadores agrícolas ganan") == "trabajadores agricolas ganan"


def test_same_canonical_link_is_the_same_story_whatever_the_title() -> None:
    match = match_story(
        url="https://harvest.example/heat",
        title="Completely different title",
        published=NOW + timedelta(days=30),
        text="",
        candidates=[candidate()],
    )
    assert match == 7


def test_cross_post_with_label_and_similar_text_matches() -> None:
    match = match_story(
        url="https://garment.example/news/heat",
        title="Statement: Heat protections must cover every farmworker!",
        published=NOW + timedelta(hours=20),
        text=HEAT_TEXT + " Signed by the Garment Rights Monitor.",
        candidates=[candidate()],
    )
    assert match == 7


def test_same_title_outside_the_window_is_a_new_story() -> None:
    match = match_story(
        url="https://garment.example/news/heat",
        title="Heat protections must cover every farmworker",
        published=NOW + timedelta(days=11),
        text=HEAT_TEXT,
        candidates=[candidate()],
    )
    assert match is None


def test_generic_title_with_different_text_stays_two_stories() -> None:
    weekly = candidate(
        title_key=title_key("Weekly update"),
        url="https://harvest.example/weekly-46",
        text="This week the alliance trained forty new worker monitors in the north fields.",
    )
    match = match_story(
        url="https://dairy.example/weekly",
        title="Weekly Update",
        published=NOW + timedelta(days=1),
        text="Our dairy committee met with two processors about the housing audit results.",
        candidates=[weekly],
    )
    assert match is None


def test_generic_title_without_text_is_not_merged() -> None:
    weekly = candidate(title_key=title_key("Weekly update"), url=None, text="")
    match = match_story(
        url=None, title="Weekly update", published=NOW, text="", candidates=[weekly]
    )
    assert match is None


def test_long_specific_title_without_text_is_merged() -> None:
    empty = candidate(url=None, text="")
    match = match_story(
        url=None,
        title="Heat protections must cover every farmworker",
        published=NOW,
        text="",
        candidates=[empty],
    )
    assert match == 7


def test_closest_in_time_wins_among_title_matches() -> None:
    older = candidate(story_id=1, url=None, published=NOW - timedelta(days=5))
    newer = candidate(story_id=2, url=None, published=NOW - timedelta(hours=1))
    match = match_story(
        url=None,
        title="Heat protections must cover every farmworker",
        published=NOW,
        text=HEAT_TEXT,
        candidates=[older, newer],
    )
    assert match == 2


def test_text_similarity_bounds() -> None:
    assert text_similarity(HEAT_TEXT, HEAT_TEXT) == 1.0
    assert text_similarity(HEAT_TEXT, "") == 0.0
    assert text_similarity(HEAT_TEXT, "Dairy workers win housing repairs after audit.") < 0.1
    excerpt = " ".join(HEAT_TEXT.split()[:25])
    assert text_similarity(excerpt, HEAT_TEXT) == 1.0
