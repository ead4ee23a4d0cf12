"""Store methods for the entry digests of a source's stored items (issue 14).

A poll of a changed feed reads, for that source only, each stored item's key, content hash
and entry digest (items.entry_digest, written with the item's values in items.py), so that
aggregator.ingest.normalize.normalize_poll skips the entries whose digest is stored; and
gives the items it found unchanged under another digest the new one. Each digest names an
entry that normalizes to its row's key and content hash: this module must never write a
digest to a row whose content hash is not the one the digest was computed beside.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import update

from aggregator.models import StoredEntry
from aggregator.store import schema
from aggregator.store.base import StoreBase


class EntryDigestsMixin(StoreBase):
    """Reading a source's stored entry digests before its changed feed is normalized."""

    def stored_entries(self, source_url: str) -> dict[str, StoredEntry]:
        """The source's stored items by key, with their content hashes and entry digests: a
        poll of a changed feed does not normalize the entries with one of those digests
        (aggregator.ingest.normalize.normalize_poll) and gives its unchanged items theirs
        (decide.items_intent). Read for a changed source only."""
        items = schema.items.c
        query = (
            select(items.key, items.content_hash, items.entry_digest)
            .join(schema.sources, schema.sources.c.id == items.source_id)
            .where(schema.sources.c.url == source_url)
        )
        with self.engine.connect() as connection:
            return {
                row.key: StoredEntry(row.content_hash, row.entry_digest)
                for row in connection.execute(query)
            }


def remember_entry_digests_on(
    connection: Connection, source_url: str, digests: Sequence[tuple[str, str, str]]
) -> None:
    """Give stored items of the source the entry digests of a poll that found them unchanged
    (SourceIntent.entry_digests: key, content hash, digest). Only a row still holding that
    content hash takes it: a digest always names an entry that gives the row's key and
    content hash, which is what lets a poll skip that entry."""
    if not digests:
        return
    items = schema.items.c
    source_id = (
        select(schema.sources.c.id)
        .where(schema.sources.c.url == source_url)
        .scalar_subquery()
    )
    statement = (
        update(schema.items)
        .where(
            items.source_id == source_id,
            items.key == bindparam("item_key"),
            items.content_hash == bindparam("item_hash"),
        )
        .values(entry_digest=bindparam("item_digest"))
    )
    connection.execute(
        statement,
        [
            {"item_key": key, "item_hash": content_hash, "item_digest": digest}
            for key, content_hash, digest in digests
        ],
    )
