"""The cross-post candidate index held in memory: story_keys' rows, looked up without SQL.

A new item's candidates are the other members' items sharing one of its candidate keys
(dedupe.candidate_keys) within the key's window, ranked and capped. stories.candidate_ids
asks the database (one statement of range reads over ix_story_keys_candidates); a
CandidateIndex answers the same question from rows it was given, in plain code: each key's
entries are kept sorted as the covering index orders them (published, member, item id), so
a lookup is a bisection per key and a walk of at most the cap, whatever the table's size.
The ranking and the caps are written once here and used by both.

This module must never run SQL or read a clock (the store fills it: stories.py), never
decide what matches (dedupe.py does), and never answer for a time it was not given the
rows of: `candidates` returns None there, and the caller asks the database.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from bisect import insort
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from aggregator.dedupe import CROSS_POST_WINDOW
from aggregator.dedupe import LINK_WINDOW
from aggregator.dedupe import candidate_keys

# Items read per candidate key (the nearest in time first): a generic title or a common
# word cannot make one lookup read the whole window. Half on each side of the item's date.
MAX_CANDIDATES_PER_KEY = 50
# Candidates the rule is run on per new item, the best ranked (see rank_candidates):
# without this cap a title of eight common words gave the rule hundreds of candidates.
MAX_CANDIDATES = 20
# How a shared key ranks a candidate: a shared article link first (the strongest evidence),
# then the same title key, then distinctive title words (counted).
URL_RANK, TITLE_RANK, TOKEN_RANK = 2, 1, 0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# "Covers every date": lower than any date's microseconds (datetime.min is year 1).
EVERYTHING = -(2**63)


@dataclass(frozen=True)
class LookupKey:
    """One candidate key of a new item, with how a shared one ranks and its window."""

    key: str
    rank: int
    window: timedelta


@dataclass(frozen=True)
class Found:
    """One candidate as the per-key reads found it: how many keys it shares with the new
    item, the best rank among them, and its date."""

    item_id: int
    shared: int
    rank: int
    published: datetime


def lookup_keys(title: str, url: str | None) -> list[LookupKey]:
    """The keys a new item's candidates are looked up by, once each, in candidate_keys'
    order (the link window for links, CROSS_POST_WINDOW for the others)."""
    found = []
    for key in dict.fromkeys(candidate_keys(title, url)):
        if key.startswith("url\n"):
            found.append(LookupKey(key, URL_RANK, LINK_WINDOW))
        else:
            rank = TITLE_RANK if key.startswith("title\n") else TOKEN_RANK
            found.append(LookupKey(key, rank, CROSS_POST_WINDOW))
    return found


def rank_candidates(found: Iterable[Found], at: datetime) -> list[int]:
    """The MAX_CANDIDATES best item ids: a shared link, then the same title, then the most
    keys shared, then the nearest in time to `at`, then the lowest id."""
    ranked = sorted(
        found, key=lambda row: (-row.rank, -row.shared, abs(row.published - at), row.item_id)
    )
    return [row.item_id for row in ranked[:MAX_CANDIDATES]]


def micros(moment: datetime) -> int:
    """A UTC-aware datetime as whole microseconds since 1970 (what the index sorts by)."""
    return (moment - _EPOCH) // _MICROSECOND


def _moment(value: int) -> datetime:
    return _EPOCH + value * _MICROSECOND


# One entry of a key: (published in microseconds, member id, item id), the order of the
# covering index ix_story_keys_candidates after its key column.
_Entry = tuple[int, str, int]


class CandidateIndex:
    """story_keys' rows from `covers_from` on (microseconds; EVERYTHING for all), held by
    key. Not thread-safe: its owner (live_candidates.LiveCandidates) serializes access.

    Once it holds more than `max_entries` entries it is `full`: it empties itself and
    answers nothing, so memory stays bounded and the database answers instead.
    """

    def __init__(self, *, covers_from: int, max_entries: int) -> None:
        self.covers_from = covers_from
        self.max_entries = max_entries
        self.full = False
        self._by_key: dict[str, list[_Entry]] = {}
        # Each item's entries, so that its keys can be replaced or dropped.
        self._items: dict[int, tuple[int, str, tuple[str, ...]]] = {}
        self._entries = 0

    def __len__(self) -> int:
        """Entries held (one per item and key)."""
        return self._entries

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def item_ids(self) -> list[int]:
        return list(self._items)

    def keys_of(self, item_id: int) -> tuple[int, str, tuple[str, ...]] | None:
        """(published in microseconds, member id, keys) of an item held, else None."""
        return self._items.get(item_id)

    def load(self, rows: Iterable[tuple[int, str, int, str]]) -> None:
        """Add many (item id, key, published µs, member id) rows at once (sorted once per
        key, not inserted one by one); an item must not be held already."""
        grouped: dict[int, tuple[int, str, list[str]]] = {}
        for item_id, key, published, member_id in rows:
            held = grouped.get(item_id)
            if held is None:
                held = grouped[item_id] = (published, sys.intern(member_id), [])
            held[2].append(key)
        touched: set[str] = set()
        for item_id, (published, member_id, keys) in grouped.items():
            assert item_id not in self._items
            self._items[item_id] = (published, member_id, tuple(keys))
            for key in keys:
                self._by_key.setdefault(key, []).append((published, member_id, item_id))
                touched.add(key)
            self._entries += len(keys)
        for key in touched:
            self._by_key[key].sort()
        self._check_size()

    def add(self, item_id: int, member_id: str, published: datetime, keys: Sequence[str]) -> None:
        """Hold the item under `keys` (in place of what it was held under, if anything)."""
        self.discard([item_id])
        if self.full:
            return
        at = micros(published)
        member = sys.intern(member_id)
        unique = tuple(dict.fromkeys(keys))
        for key in unique:
            insort(self._by_key.setdefault(key, []), (at, member, item_id))
        self._items[item_id] = (at, member, unique)
        self._entries += len(unique)
        self._check_size()

    def discard(self, item_ids: Iterable[int]) -> None:
        """Stop holding these items (those not held are ignored)."""
        for item_id in item_ids:
            held = self._items.pop(item_id, None)
            if held is None:
                continue
            at, member, keys = held
            entry = (at, member, item_id)
            for key in keys:
                entries = self._by_key[key]
                entries.pop(bisect_left(entries, entry))
                if not entries:
                    del self._by_key[key]
            self._entries -= len(keys)

    def covers(self, at: datetime, keys: Sequence[LookupKey]) -> bool:
        """Whether every key's window around `at` lies in what the index holds."""
        if self.full:
            return False
        if self.covers_from == EVERYTHING or not keys:
            return True
        widest = max(key.window for key in keys)
        return micros(at - widest) >= self.covers_from

    def candidates(
        self, keys: Sequence[LookupKey], at: datetime, member_id: str
    ) -> list[int] | None:
        """What stories.candidate_ids returns for an item of `member_id` dated `at` with
        these keys, or None when the windows reach outside what the index holds."""
        if not self.covers(at, keys):
            return None
        at_us = micros(at)
        per_side = MAX_CANDIDATES_PER_KEY // 2
        shared: dict[int, list[int]] = {}  # item id -> [keys shared, best rank, published]
        for lookup in keys:
            entries = self._by_key.get(lookup.key)
            if not entries:
                continue
            window = lookup.window // _MICROSECOND
            start = bisect_left(entries, (at_us,))
            # published >= at, nearest first, up to at + window (inclusive)
            taken = 0
            latest = at_us + window
            for index in range(start, len(entries)):
                if taken == per_side:
                    break
                published, member, item_id = entries[index]
                if published > latest:
                    break
                if member != member_id:
                    _count(shared, item_id, lookup.rank, published)
                    taken += 1
            # published < at, nearest first, down to at - window (inclusive)
            taken = 0
            earliest = at_us - window
            for index in range(start - 1, -1, -1):
                if taken == per_side:
                    break
                published, member, item_id = entries[index]
                if published < earliest:
                    break
                if member != member_id:
                    _count(shared, item_id, lookup.rank, published)
                    taken += 1
        return rank_candidates(
            (
                Found(item_id, count, rank, _moment(published))
                for item_id, (count, rank, published) in shared.items()
            ),
            at,
        )

    def _check_size(self) -> None:
        if self._entries > self.max_entries:
            self.full = True
            self._by_key.clear()
            self._items.clear()
            self._entries = 0


def _count(shared: dict[int, list[int]], item_id: int, rank: int, published: int) -> None:
    held = shared.get(item_id)
    if held is None:
        shared[item_id] = [1, rank, published]
        return
    held[0] += 1
    held[1] = max(held[1], rank)
    held[2] = min(held[2], published)
