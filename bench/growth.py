"""Growth benchmark: do the queries a poll and the publishers make stay flat as the database grows?

    python -m bench.growth              # SQLite and (when reachable) PostgreSQL, 10k/100k/1M items
    python -m bench.growth --smoke      # SQLite only, 2k/10k items, for CI
    python -m bench.growth --keep DIR   # keep each size's database, reuse it, sizes in turn

For each size the database is grown by inserting rows directly (members, sources, stories,
items with their match features and candidate keys, in bulk: going through the poll path
would take hours at 1M; the rows are prepared in worker processes while the main process
inserts), then three things are timed through the Store, as the pipeline calls them:
- latest-50: Store.latest_stories(50), what the feeds, the API and the widget read;
- dedup lookup: the (source, key) lookup of an existing item plus Store._find_story (the
  per-item cross-post matching: staff corrections, the candidate index's bounded range reads
  by title key, distinctive title words and link, and the rule over the candidates), for
  items whose title matches stored ones; the bulk items are indexed in story_keys and carry
  their match features as the poll path writes them. Bulk titles draw their words from a
  vocabulary of realistic size with Zipf frequencies (bulk_title), so that common words are
  common and rare ones rare, as in news headlines;
- a full poll cycle: poll_all over a small generated corpus (first poll, everything new,
  then an unchanged re-poll) served on 127.0.0.1, in this process; median of three.
It prints a table per backend and the query plan of latest-50 (to show the index is used).

PostgreSQL is used when 127.0.0.1:5432 answers (AGGREGATOR_BENCH_POSTGRES_URL, default
postgresql+psycopg://postgres@127.0.0.1:5432/test): the benchmark creates its own throwaway
database there and drops it at the end; with --keep it also leaves one database per size named
KEPT_POSTGRES (aggregator_bench_kept_SIZE), to copy from on the next run. It never touches any
other database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import multiprocessing
import os
import pickle
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from aggregator.config import load_config
from aggregator.dedupe import candidate_keys
from aggregator.dedupe import text_features
from aggregator.dedupe import title_key
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.models import Config
from aggregator.models import Item
from aggregator.store import Store
from aggregator.store import schema
from bench import corpus
from bench.harness import StaticServer
from bench.harness import exit_on_sigterm
from bench.harness import machine_line
from bench.harness import say
from bench.harness import table

POSTGRES_ADMIN_URL = os.environ.get(
    "AGGREGATOR_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SIZES = (10_000, 100_000, 1_000_000)
SMOKE_SIZES = (2_000, 10_000)
CYCLE_SITES = 20
CYCLES = 3  # poll cycles per size; the median is reported
SMOKE_CYCLE_SITES = 4
BULK_MEMBERS = 1000
BATCH = 10_000
LOOKUPS = 200
LATEST_RUNS = 30
NEWEST = datetime(2026, 10, 1, tzinfo=UTC)
SPAN = timedelta(days=5 * 365)  # bulk items are spread over five years before NEWEST
CROSS_POST_SHARE = 0.03
# story_keys.member_id is revision 0007's: without it this file still grows the schema of
# an older tree (bench/growth.py copied next to an older `aggregator`, for before/after).
KEYS_HOLD_MEMBER = "member_id" in schema.story_keys.c
_WORDS = (
    "workers", "agreement", "heat", "wages", "union", "brands", "farm", "factory", "rights",
    "monitor", "protection", "victory", "report", "campaign", "harvest", "dairy", "garment",
    "cleaners", "housing", "safety", "water", "shade", "code", "audit", "justice", "fair",
    "food", "milk", "dignity", "accord", "strike", "march", "contract", "signed", "wins",
)  # fmt: skip
# Headline vocabulary: the domain words above as its most frequent words, then made-up
# words (names of farms, brands, towns, people and the rest of the language) with Zipf
# frequencies. Real headlines share common words often and rare ones seldom; titles drawn
# from 35 words alone shared most of their words with every other title, a worst case that
# news does not show (and that made every lookup read every key's full limit).
VOCABULARY_SIZE = 20_000
ZIPF_EXPONENT = 1.0
_SYLLABLES = tuple(
    consonant + vowel for consonant in "bdfgklmnprstvz" for vowel in ("a", "e", "i", "o", "u")
)


@lru_cache(maxsize=4)
def vocabulary(size: int = VOCABULARY_SIZE) -> tuple[list[str], list[float]]:
    """The headline words, most frequent first, and their cumulative Zipf weights (a size of
    35 or less: the domain words alone, the worst case the benchmark used to measure)."""
    rng = random.Random(20261125)  # the same words on every run and in every process
    made_up = ["".join(parts) for parts in itertools.product(_SYLLABLES, repeat=3)]
    rng.shuffle(made_up)
    words = (list(_WORDS) + made_up)[:size]
    if size <= len(_WORDS):
        return words, list(itertools.accumulate(1.0 for _ in words))  # uniform, as before
    weights = itertools.accumulate(1 / rank**ZIPF_EXPONENT for rank in range(1, size + 1))
    return words, list(weights)


@dataclass(frozen=True)
class Row:
    backend: str
    items: int
    latest_ms: float
    key_lookup_ms: float
    story_match_ms: float
    first_cycle_s: float
    again_cycle_s: float
    grow_s: float


# --- bulk growth ------------------------------------------------------------------------


def bulk_title(rng: random.Random, number: int, size: int = VOCABULARY_SIZE) -> str:
    words, cumulative = vocabulary(size)
    words = rng.choices(words, cum_weights=cumulative, k=rng.randint(5, 9))
    return " ".join(words).capitalize() + f" {number % 997}"


@dataclass(frozen=True)
class Batch:
    """One batch of bulk rows, prepared in a worker process (ids are given at insert)."""

    stories: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    keys: list[list[str]]  # each row's candidate keys
    titles: list[tuple[str, datetime, int]]  # a sample for the lookups


def prepare_batch(job: tuple[int, int, int, int, list[int], int]) -> Batch:
    """`count` bulk items numbered from `first`, from their own random stream (seed, batch
    number), so a run is the same whatever the number of worker processes."""
    seed, batch_number, first, count, source_ids, size = job
    rng = random.Random(seed * 1_000_003 + batch_number)
    stories: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    shared: list[int] = []  # indexes into rows whose story another item shares
    titles: list[tuple[str, datetime, int]] = []
    for offset in range(count):
        number = first + offset
        published = NEWEST - SPAN * rng.random()
        source_index = rng.randrange(len(source_ids))
        title = bulk_title(rng, number, size)
        if shared and rng.random() < CROSS_POST_SHARE:
            original = rows[rng.choice(shared)]
            title, published = original["title"], original["published"]
        else:
            shared.append(len(rows))
        # The text html_to_text gives of the content below (no markup inside the paragraph).
        text = f"{title}. " + " ".join(rng.choice(_WORDS) for _ in range(40))
        key = title_key(title)
        stories.append(
            {"uid": str(uuid.UUID(int=rng.getrandbits(128))), "published": published,
             "updated": published}
        )  # fmt: skip
        rows.append(
            {
                "source_id": source_ids[source_index],
                "member_id": f"bulk{source_index:04d}",
                "key": f"guid:https://bulk{source_index:04d}.example.org/?p={number}",
                "url": f"https://bulk{source_index:04d}.example.org/{number}/",
                "title": title,
                "title_key": key,
                "content_html": f"<p>{text}</p>",
                "summary": "",
                "published": published,
                "updated": published,
                "date_from_source": True,
                "first_seen_at": published,
                "authors": ["Bulk author"],
                "tags": ["bulk"],
                "image": None,
                "language": "en",
                "content_hash": f"{number:032x}",
                # As the poll path stores it (store/items.py): under the title key.
                "match_features": text_features(text, key).to_json(),
            }
        )
        if offset % 50 == 0:
            titles.append((title, published, source_ids[source_index]))
    keys = [list(dict.fromkeys(candidate_keys(row["title"], row["url"]))) for row in rows]
    return Batch(stories, rows, keys, titles)


class Grower:
    """Adds synthetic members, sources, stories and items straight into the tables."""

    def __init__(self, engine: Engine, seed: int = 7, words: int = VOCABULARY_SIZE) -> None:
        self.engine = engine
        self.seed = seed
        self.words = words
        self.batches = 0
        self.items = 0
        self.source_ids: list[int] = []
        self.titles: list[tuple[str, datetime, int]] = []  # (title, published, source id)

    def state(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "words": self.words, "batches": self.batches,
            "items": self.items, "source_ids": self.source_ids, "titles": self.titles,
        }  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        if (state["seed"], state["words"]) != (self.seed, self.words):
            raise SystemExit("--keep: the kept databases were grown with another seed/vocabulary")
        self.batches, self.items = state["batches"], state["items"]
        self.source_ids, self.titles = state["source_ids"], state["titles"]

    def setup(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                schema.members.insert(),
                [
                    {"id": f"bulk{n:04d}", "name": f"Member {n}", "url": "https://x/", "tags": []}
                    for n in range(BULK_MEMBERS)
                ],
            )
            connection.execute(
                schema.sources.insert(),
                [
                    {
                        "url": f"https://bulk{n:04d}.example.org/feed/",
                        "member_id": f"bulk{n:04d}",
                        "kind": "feed",
                        "consecutive_failures": 0,
                    }
                    for n in range(BULK_MEMBERS)
                ],
            )
            self.source_ids = list(
                connection.scalars(
                    select(schema.sources.c.id).where(schema.sources.c.url.like("https://bulk%"))
                )
            )

    def grow_to(self, total: int) -> float:
        started = time.perf_counter()
        jobs = []
        planned = self.items
        while planned < total:
            count = min(BATCH, total - planned)
            number = self.batches + len(jobs)
            jobs.append((self.seed, number, planned, count, self.source_ids, self.words))
            planned += count
        # Workers prepare the rows (titles, keys, match features: the Python work) while this
        # process inserts the batches in order.
        workers = max(1, (os.cpu_count() or 1) - 1)
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for batch in pool.imap(prepare_batch, jobs):
                self._insert(batch)
                self.batches += 1
        return time.perf_counter() - started

    def _insert(self, batch: Batch) -> None:
        stories, rows = batch.stories, batch.rows
        with self.engine.begin() as connection:
            first_id = (connection.scalar(select(func.max(schema.stories.c.id))) or 0) + 1
            first_item = (connection.scalar(select(func.max(schema.items.c.id))) or 0) + 1
            # Explicit ids tie each item to its story and its index keys without reading them
            # back; each item has its own story (the lookups, not the bulk data, exercise
            # cross-post merging).
            for index, (story, row) in enumerate(zip(stories, rows, strict=True)):
                story["id"] = row["story_id"] = first_id + index
                row["id"] = first_item + index
            connection.execute(schema.stories.insert(), stories)
            connection.execute(schema.items.insert(), rows)
            # The cross-post candidate index, as the poll path writes it (store.stories.
            # save_story_keys): without it a story match would find no candidate at all.
            connection.execute(
                schema.story_keys.insert(),
                [
                    {"key": key, "item_id": row["id"], "published": row["published"]}
                    | ({"member_id": row["member_id"]} if KEYS_HOLD_MEMBER else {})
                    for row, keys in zip(rows, batch.keys, strict=True)
                    for key in keys
                ],
            )
            if connection.dialect.name == "postgresql":
                # Explicit ids do not advance the sequences the poll path's inserts draw from.
                for table in ("stories", "items"):
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"
                        )
                    )
        self.items += len(rows)
        self.titles.extend(batch.titles)


# --- measurements -----------------------------------------------------------------------


def median_ms(action: Callable[[], object], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def lookup_items(grower: Grower, count: int, rng: random.Random) -> list[Item]:
    """New items whose titles match stored ones (so candidates are found), URLs new."""
    chosen = [rng.choice(grower.titles) for _ in range(count)]
    items = []
    for number, (title, published, _) in enumerate(chosen):
        items.append(
            Item(
                member_id="bulk0000",
                source_url="https://bulk0000.example.org/feed/",
                key=f"guid:lookup-{number}",
                url=f"https://elsewhere.example.org/{number}/",
                title=title,
                content_html="<p>" + title + " " + " ".join(_WORDS[:30]) + "</p>",
                summary="",
                published=published + timedelta(hours=3),
                updated=published + timedelta(hours=3),
                date_from_source=True,
                content_hash=f"lookup{number}",
            )
        )
    return items


def lookup_plan(grower: Grower, rng: random.Random) -> list[tuple[Item, int]]:
    """The LOOKUPS new items to look up, each with the source whose keys are probed."""
    items = lookup_items(grower, LOOKUPS, rng)
    return [(item, rng.choice(grower.titles)[2]) for item in items]


def time_lookup(
    store: Store, connection: Connection, item: Item, source_id: int
) -> tuple[float, float]:
    """One dedup lookup (the (source, key) probe) and one story match, in seconds."""
    started = time.perf_counter()
    connection.execute(
        select(schema.items.c.id, schema.items.c.content_hash).where(
            schema.items.c.source_id == source_id, schema.items.c.key == item.key
        )
    ).one_or_none()
    probed = time.perf_counter()
    store._find_story(connection, item, sql_only=True)
    return probed - started, time.perf_counter() - probed


def measure_lookups(store: Store, grower: Grower, rng: random.Random) -> tuple[float, float]:
    timings = []
    with store.engine.connect() as connection:
        for item, source_id in lookup_plan(grower, rng):
            timings.append(time_lookup(store, connection, item, source_id))
    return (
        statistics.median(key for key, _ in timings) * 1000,
        statistics.median(match for _, match in timings) * 1000,
    )


def measure_interleaved(
    opened: dict[int, tuple[Store, Grower]], seed: int
) -> dict[int, tuple[float, float, float]]:
    """latest-50, dedup lookup and story match at every size, in turn (the sizes' order
    rotated every round), so that the load of other work on the machine, which moves single
    runs by several times, falls on every size alike: the ratios between sizes are then
    measured within one stretch of time. Medians, in ms, per size."""
    sizes = list(opened)
    plans = {
        size: lookup_plan(grower, random.Random(f"{seed}-{size}"))
        for size, (_, grower) in opened.items()
    }
    latest: dict[int, list[float]] = {size: [] for size in sizes}
    keys: dict[int, list[float]] = {size: [] for size in sizes}
    matches: dict[int, list[float]] = {size: [] for size in sizes}
    with contextlib.ExitStack() as stack:
        connections = {
            size: stack.enter_context(store.engine.connect()) for size, (store, _) in opened.items()
        }
        for store, _ in opened.values():
            store.latest_stories(50)  # warm the caches: steady state is what matters
        for round_number in range(max(LOOKUPS, LATEST_RUNS)):
            turn = round_number % len(sizes)
            for size in sizes[turn:] + sizes[:turn]:
                store = opened[size][0]
                if round_number < LATEST_RUNS:
                    started = time.perf_counter()
                    store.latest_stories(50)
                    latest[size].append(time.perf_counter() - started)
                if round_number < LOOKUPS:
                    item, source_id = plans[size][round_number]
                    key, match = time_lookup(store, connections[size], item, source_id)
                    keys[size].append(key)
                    matches[size].append(match)
    return {
        size: (
            statistics.median(latest[size]) * 1000,
            statistics.median(keys[size]) * 1000,
            statistics.median(matches[size]) * 1000,
        )
        for size in sizes
    }


def poll_cycle(store: Store, config: Config, repeats: int) -> tuple[float, float]:
    """First poll (all new) then an unchanged re-poll of the cycle corpus; wall seconds,
    the median of `repeats` cycles (other work on the machine moves single ones a lot)."""
    cycles = [_poll_cycle(store, config) for _ in range(repeats)]
    return (
        statistics.median(first for first, _ in cycles),
        statistics.median(again for _, again in cycles),
    )


def _poll_cycle(store: Store, config: Config) -> tuple[float, float]:

    async def once() -> float:
        started = time.perf_counter()
        async with Fetcher() as fetcher:
            reports = await poll_all(config, store, fetcher)
        failed = [report for report in reports if report.error]
        if failed:
            raise RuntimeError(f"poll cycle failed: {failed[0].error}")
        return time.perf_counter() - started

    store.sync_config(config)
    first = asyncio.run(once())
    again = asyncio.run(once())
    _forget_cycle(store, config)
    return first, again


def _forget_cycle(store: Store, config: Config) -> None:
    """Remove what the cycle stored, so every size polls the same corpus as new."""
    urls = [source.url for member in config.members for source in member.sources]
    with store.engine.begin() as connection:
        ids = list(
            connection.scalars(select(schema.sources.c.id).where(schema.sources.c.url.in_(urls)))
        )
        story_ids = list(
            connection.scalars(
                select(schema.items.c.story_id).where(schema.items.c.source_id.in_(ids))
            )
        )
        connection.execute(delete(schema.items).where(schema.items.c.source_id.in_(ids)))
        orphans = [
            story_id
            for story_id in set(story_ids)
            if connection.scalar(select(func.count()).where(schema.items.c.story_id == story_id))
            == 0
        ]
        if orphans:
            connection.execute(delete(schema.stories).where(schema.stories.c.id.in_(orphans)))
        connection.execute(
            update(schema.sources)
            .where(schema.sources.c.id.in_(ids))
            .values(etag=None, last_modified=None, body_hash=None)
        )


def explain_latest(store: Store) -> str:
    engine = store.engine
    query = (
        select(schema.stories.c.id, schema.stories.c.uid)
        .order_by(schema.stories.c.published.desc(), schema.stories.c.id.desc())
        .limit(50)
    )
    compiled = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.execute(text(prefix + compiled)).all()
    lines = [" ".join(str(part) for part in row[-1:]) for row in rows]
    return compiled.replace("\n", " ") + "\n    " + "\n    ".join(lines)


# --- backends ---------------------------------------------------------------------------


@contextmanager
def sqlite_database(workdir: Path) -> Iterator[str]:
    yield f"sqlite:///{workdir / 'growth.db'}"


@contextmanager
def postgres_database() -> Iterator[str]:
    name = f"aggregator_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_problem() -> str | None:
    engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    except ImportError as exc:
        return f"no driver ({exc})"
    finally:
        engine.dispose()


KEPT_POSTGRES = "aggregator_bench_kept_{size}"  # --keep: PostgreSQL's kept databases


def kept_state(keep: Path, backend: str, size: int) -> Path:
    """Where --keep holds the grower's state (the lookups' titles) for a kept database."""
    return keep / f"{backend}-{size}.state"


def kept_sqlite(keep: Path, size: int) -> Path:
    return keep / f"growth-{size}.db"


def _admin() -> Engine:
    return create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _kept_postgres_exists(size: int) -> bool:
    admin = _admin()
    try:
        with admin.connect() as connection:
            return bool(
                connection.scalar(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"),
                    {"name": KEPT_POSTGRES.format(size=size)},
                )
            )
    finally:
        admin.dispose()


def _copy_postgres(source: str, target: str) -> None:
    """CREATE DATABASE … TEMPLATE: a file-level copy, which needs `source` idle."""
    admin = _admin()
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{source}"'))
    finally:
        admin.dispose()


def is_kept(keep: Path, backend: str, size: int) -> bool:
    if not kept_state(keep, backend, size).exists():
        return False
    if backend == "sqlite":
        return kept_sqlite(keep, size).exists()
    return _kept_postgres_exists(size)


def keep_database(store: Store, grower: Grower, keep: Path, backend: str, size: int) -> Store:
    """Keep a copy of the database as grown (before any measurement writes to it): an SQLite
    file in `keep` (SQLite's backup API: consistent whatever is in the WAL), a PostgreSQL
    database named KEPT_POSTGRES. Returns the store to go on with."""
    url = store.engine.url.render_as_string(hide_password=False)
    database = str(store.engine.url.database)
    if backend == "sqlite":
        target = kept_sqlite(keep, size)
        part = target.with_suffix(".part")
        source, copy = sqlite3.connect(database), sqlite3.connect(part)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        part.replace(target)
    else:
        store.close()
        _copy_postgres(database, KEPT_POSTGRES.format(size=size))
        store = Store.open(url)
    kept_state(keep, backend, size).write_bytes(pickle.dumps(grower.state()))
    return store


def open_kept(store: Store, keep: Path, backend: str, size: int) -> Store:
    """Replace the working database by the one kept for `size`; opening it upgrades a
    database kept at an older schema revision."""
    url = store.engine.url.render_as_string(hide_password=False)
    database = str(store.engine.url.database)
    store.close()
    if backend == "sqlite":
        shutil.copyfile(kept_sqlite(keep, size), database)
        for suffix in ("-wal", "-shm"):
            Path(database + suffix).unlink(missing_ok=True)
    else:
        _copy_postgres(KEPT_POSTGRES.format(size=size), database)
    return Store.open(url)


def run_backend(
    backend: str,
    url: str,
    sizes: Sequence[int],
    config: Config | None,
    seed: int,
    repeats: int,
    words: int = VOCABULARY_SIZE,
    keep: Path | None = None,
    rounds: int = 1,
) -> tuple[list[Row], str]:
    """Grow the database through `sizes` and measure at each. With `keep`, a size whose
    database is kept there (or, for PostgreSQL, as KEPT_POSTGRES) is copied in instead of
    grown, and a size grown here is kept for the next run (1M takes half an hour to grow)."""
    store = Store.open(url)
    rows: list[Row] = []
    try:
        grower = Grower(store.engine, seed, words)
        grower.setup()
        for size in sizes:
            remaining = [other for other in sizes if other >= size]
            if keep is not None and config is None and all(
                is_kept(keep, backend, other) for other in remaining
            ):
                # Nothing to run on a working copy: measure_kept reads the kept databases.
                rows.append(Row(backend, size, *(float("nan"),) * 6))
                continue
            if keep is not None and is_kept(keep, backend, size):
                started = time.perf_counter()
                store = open_kept(store, keep, backend, size)
                say(f"  {backend} {size:>9,} items: kept database, opened in "
                    f"{time.perf_counter() - started:.0f} s")  # fmt: skip
                grower = Grower(store.engine, seed, words)
                grower.restore(pickle.loads(kept_state(keep, backend, size).read_bytes()))
                grow = float("nan")
            else:
                grow = grower.grow_to(size)
                if keep is not None:
                    store = keep_database(store, grower, keep, backend, size)
                    grower.engine = store.engine
            if backend == "postgresql":
                with store.engine.connect() as connection:
                    connection.execute(text("ANALYZE"))
                    connection.commit()
            # Each size's own lookups, so that a size measures the same items whether or
            # not the smaller sizes were measured in the same run (--sizes, --keep).
            rng = random.Random(f"{seed}-{size}")
            if keep is None:
                store.latest_stories(50)  # warm the cache: steady state is what matters
                latest = median_ms(lambda opened=store: opened.latest_stories(50), LATEST_RUNS)
                key_ms, match_ms = measure_lookups(store, grower, rng)
            else:  # measured below, every size in turn
                latest = key_ms = match_ms = float("nan")
            first, again = (
                poll_cycle(store, config, repeats) if config is not None
                else (float("nan"), float("nan"))
            )  # fmt: skip
            rows.append(Row(backend, size, latest, key_ms, match_ms, first, again, grow))
            say(
                f"  {backend} {size:>9,} items: latest-50 {latest:.2f} ms, key lookup "
                f"{key_ms:.3f} ms, story match {match_ms:.3f} ms, poll cycle {first:.2f} s "
                f"first / {again:.2f} s again (grown in {grow:.0f} s)"
            )
        plan = explain_latest(store)
    finally:
        store.close()
    if keep is not None:
        interleaved = measure_kept(
            keep, backend, url, [row.items for row in rows], seed, words, rounds
        )
        rows = [
            dataclasses.replace(row, latest_ms=latest, key_lookup_ms=key, story_match_ms=match)
            for row in rows
            for latest, key, match in [interleaved[row.items]]
        ]
        for size, (latest, key, match) in interleaved.items():
            say(
                f"  {backend} {size:>9,} items, sizes in turn: latest-50 {latest:.2f} ms, "
                f"key lookup {key:.3f} ms, story match {match:.3f} ms"
            )
    return rows, plan


def measure_kept(
    keep: Path,
    backend: str,
    url: str,
    sizes: Sequence[int],
    seed: int,
    words: int,
    rounds: int = 1,
) -> dict[int, tuple[float, float, float]]:
    """measure_interleaved over the kept databases of `sizes` (read only: the lookups write
    nothing), each opened where it is kept, `rounds` times: each round's medians are printed
    with its own smallest -> largest ratios, and the median over the rounds is returned, so
    that one round disturbed by other work on the machine shows as the outlier it is."""
    opened: dict[int, tuple[Store, Grower]] = {}
    try:
        for size in sizes:
            if backend == "sqlite":
                kept_url = f"sqlite:///{kept_sqlite(keep, size)}"
            else:
                kept_url = url.rsplit("/", 1)[0] + "/" + KEPT_POSTGRES.format(size=size)
            started = time.perf_counter()
            store = Store.open(kept_url)  # upgrades a database kept at an older revision
            say(f"  {backend} {size:>9,} items: kept database opened in "
                f"{time.perf_counter() - started:.1f} s")  # fmt: skip
            if backend == "postgresql":
                with store.engine.connect() as connection:
                    connection.execute(text("ANALYZE"))
                    connection.commit()
            grower = Grower(store.engine, seed, words)
            grower.restore(pickle.loads(kept_state(keep, backend, size).read_bytes()))
            opened[size] = (store, grower)
        measured = []
        for number in range(1, rounds + 1):
            figures = measure_interleaved(opened, seed)
            measured.append(figures)
            if rounds > 1:
                say(f"  {backend} round {number}/{rounds}: {round_line(figures)}")
        return {
            size: (
                statistics.median(figures[size][0] for figures in measured),
                statistics.median(figures[size][1] for figures in measured),
                statistics.median(figures[size][2] for figures in measured),
            )
            for size in opened
        }
    finally:
        for store, _ in opened.values():
            store.close()


def round_line(figures: dict[int, tuple[float, float, float]]) -> str:
    """One round's story match and key lookup per size (ms) and smallest -> largest ratios."""
    sizes = sorted(figures)
    smallest, largest = figures[sizes[0]], figures[sizes[-1]]
    matches = " / ".join(f"{figures[size][2]:.3f}" for size in sizes)
    lookups = " / ".join(f"{figures[size][1]:.3f}" for size in sizes)
    return (
        f"story match {matches} ms (×{largest[2] / smallest[2]:.2f}), "
        f"key lookup {lookups} ms (×{largest[1] / smallest[1]:.2f}), "
        f"latest-50 ×{largest[0] / smallest[0]:.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Database growth benchmark (bench/README.md).")
    parser.add_argument("--smoke", action="store_true", help="SQLite only, 2k and 10k items")
    parser.add_argument("--sizes", type=int, nargs="+", help=f"default: {SIZES}")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-nginx", action="store_true", help="serve with FixtureServer")
    parser.add_argument("--seed", type=int, default=corpus.DEFAULT_SEED)
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep each size's database (SQLite: in DIR; PostgreSQL: as "
        f"{KEPT_POSTGRES.format(size='SIZE')}) and reuse it on the next run",
    )
    parser.add_argument(
        "--no-cycle", action="store_true", help="skip the poll cycles (lookups only)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --keep: measure the kept sizes in turn this many times; each round is "
        "printed and the table gives the median over the rounds",
    )
    parser.add_argument(
        "--vocabulary",
        type=int,
        default=VOCABULARY_SIZE,
        help=f"headline words (default {VOCABULARY_SIZE:,}; 35: the old worst case)",
    )
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    exit_on_sigterm()
    sizes = tuple(args.sizes or (SMOKE_SIZES if args.smoke else SIZES))
    cycle_sites = SMOKE_CYCLE_SITES if args.smoke else CYCLE_SITES
    say(f"machine: {machine_line()}")
    say(f"bulk headlines: a vocabulary of {args.vocabulary:,} words")
    workdir = Path(tempfile.mkdtemp(prefix="bench-growth-"))
    try:
        root = workdir / "corpus"
        manifest = corpus.write_corpus(root, cycle_sites, args.seed)
        with StaticServer(root, use_nginx=not args.no_nginx, hosts=cycle_sites) as server:
            say(f"server: {server.description}")
            say(
                f"poll cycle corpus: {manifest.sites} sources, {manifest.items} items, "
                f"{manifest.bytes / 1e6:.1f} MB"
            )
            config = load_config(corpus.write_feeds_yaml(root, server.base_urls))
            backends: list[tuple[str, Callable[[], Any]]] = []
            if not args.no_sqlite:
                backends.append(("sqlite", lambda: sqlite_database(workdir)))
            if args.smoke or args.no_postgres:
                say("postgresql: skipped (--smoke or --no-postgres)")
            else:
                problem = postgres_problem()
                if problem is None:
                    backends.append(("postgresql", postgres_database))
                else:
                    say(f"postgresql: skipped, {POSTGRES_ADMIN_URL} not reachable: {problem}")
            results: list[Row] = []
            plans: dict[str, str] = {}
            for backend, database in backends:
                with database() as url:
                    rows, plan = run_backend(
                        backend,
                        url,
                        sizes,
                        None if args.no_cycle else config,
                        args.seed,
                        1 if args.smoke else CYCLES,
                        args.vocabulary,
                        args.keep,
                        max(1, args.rounds),
                    )
                results.extend(rows)
                plans[backend] = plan
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    say(
        "\n"
        + table(
            [
                "backend",
                "items",
                "latest-50 ms",
                "key lookup ms",
                "story match ms",
                "poll cycle s (new)",
                "poll cycle s (304)",
            ],
            [
                [
                    r.backend,
                    f"{r.items:,}",
                    f"{r.latest_ms:.2f}",
                    f"{r.key_lookup_ms:.3f}",
                    f"{r.story_match_ms:.3f}",
                    f"{r.first_cycle_s:.2f}",
                    f"{r.again_cycle_s:.2f}",
                ]
                for r in results
            ],
        )
    )
    for backend in plans:
        rows = [row for row in results if row.backend == backend]
        smallest, largest = rows[0], rows[-1]
        say(
            f"\n{backend}: {smallest.items:,} -> {largest.items:,} items: latest-50 "
            f"×{largest.latest_ms / smallest.latest_ms:.2f}, story match "
            f"×{largest.story_match_ms / smallest.story_match_ms:.2f}, key lookup "
            f"×{largest.key_lookup_ms / smallest.key_lookup_ms:.2f}, poll cycle "
            f"×{largest.first_cycle_s / smallest.first_cycle_s:.2f} (target: within 2×)"
        )
        say(f"query plan of latest-50 ({backend}):\n    {plans[backend]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
