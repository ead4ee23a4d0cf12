"""Store methods for WebSub: one subscription row per source whose feed names a hub.

aggregator.service.websub drives the subscriptions; this module only keeps their state and must
never talk to a hub.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import select
from sqlalchemy import update

from aggregator.models import WebSubRecord
from aggregator.store import schema
from aggregator.store.base import StoreBase


class WebSubMixin(StoreBase):
    """The WebSub subscription rows aggregator.service.websub reads and drives."""

    def remember_websub_hub(
        self,
        source_url: str,
        hub: str | None,
        topic: str | None,
        *,
        connection: Connection | None = None,
    ) -> None:
        """Note the hub and topic a source's feed advertises now (hub None: none any more).

        A new hub or topic starts a new subscription (state "new") under a fresh callback id
        and secret; a feed that stopped advertising a hub loses its row. Either way the old
        subscription's deliveries find nothing and get 410 Gone, which ends it at the hub.
        On `connection` (the writer's) when given, else in a transaction of its own.
        """
        if connection is not None:
            remember_websub_hub_on(connection, source_url, hub, topic)
            return
        with self.engine.begin() as own:
            remember_websub_hub_on(own, source_url, hub, topic)

    def websub_subscriptions(self) -> list[WebSubRecord]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(schema.websub_subscriptions).order_by(
                    schema.websub_subscriptions.c.source_url
                )
            ).all()
        return [_websub_record(row) for row in rows]

    def websub_subscription(self, callback_id: str) -> WebSubRecord | None:
        table = schema.websub_subscriptions
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table).where(table.c.callback_id == callback_id)
            ).one_or_none()
        return _websub_record(row) if row is not None else None

    def save_websub_state(
        self,
        callback_id: str,
        state: str,
        *,
        error: str | None = None,
        requested_at: datetime | None = None,
        lease_expires_at: datetime | None = None,
        callback_url: str | None = None,
    ) -> None:
        """Move a subscription to `state`; `error` is always written (None clears it), the
        other values only when given."""
        values: dict[str, Any] = {"state": state, "last_error": error}
        if requested_at is not None:
            values["requested_at"] = requested_at
        if lease_expires_at is not None:
            values["lease_expires_at"] = lease_expires_at
        if callback_url is not None:
            values["callback_url"] = callback_url
        table = schema.websub_subscriptions
        with self.engine.begin() as connection:
            connection.execute(
                update(table).where(table.c.callback_id == callback_id).values(values)
            )

    def forget_websub_subscription(self, callback_id: str) -> None:
        table = schema.websub_subscriptions
        with self.engine.begin() as connection:
            connection.execute(table.delete().where(table.c.callback_id == callback_id))


def _websub_record(row: Any) -> WebSubRecord:
    return WebSubRecord(
        source_url=row.source_url,
        callback_id=row.callback_id,
        hub=row.hub,
        topic=row.topic,
        secret=row.secret,
        state=row.state,
        callback_url=row.callback_url,
        requested_at=row.requested_at,
        lease_expires_at=row.lease_expires_at,
        last_error=row.last_error,
    )


def remember_websub_hub_on(
    connection: Connection, source_url: str, hub: str | None, topic: str | None
) -> None:
    """Store.remember_websub_hub on `connection` (the writer's transaction)."""
    table = schema.websub_subscriptions
    row = connection.execute(
        select(table.c.hub, table.c.topic).where(table.c.source_url == source_url)
    ).one_or_none()
    if hub is None or topic is None:
        if row is not None:
            connection.execute(table.delete().where(table.c.source_url == source_url))
        return
    if row is not None and (row.hub, row.topic) == (hub, topic):
        return
    fresh = {
        "callback_id": secrets.token_urlsafe(18),
        "hub": hub,
        "topic": topic,
        # Hex: the spec limits hub.secret to 200 bytes and some hubs mangle symbols.
        "secret": secrets.token_hex(32),
        "state": "new",
        "callback_url": None,
        "requested_at": None,
        "lease_expires_at": None,
        "last_error": None,
    }
    if row is None:
        connection.execute(table.insert().values(source_url=source_url, **fresh))
    else:
        connection.execute(
            update(table).where(table.c.source_url == source_url).values(fresh)
        )
