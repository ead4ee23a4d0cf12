"""A changed feed's unchanged entries are not normalized again (issue 14), and what is stored
is exactly what normalizing every entry stores.

A real feed on 127.0.0.1 changes between polls into real SQLite and PostgreSQL databases;
each sequence of polls runs twice, with the skip and with it disabled (no entry found
skippable, every other step as it is), on the same clock, and every row of every table a
poll writes is compared after each poll, with the reports.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy import text

from aggregator.config import parse_config
from aggregator.ingest import normalize
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.limits import limit_items
from aggregator.ingest.normalize import entry_digests
from aggregator.ingest.normalize import normalize_poll
from aggregator.ingest.poll import poll_all
from aggregator.models import Config
from aggregator.models import FetchLimits
from aggregator.models import ItemFilter
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig
from aggregator.store import Store
from aggregator.store import schema
from tests.support.server import FixtureServer

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FEED_PATH = "/members/harvest/feed.xml"
TABLES = (schema.sources, schema.items, schema.item_tags, schema.stories, schema.story_keys)


# --- the feed ----------------------------------------------------------------------------


@dataclass
class Entry:
    guid: str
    title: str
    text: str
    published: datetime | None
    link: str | None = None
    tags: tuple[str, ...] = ()


@dataclass
class LiveFeed:
    """An RSS feed whose entries a test changes between polls."""

    base: str
    entries: list[Entry] = field(default_factory=list)

    def body(self) -> bytes:
        items = "".join(
            f"<item><guid isPermaLink='false'>{entry.guid}</guid>"
            f"<link>{entry.link or self.base + '/stories/' + entry.guid}</link>"
            f"<title>{entry.title}</title>"
            f"<description><![CDATA[<p>{entry.text}</p>]]></description>"
            + "".join(f"<category>{tag}</category>" for tag in entry.tags)
            + (f"<pubDate>{format_datetime(entry.published)}</pubDate>" if entry.published else "")
            + "</item>"
            for entry in self.entries
        )
        return (
            "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Harvest Workers</title><link>{self.base}/</link>{items}</channel></rss>"
        ).encode()

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        body = self.body()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def story(number: int, day: int) -> Entry:
    return Entry(
        guid=f"harvest-{number}",
        title=f"Harvest crews report number {number} on the heat rules",
        text=f"Crew {number} walked off the fields at noon when the heat index passed 100.",
        published=START - timedelta(days=day),
        tags=("heat", f"crew {number}"),
    )


def config_for(feed_url: str, extra: str = "") -> Config:
    return parse_config(f"""\
network:
  title: WSR Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news/
members:
  - id: harvest
    name: Harvest Workers
    url: {feed_url}
    sources:
      - feed: {feed_url}
{extra}""")


# --- running a sequence of polls twice -----------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One poll: the feed's entries then, at that time, under that configuration; `before`
    runs on the store first (a prune, say)."""

    entries: list[Entry]
    at: datetime
    config_extra: str = ""
    before: Callable[[Store, datetime], object] | None = None


@dataclass
class Run:
    normalized: list[int] = field(default_factory=list)  # entries normalized, per poll
    reports: list[tuple[Any, ...]] = field(default_factory=list)
    tables: list[dict[str, list[tuple[Any, ...]]]] = field(default_factory=list)


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    with store.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in TABLES
        }


