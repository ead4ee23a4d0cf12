"""The in-memory candidate index (aggregator.store.candidate_index) answers exactly what the
database does (stories.candidate_ids): the same ids in the same order, on random
story_keys content with members, dates on and around the windows' edges, shared links,
titles and words, and keys with more entries than the caps; on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy import Connection
from sqlalchemy import select

from aggregator.dedupe import CROSS_POST_WINDOW
from aggregator.dedupe import LINK_WINDOW
from aggregator.dedupe import candidate_keys
from aggregator.models import Config
from aggregator.models import Item
from aggregator.models import MemberConfig
from aggregator.models import SourceConfig
from aggregator.store import Store
from aggregator.store import schema
from aggregator.store.candidate_index import EVERYTHING
from aggregator.store.candidate_index import MAX_CANDIDATES_PER_KEY
from aggregator.store.candidate_index import CandidateIndex
from aggregator.store.candidate_index import lookup_keys
from aggregator.store.candidate_index import micros
from aggregator.store.stories import candidate_ids
from aggregator.store.stories import save_story_keys
from tests.store.test_database import CONFIG
from tests.store.test_database import NOW

MEMBERS = ("m0", "m1", "m2", "m3")
SOURCES = tuple(
    SourceConfig(member_id=member, kind="feed", url=f"https://{member}.example/feed/")
    for member in MEMBERS
)
MEMBERS_CONFIG = Config(
    network=CONFIG.network,
    members=tuple(
        MemberConfig(id=source.member_id, name=source.member_id, url=source.url, sources=(source,))
        for source in SOURCES
    ),
)
# Few distinctive words, so titles share words (and whole titles) often, and one word
# often has more items within a window than MAX_CANDIDATES_PER_KEY // 2 on a side.
WORDS = ("immokalee", "pickers", "dairy", "wages", "kessler", "audit")
LINKS = tuple(f"https://shared.example/2025/01/story-{number}/" for number in range(3))
# Offsets from the probe's date: on, just inside and just outside both windows, ties.
MICRO = timedelta(microseconds=1)
EDGES = tuple(
    sign * offset
    for sign in (1, -1)
    for offset in (
        timedelta(0),
        MICRO,
        CROSS_POST_WINDOW - MICRO,
        CROSS_POST_WINDOW,
        CROSS_POST_WINDOW + MICRO,
        LINK_WINDOW - MICRO,
        LINK_WINDOW,
        LINK_WINDOW + MICRO,
        timedelta(hours=1),
        timedelta(days=2),
    )
)


@dataclass(frozen=True)
class Stored:
    member: str
    title: str
    url: str | None
    offset: timedelta


titles = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4, unique=True).map(" ".join)
urls = st.one_of(st.none(), st.sampled_from(LINKS))
offsets = st.one_of(
    st.sampled_from(EDGES),
    st.integers(-40 * 24 * 3600, 40 * 24 * 3600).map(lambda seconds: timedelta(seconds=seconds)),
)
stored_items = st.builds(Stored, st.sampled_from(MEMBERS), titles, urls, offsets)
probes = st.builds(Stored, st.sampled_from(MEMBERS), titles, urls, offsets)


def probe_item(probe: Stored) -> Item:
    published = NOW + probe.offset
    return Item(
        member_id=probe.member,
        source_url=f"https://{probe.member}.example/feed/",
        key="guid:probe",
        url=probe.url,
        title=probe.title,
        content_html="",
        summary="",
        published=published,
        updated=published,
        date_from_source=True,
        content_hash="probe",
    )


def fill(connection: Connection, stored: list[Stored]) -> list[tuple[int, Stored]]:
    """Rows for `stored` in items and story_keys (through save_story_keys), replacing any."""
    connection.execute(schema.story_keys.delete())
    connection.execute(schema.items.delete())
    connection.execute(schema.stories.delete())
    story_id = connection.scalar(
        schema.stories.insert().values(uid="story", published=NOW, updated=NOW).returning(
            schema.stories.c.id
        )
    )
    columns = schema.sources.c
    rows = connection.execute(select(columns.member_id, columns.id))
    sources = {row.member_id: row.id for row in rows}
    written = []
    for number, entry in enumerate(stored):
        published = NOW + entry.offset
        item_id = connection.scalar(
            schema.items.insert().values(
                source_id=sources[entry.member],
                member_id=entry.member,
                story_id=story_id,
                key=f"guid:{number}",
                url=entry.url,
                title=entry.title,
                title_key=entry.title,
                content_html="",
                summary="",
                published=published,
                updated=published,
                date_from_source=True,
                first_seen_at=NOW,
                authors=[],
                tags=[],
                content_hash=str(number),
            ).returning(schema.items.c.id)
        )
        save_story_keys(
            connection, item_id, entry.title, entry.url, published, member_id=entry.member
        )
        written.append((item_id, entry))
    return written


def loaded(connection: Connection) -> CandidateIndex:
    index = CandidateIndex(covers_from=EVERYTHING, max_entries=10**6)
    keys = schema.story_keys.c
    rows = connection.execute(select(keys.item_id, keys.key, keys.published, keys.member_id))
    index.load((row.item_id, row.key, micros(row.published), row.member_id) for row in rows)
    return index


def added(written: list[tuple[int, Stored]]) -> CandidateIndex:
    index = CandidateIndex(covers_from=EVERYTHING, max_entries=10**6)
    for item_id, entry in written:
        index.add(item_id, entry.member, NOW + entry.offset, candidate_keys(entry.title, entry.url))
    return index


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stored=st.lists(stored_items, min_size=0, max_size=120),
    crowded=st.integers(110, 160),
    lookups=st.lists(probes, min_size=1, max_size=6),
)
def test_the_index_returns_what_the_database_returns(
    store: Store, stored: list[Stored], crowded: int, lookups: list[Stored]
) -> None:
    store.sync_config(MEMBERS_CONFIG)
    # A crowd under one word on both sides of the probe's date: more than a key's cap,
    # with ties on the date between members.
    crowd = [
        Stored(
            MEMBERS[number % 4],
            f"wages {WORDS[1 + number % 5]}",
            None,
            EDGES[number % 20] if number % 3 == 0 else timedelta(hours=number % 61 - 30),
        )
        for number in range(crowded)
    ]
    with store.engine.begin() as connection:
        written = fill(connection, stored + crowd)
        from_rows, one_by_one = loaded(connection), added(written)
        for probe in lookups:
            item = probe_item(probe)
            expected = candidate_ids(connection, item)
            keys = lookup_keys(item.title, item.url)
            assert from_rows.candidates(keys, item.published, item.member_id) == expected
            assert one_by_one.candidates(keys, item.published, item.member_id) == expected


def test_a_crowded_key_is_capped_per_side_nearest_first() -> None:
    index = CandidateIndex(covers_from=EVERYTHING, max_entries=10**6)
    for number in range(60):
        index.add(number, "other", NOW + timedelta(hours=number - 30), ["title\nwages"])
    keys = lookup_keys("wages", None)
    found = index.candidates(keys, NOW, "mine")
    assert found is not None
    # The 20 best of 25 after and 25 before (from -25 h to +24 h): nearest in time first.
    assert len(found) == 20
    assert set(found) <= set(range(30 - MAX_CANDIDATES_PER_KEY // 2, 30 + 25))
    assert found[:3] == [30, 29, 31]


def test_an_item_s_keys_are_replaced_and_dropped() -> None:
    index = CandidateIndex(covers_from=EVERYTHING, max_entries=10**6)
    index.add(1, "other", NOW, candidate_keys("Kessler audit", None))
    index.add(1, "other", NOW, candidate_keys("Dairy wages", None))
    assert index.candidates(lookup_keys("Kessler audit", None), NOW, "mine") == []
    assert index.candidates(lookup_keys("Dairy wages", None), NOW, "mine") == [1]
    index.discard([1])
    assert len(index) == 0
    assert index.candidates(lookup_keys("Dairy wages", None), NOW, "mine") == []


def test_what_the_index_does_not_cover_is_left_to_the_database() -> None:
    since = NOW - timedelta(days=40)
    index = CandidateIndex(covers_from=micros(since), max_entries=3)
    keys = lookup_keys("Kessler audit", "https://shared.example/2025/01/story-0/")
    # The link's window (30 days) from a date 50 days on reaches back to day 20: covered.
    assert index.candidates(keys, since + timedelta(days=50), "mine") == []
    # From day 20 it reaches back before what was loaded.
    assert index.candidates(keys, since + timedelta(days=20), "mine") is None
    # Over its bound of entries it stops answering at all, and holds nothing.
    index.add(1, "other", NOW, candidate_keys("Kessler audit dairy", None))
    assert index.full and len(index) == 0
    assert index.candidates(keys, NOW, "mine") is None
