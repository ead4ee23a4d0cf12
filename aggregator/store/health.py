"""Store methods for health: source health, standing alerts, liveness, data version.

Read by the status page, the alert check and /healthz; the rules that judge health live
in aggregator.service.status and aggregator.service.alerts, never here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from aggregator.models import AlertRecord
from aggregator.models import SourceHealth
from aggregator.store import schema
from aggregator.store.base import StoreBase


class HealthMixin(StoreBase):
    """Source health and alert records, and the cheap reads the web server polls."""

    def source_health(self) -> list[SourceHealth]:
        """Every source's health and counts, for /status and alerts."""
        columns = schema.sources.c
        counts = (
            select(
                schema.items.c.source_id,
                func.count().label("item_count"),
                func.max(schema.items.c.published).label("newest_published"),
            )
            .group_by(schema.items.c.source_id)
            .subquery()
        )
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    schema.sources,
                    counts.c.item_count,
                    counts.c.newest_published,
                )
                .outerjoin(counts, counts.c.source_id == columns.id)
                .order_by(columns.id)
            ).all()
        return [
            SourceHealth(
                url=row.url,
                member_id=row.member_id,
                kind=row.kind,
                last_polled_at=row.last_polled_at,
                last_success_at=row.last_success_at,
                last_error=row.last_error,
                last_warning=row.last_warning,
                consecutive_failures=row.consecutive_failures,
                failing_since=row.failing_since,
                items=row.item_count or 0,
                last_new_item_at=row.last_new_item_at,
                newest_item_published=_aware(row.newest_published),
                next_poll_at=row.next_poll_at,
                moved_to=row.moved_to,
                last_status=row.last_status,
            )
            for row in rows
        ]

    def alert_records(self) -> dict[tuple[str, str], AlertRecord]:
        """Alerts sent and still standing, by (kind, subject)."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(schema.alert_state)).all()
        return {
            (row.kind, row.subject): AlertRecord(
                kind=row.kind, subject=row.subject, detail=row.detail, sent_at=row.sent_at
            )
            for row in rows
        }

    def save_alert_records(
        self, added: Iterable[AlertRecord], removed: Iterable[tuple[str, str]]
    ) -> None:
        table = schema.alert_state
        with self.engine.begin() as connection:
            for kind, subject in removed:
                connection.execute(
                    table.delete().where(table.c.kind == kind, table.c.subject == subject)
                )
            for record in added:
                connection.execute(
                    table.delete().where(
                        table.c.kind == record.kind, table.c.subject == record.subject
                    )
                )
                connection.execute(
                    table.insert().values(
                        kind=record.kind,
                        subject=record.subject,
                        detail=record.detail,
                        sent_at=record.sent_at,
                    )
                )

    def data_version(self) -> tuple[int, int]:
        """Changes whenever what is published may have changed; one cheap read."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(
                    schema.schema_info.c.data_version,
                    select(func.max(schema.items.c.id)).scalar_subquery(),
                )
            ).one()
        return int(row[0] or 0), int(row[1] or 0)

    def healthy(self) -> bool:
        """Whether the database answers a query now (for /healthz)."""
        try:
            with self.engine.connect() as connection:
                connection.scalar(select(schema.schema_info.c.version))
        except SQLAlchemyError:
            return False
        return True


def _aware(value: Any) -> datetime | None:
    """An aggregate over a UTCDateTime column comes back untyped on SQLite: make it aware."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