def run_steps(
    database_url: str,
    server: FixtureServer,
    steps: list[Step],
    monkeypatch: pytest.MonkeyPatch,
    *,
    skip: bool,
) -> Run:
    feed = LiveFeed(server.url("/members/harvest"))
    server.responders[FEED_PATH] = feed.respond
    feed_url = server.url(FEED_PATH)
    run = Run()
    calls = [0]
    real_entry = normalize._normalize_entry

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real_entry(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(normalize, "_normalize_entry", counted)
        if not skip:
            patched.setattr(normalize, "_unchanged_identities", lambda *_args: {})
        store = Store.open(database_url)
        try:
            for step in steps:
                config = config_for(feed_url, step.config_extra)
                store.sync_config(config)
                if step.before is not None:
                    step.before(store, step.at)
                feed.entries = list(step.entries)
                calls[0] = 0

                async def poll(config: Config = config, at: datetime = step.at) -> Any:
                    async with Fetcher(clock=lambda: at) as fetcher:
                        return await poll_all(config, store, fetcher)

                [report] = asyncio.run(poll())
                assert report.error is None, report.error
                run.normalized.append(calls[0])
                run.reports.append(
                    (report.outcome, report.new, report.updated, report.warning, report.filtered)
                )
                run.tables.append(snapshot(store))
        finally:
            store.close()
    return run


def wipe(database_url: str) -> None:
    """The database empty again, for the second run of a sequence."""
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        for name in (path.name, path.name + "-wal", path.name + "-shm"):
            (path.parent / name).unlink(missing_ok=True)
        return
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def both_ways(
    database_url: str, server: FixtureServer, steps: list[Step], monkeypatch: pytest.MonkeyPatch
) -> Run:
    """The sequence without the skip, then with it: every poll stored the same rows and
    reported the same; the run with the skip is returned."""
    every = run_steps(database_url, server, steps, monkeypatch, skip=False)
    wipe(database_url)
    skipping = run_steps(database_url, server, steps, monkeypatch, skip=True)
    assert every.normalized == [len(step.entries) for step in steps]
    assert skipping.reports == every.reports
    for poll, (theirs, ours) in enumerate(zip(every.tables, skipping.tables, strict=True)):
        for table in theirs:
            assert ours[table] == theirs[table], f"poll {poll}: table {table} differs"
    return skipping


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as started:
        yield started


# --- through a whole poll ------------------------------------------------------------------


def test_a_changed_feed_normalizes_only_its_new_and_edited_entries(
    database_url: str, server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    thirty = [story(number, day=number) for number in range(30)]
    fresh = story(30, day=0)
    edited = replace(thirty[4], title="Harvest crews report number 4: the heat rules, updated")
    redated = replace(thirty[7], published=START - timedelta(days=6, hours=3))
    undated = Entry("harvest-undated", "Crews meet on Sunday", "At the union hall.", None)
    hour = timedelta(hours=1)
    steps = [
        Step(thirty, START),  # the first poll stores all thirty
        Step([fresh, *thirty], START + hour),  # one new entry among thirty stored
        Step([fresh, *thirty[:4], edited, *thirty[5:]], START + 2 * hour),  # one edited
        # A date alone changes (not republished) and an undated entry arrives.
        Step([undated, fresh, *thirty[:4], edited, *thirty[5:7], redated, *thirty[8:]],
             START + 3 * hour),
        # The undated one again, later: it keeps the time it was first seen.
        Step([undated, fresh, *thirty[:4], edited, *thirty[5:7], redated, *thirty[8:]][::-1],
             START + 4 * hour),
    ]  # fmt: skip
    run = both_ways(database_url, server, steps, monkeypatch)
    # The re-dated entry is normalized once (its item is unchanged and takes the new digest).
    assert run.normalized == [30, 1, 1, 2, 0]
    assert [report[1:3] for report in run.reports] == [(30, 0), (1, 0), (0, 1), (1, 0), (0, 0)]


def test_a_configuration_change_or_a_new_normalize_version_normalizes_everything_once(
    database_url: str, server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ten = [story(number, day=number) for number in range(10)]
    hour = timedelta(hours=1)
    exclude = "        exclude: [bake sale]\n"  # the source's own filter
    spanish = exclude + "    language: es\n"  # and the member's language (every fallback)
    steps = [
        Step(ten, START),
        Step([story(10, 0), *ten], START + hour),
        Step([story(11, 0), story(10, 0), *ten], START + 2 * hour, exclude),
        Step([story(12, 0), story(11, 0), story(10, 0), *ten], START + 3 * hour, exclude),
        Step([story(13, 0), story(12, 0), story(11, 0), story(10, 0), *ten], START + 4 * hour,
             spanish),
        Step([story(13, 0), story(12, 0), story(11, 0), story(10, 0), *ten][:-1],
             START + 5 * hour, spanish),
    ]  # fmt: skip
    run = both_ways(database_url, server, steps, monkeypatch)
    assert run.normalized == [10, 1, 12, 1, 14, 0]

    # NORMALIZE_VERSION bumped (normalize changed): every entry is normalized once again.
    wipe(database_url)
    first = run_steps(database_url, server, steps[:2], monkeypatch, skip=True)
    with monkeypatch.context() as bumped:
        bumped.setattr(normalize, "NORMALIZE_VERSION", normalize.NORMALIZE_VERSION + 1)
        later = [
            Step([story(11, 0), story(10, 0), *ten], START + 2 * hour),
            Step([story(12, 0), story(11, 0), story(10, 0), *ten], START + 3 * hour),
        ]
        again = run_steps(database_url, server, later, monkeypatch, skip=True)
    assert first.normalized == [10, 1] and again.normalized == [12, 1]


def test_an_item_purged_while_still_in_the_feed_is_stored_again_as_before(
    database_url: str, server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prune (a retention run, or an operator's earlier cutoff) deleted stored items whose
    entries are still in the feed: a poll treats them as it always did (here: new again)."""
    entries = [story(number, day=10 * number) for number in range(6)]
    day = timedelta(days=1)

    def prune(store: Store, at: datetime) -> object:
        return store.prune(at - timedelta(days=25), at)

    steps = [
        Step(entries, START),
        Step([story(6, 0), *entries], START + day, before=prune),
        Step([story(7, 0), story(6, 0), *entries], START + 2 * day),
    ]
    run = both_ways(database_url, server, steps, monkeypatch)
    # The three pruned items (30, 40 and 50 days old) are normalized again and stored anew.
    assert run.normalized == [6, 4, 1]
    assert run.reports[1][1] == 4


def test_entries_sharing_a_key_or_an_address_with_a_stored_one_are_all_normalized(
    database_url: str, server: FixtureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store keeps the first entry of a key and re-keys a stored item to an identical
    new one: both look at the whole batch, so nothing is skipped then."""
    five = [story(number, day=number) for number in range(5)]
    repeated = replace(five[2], title="A later entry with the same GUID", text="Other text.")
    # Entry 3 again under a new GUID, with its address: identical for readers.
    regiven = replace(five[3], guid="harvest-3-new", link="/members/harvest/stories/harvest-3")
    hour = timedelta(hours=1)
    steps = [
        Step(five, START),
        Step([*five, repeated], START + hour),
        Step([*five, regiven], START + 2 * hour),
        Step([*five[1:], regiven], START + 3 * hour),
    ]
    run = both_ways(database_url, server, steps, monkeypatch)
    assert run.normalized == [5, 6, 6, 0]


# --- normalize_poll alone ------------------------------------------------------------------

SOURCE = SourceConfig("harvest", "feed", "https://harvest.example.org/feed/")
LIMITS = FetchLimits()


def parsed_feed(entries: list[ParsedEntry]) -> ParsedFeed:
    return ParsedFeed(url=SOURCE.url, format="rss20", entries=tuple(entries))


def parsed_entry(number: int, *, link: str | None = None, days: int = 1) -> ParsedEntry:
    return ParsedEntry(
        guid=f"harvest-{number}",
        link=link or f"https://harvest.example.org/stories/{number}",
        title=f"Crews report {number}",
        content_html=f"<p>Crew {number} stopped at noon.</p>",
        published=START - timedelta(days=days),
    )


def test_known_entries_are_skipped_and_the_others_carry_their_digests() -> None:
    feed = parsed_feed([parsed_entry(number) for number in range(4)])
    digests = entry_digests(feed, SOURCE, None, LIMITS)
    result = normalize_poll(feed, SOURCE, START, None, limits=LIMITS, known=frozenset(digests[1:]))
    assert result.unchanged == 3
    assert [item.entry_digest for _, item in result.pairs] == digests[:1]
    assert [item.key for _, item in result.pairs] == ["guid:harvest-0"]


def test_nothing_is_skipped_when_a_normalized_entry_shares_an_address_or_a_key() -> None:
    stored = [parsed_entry(number) for number in range(3)]
    known = frozenset(entry_digests(parsed_feed(stored), SOURCE, None, LIMITS))
    # A new GUID for stored entry 1's address: the store could re-key entry 1's item.
    same_address = replace(stored[1], guid="harvest-1-again")
    # A second entry with entry 2's GUID: the store keeps the first of a key.
    same_key = replace(stored[2], title="Another title")
    for extra in (same_address, same_key):
        result = normalize_poll(
            parsed_feed([*stored, extra]), SOURCE, START, None, limits=LIMITS, known=known
        )
        assert result.unchanged == 0 and len(result.pairs) == 4


def test_nothing_is_skipped_beyond_items_per_poll_nor_what_max_age_now_leaves_out() -> None:
    entries = [parsed_entry(number, days=10 * number) for number in range(4)]
    feed = parsed_feed(entries)
    small = replace(LIMITS, items_per_poll=3)
    known = frozenset(entry_digests(feed, SOURCE, None, small))
    result = normalize_poll(feed, SOURCE, START, None, limits=small, known=known)
    assert result.unchanged == 0 and len(result.pairs) == 4

    aging = replace(SOURCE, filters=(ItemFilter(max_age=timedelta(days=15)),))
    known = frozenset(entry_digests(feed, aging, None, LIMITS))
    result = normalize_poll(feed, aging, START, None, limits=LIMITS, known=known)
    # Entries 2 and 3 (20 and 30 days old) are normalized, to be counted as filtered.
    assert result.unchanged == 2
    assert [item.key for _, item in result.pairs] == ["guid:harvest-2", "guid:harvest-3"]


def test_entries_without_a_link_are_always_normalized() -> None:
    entry = replace(parsed_entry(1), link=None)
    feed = parsed_feed([entry])
    known = frozenset(entry_digests(feed, SOURCE, None, LIMITS))
    result = normalize_poll(feed, SOURCE, START, None, limits=LIMITS, known=known)
    assert result.unchanged == 0 and len(result.pairs) == 1


def test_a_cut_item_keeps_no_digest_so_its_note_comes_back() -> None:
    entry = replace(parsed_entry(1), title="word " * 200)
    feed = parsed_feed([entry])
    result = normalize_poll(feed, SOURCE, START, None, limits=LIMITS)
    [(_, item)] = result.pairs
    assert item.entry_digest is not None
    [(_, cut)], notes = limit_items(result.pairs, LIMITS)
    assert cut.entry_digest is None and notes


def test_digests_are_the_same_in_every_process() -> None:
    """Canonical: not Python's hash() of a str, which each process salts differently."""
    script = (
        "from tests.ingest.test_poll_unchanged_entries import digests_here; "
        "print(' '.join(digests_here()))"
    )
    found = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        == digests_here()
        for seed in ("1", "2")
    }
    assert found == {True}


def digests_here() -> list[str]:
    entry = replace(parsed_entry(1), tags=("heat", "crews"), authors=("Ana",))
    return entry_digests(parsed_feed([entry]), SOURCE, "es", LIMITS)
