"""Reads of the database that only tests make (not shipped: the service never needs them).

Each takes a Store and reads through its engine; nothing here writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select

from aggregator.store import Store
from aggregator.store import schema


def count_items(store: Store) -> int:
    """How many items are stored, across every source."""
    with store.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(schema.items)) or 0


def leases(store: Store) -> dict[str, tuple[str, datetime]]:
    """Sources currently claimed: URL -> (owner, lease expiry)."""
    columns = schema.sources.c
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(columns.url, columns.lease_owner, columns.lease_expires_at).where(
                columns.lease_owner.is_not(None)
            )
        ).all()
    return {row.url: (row.lease_owner, row.lease_expires_at) for row in rows}
