"""Storage: the database behind the pipeline (SQLAlchemy 2.x; SQLite by default, PostgreSQL too).

`Store` is one facade composed of per-domain mixins, each in its own module:

  base.py        engine, SQLite pragmas, schema check and upgrade on open, singleton and
                 write locks (StoreBase, which every mixin builds on)
  sources.py     feeds.yaml sync, what a source remembers between polls, discovered feeds
  moderation.py  hiding and unhiding stories, the feeds.yaml `hidden:` list
  items.py       a poll's writes: items, cross-post matching, stories, source health
  new_items.py   a poll's decided new items written in a few multi-row statements
  entry_digests.py  the entry digests a changed feed's poll compares its entries with
  scheduling.py  next polls, leases for workers, host pauses
  retention.py   pruning old items
  health.py      source health and alert records for /status and alerts, data_version
  published.py   reading stories for the publishers and the API
  websub.py      WebSub subscription rows
  stories.py     the cross-post candidate index, which item speaks for a story, story details
  live_candidates.py  that index held in memory by a writing process, read once, kept current
  candidate_index.py  the pure in-memory index live_candidates.py keeps (no SQL)
  corrections.py staff's keep_apart:/merge: corrections, stored and applied to stories
  writer.py      a poll's intents applied in batches by the one writer thread (StoreWriter)

A new method goes in the mixin module of its domain (or a new one added here), never in
this file. Nothing outside this package writes SQL; this package never fetches, parses
or renders, and returns the record types of aggregator.models, never ORM rows.
"""

from __future__ import annotations

from aggregator.store.base import StoreBase
from aggregator.store.corrections import CorrectionsMixin
from aggregator.store.entry_digests import EntryDigestsMixin
from aggregator.store.health import HealthMixin
from aggregator.store.items import ItemsMixin
from aggregator.store.moderation import ModerationMixin
from aggregator.store.published import PublishedMixin
from aggregator.store.retention import RetentionMixin
from aggregator.store.scheduling import SchedulingMixin
from aggregator.store.sources import SourcesMixin
from aggregator.store.stories import StoriesMixin
from aggregator.store.websub import WebSubMixin
from aggregator.store.writer import IntentsMixin
from aggregator.store.writer import StoreWriter


class Store(
    IntentsMixin,
    SourcesMixin,
    ModerationMixin,
    ItemsMixin,
    EntryDigestsMixin,
    SchedulingMixin,
    RetentionMixin,
    HealthMixin,
    PublishedMixin,
    WebSubMixin,
    StoriesMixin,
    CorrectionsMixin,
    StoreBase,
):
    """Everything the pipeline reads from and writes to the database.

    Open one with Store.open(url); close it with close(). Each poll of a source is
    recorded in one transaction, so a crash or a failed poll never leaves half an update
    behind and never removes what was stored before.
    """


__all__ = ["Store", "StoreWriter"]
