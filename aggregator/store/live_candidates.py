"""The cross-post candidate index held in memory by a writing process (LiveCandidates).

A poll's new items ask it for their candidates instead of the database (stories.py's
candidate_ids, whose answers it gives exactly: candidate_index.py, tested against it): it
is read from story_keys once, told of every key this process writes (save_story_keys_many),
and reads what other processes committed since at each transaction's first lookup. Where it
does not cover (a database bigger than MAX_LIVE_ENTRIES, a window outside what was read),
it answers None and the caller asks the database. It must never decide what matches
(dedupe.py does) and never write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from typing import TypeVar
from typing import cast
from weakref import WeakKeyDictionary

from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import bindparam
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select

from aggregator.models import Item
from aggregator.store import schema
from aggregator.store.candidate_index import EVERYTHING
from aggregator.store.candidate_index import CandidateIndex
from aggregator.store.candidate_index import lookup_keys
from aggregator.store.candidate_index import micros

_KEYS = schema.story_keys.c
# Entries (one per item and key) the in-memory index holds at most: about 110 bytes each
# (240,000 entries took 25.9 MB, tracemalloc), so about 22 MB; a database with more, or a
# round that grows past it, is matched by SQL. At 500,000, loading the bench corpus's
# 240,000 rows at once made a 50-changed re-poll's peak PSS 238 MB instead of 99.
MAX_LIVE_ENTRIES = 200_000
_COUNT = select(func.count()).select_from(schema.story_keys)
# Item ids below the highest seen that were not seen (another process's transaction still
# open when this one read, on PostgreSQL, whose sequence hands out ids before commits):
# looked for again at each sync, the newest this many at most.
MAX_ID_GAPS = 2_000
_T = TypeVar("_T")
_ROWS = select(_KEYS.item_id, _KEYS.key, _KEYS.published, _KEYS.member_id)
_NEWER_ROWS = _ROWS.where(_KEYS.item_id > bindparam("after"))
_GAP_ROWS = _ROWS.where(_KEYS.item_id.in_(bindparam("ids", expanding=True)))


class LiveCandidates:
    """candidate_ids answered from memory for the write transactions of one engine.

    The index (candidate_index.CandidateIndex) is filled once from story_keys (all of it,
    when it has at most MAX_LIVE_ENTRIES rows; else it stays empty and every lookup goes to
    SQL), then kept current:
    - this process's writes are told to it by save_story_keys (a replaced item's keys
      replace its entries), so a round's own new items are candidates at once;
    - at the first lookup of each transaction (after its locks: base.lock_for_sources) it
      reads the rows other processes committed since: ids above the highest it holds, and
      the ids it skipped (gaps: a PostgreSQL transaction still open when it last read);
    - a transaction or savepoint rolled back after it wrote through it empties it (the
      next lookup loads it again), so a rolled-back item is never a candidate;
    - this process's retention prune empties it, and an id the store finds gone
      (CANDIDATE_ROWS without it: another process's prune) empties it too; the next
      lookup reads it whole.
    Limits: another process's edit of an item's title or link, and its deletes, are seen
    when the index is next read whole (as above), not at once; on SQLite, an id another
    process frees by deleting the newest items and hands out again before this process's
    next transaction is not read again until then. SQLite deployments have one writing
    process (base.StoreBase.singleton); PostgreSQL's workers hold advisory locks on the
    titles and links they write, so a new item's strongest candidates are never another
    worker's uncommitted rows in either path. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index: CandidateIndex | None = None
        self._stale = True
        self._highest = 0
        self._gaps: set[int] = set()
        self._with_gaps = False
        self._transaction: Any = None
        self._cached: dict[object, object] = {}
        # Connections whose open transaction wrote to or read into the index: their
        # rollback must empty it.
        self._touched: set[Connection] = set()

    def lookup(self, connection: Connection, item: Item) -> list[int] | None:
        """candidate_ids(connection, item) from memory; None where the index does not
        cover (too large, the windows outside it, no transaction): ask the database."""
        keys = lookup_keys(item.title, item.url)
        with self._lock:
            if not self._begin(connection) or self._index is None:
                return None
            return self._index.candidates(keys, item.published, item.member_id)

    def per_transaction(self, connection: Connection, read: Callable[[Connection], _T]) -> _T:
        """`read(connection)`, read once per transaction (for small tables staff write,
        such as story_corrections)."""
        with self._lock:
            if self._begin(connection) and read in self._cached:
                return cast(_T, self._cached[read])
        value = read(connection)
        with self._lock:
            if self._transaction is connection.get_transaction():
                self._cached[read] = value
        return value

    def note(
        self,
        connection: Connection,
        item_id: int,
        member_id: str,
        published: datetime,
        keys: Sequence[str],
    ) -> None:
        """save_story_keys wrote these keys for the item (in place of its old ones)."""
        with self._lock:
            if self._index is None or self._stale:
                return
            self._touched.add(connection)
            self._index.add(item_id, member_id, published, keys)
            self._gaps.discard(item_id)
            # Before this transaction's first read of others' rows, ids below this one may
            # be theirs, not yet read: the highest id read moves only after that read.
            if self._transaction is connection.get_transaction():
                self._passed(item_id)

    def gone(self, item_ids: Iterable[int]) -> None:
        """Items the index gave that are no longer stored: dropped now; read whole next."""
        with self._lock:
            if self._index is not None:
                self._index.discard(item_ids)
        self.invalidate()

    def invalidate(self) -> None:
        """Items were deleted (retention): read the index whole at the next lookup. A
        deleted entry must not stay, even unreturned: it would hold a place under a
        key's cap that a stored item has in the database's answer."""
        with self._lock:
            self._stale = True
            self._index = None
            self._transaction = None

    def entries(self) -> int:
        with self._lock:
            return 0 if self._index is None else len(self._index)

    def _begin(self, connection: Connection) -> bool:
        """Bring the index up to date for `connection`'s transaction, once per transaction.
        False outside a transaction."""
        transaction = connection.get_transaction()
        if transaction is None:
            return False
        if transaction is self._transaction:
            return True
        self._cached.clear()
        self._touched.add(connection)
        self._with_gaps = connection.dialect.name == "postgresql"
        if self._stale:
            self._load(connection)
        elif self._index is not None and not self._index.full:
            self._refresh(connection)
        self._transaction = transaction
        return True

    def _load(self, connection: Connection) -> None:
        self._stale = False
        self._gaps.clear()
        # Counted first, then read row by row into the index: never a list of every row
        # (that list, not the index, was most of the memory a load took).
        stored = connection.scalar(_COUNT) or 0
        if stored > MAX_LIVE_ENTRIES:
            self._index = None
            return
        self._index = CandidateIndex(covers_from=EVERYTHING, max_entries=MAX_LIVE_ENTRIES)
        self._highest = 0
        if not stored:  # a new database: nothing to read
            return
        highest = [0]

        def rows() -> Iterator[tuple[int, str, int, str]]:
            for row in connection.execute(_ROWS):
                highest[0] = max(highest[0], row.item_id)
                yield row.item_id, row.key, micros(row.published), row.member_id

        self._index.load(rows())
        if self._index.full:  # grown past the count between the two reads
            self._index = None
            return
        self._highest = highest[0]
        if self._with_gaps:
            held = set(self._index.item_ids())
            self._gaps = {
                number
                for number in range(max(1, self._highest - MAX_ID_GAPS), self._highest)
                if number not in held
            }

    def _refresh(self, connection: Connection) -> None:
        assert self._index is not None
        rows = list(connection.execute(_NEWER_ROWS, {"after": self._highest}))
        gaps = sorted(self._gaps)
        for start in range(0, len(gaps), _GAP_CHUNK):
            rows += connection.execute(_GAP_ROWS, {"ids": gaps[start : start + _GAP_CHUNK]})
        found: dict[int, tuple[str, datetime, list[str]]] = {}
        for row in rows:
            found.setdefault(row.item_id, (row.member_id, row.published, []))[2].append(row.key)
        for item_id, (member_id, published, keys) in found.items():
            self._index.add(item_id, member_id, published, keys)
            self._gaps.discard(item_id)
        for item_id in sorted(found):
            self._passed(item_id)

    def _passed(self, item_id: int) -> None:
        """`item_id` is read or written: ids between the highest before and it that are
        not held are gaps (PostgreSQL; SQLite hands ids out under its one write lock, in
        commit order, so it has none to wait for)."""
        if item_id <= self._highest:
            return
        if self._with_gaps and self._index is not None:
            self._gaps.update(
                number
                for number in range(max(self._highest + 1, item_id - MAX_ID_GAPS), item_id)
                if number not in self._index
            )
            if len(self._gaps) > MAX_ID_GAPS:
                self._gaps = set(sorted(self._gaps)[-MAX_ID_GAPS:])
        self._highest = item_id

    def _ended(self, connection: Connection, *, rolled_back: bool) -> None:
        with self._lock:
            if connection not in self._touched:
                return
            self._touched.discard(connection)
            if rolled_back:
                self._stale = True
                self._index = None
            self._transaction = None
            self._cached.clear()

    def _savepoint_rolled_back(self, connection: Connection) -> None:
        with self._lock:
            if connection in self._touched:
                self._stale = True
                self._index = None
                self._transaction = None


# IN lists of the gaps read again (well under every database's parameter limit).
_GAP_CHUNK = 500
_LIVE: WeakKeyDictionary[Engine, LiveCandidates] = WeakKeyDictionary()
_LIVE_GUARD = threading.Lock()


def live_candidates(engine: Engine) -> LiveCandidates:
    """The engine's LiveCandidates, made on first use. Kept per engine (not per Store
    method call) because save_story_keys, which sees only a connection, must reach it."""
    with _LIVE_GUARD:
        live = _LIVE.get(engine)
        if live is None:
            live = _LIVE[engine] = LiveCandidates()
            event.listen(engine, "commit", lambda conn: live._ended(conn, rolled_back=False))
            event.listen(engine, "rollback", lambda conn: live._ended(conn, rolled_back=True))
            event.listen(
                engine,
                "rollback_savepoint",
                lambda conn, _name, _context: live._savepoint_rolled_back(conn),
            )
        return live


def forget_deleted_items(engine: Engine) -> None:
    """Items were deleted through `engine` (and committed): its LiveCandidates, if any,
    reads story_keys whole at its next lookup."""
    live = _LIVE.get(engine)
    if live is not None:
        live.invalidate()


def noted_live_candidates(engine: Engine) -> LiveCandidates | None:
    """The engine's LiveCandidates if a lookup made one (writes alone never do)."""
    return _LIVE.get(engine)
