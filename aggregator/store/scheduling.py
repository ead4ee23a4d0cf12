"""Store methods for scheduling: next polls, worker leases, and hosts that asked to wait.

The rules that decide when to poll live in aggregator.service.scheduler; this module only keeps
their results and must never decide an interval itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from aggregator.models import HostPause
from aggregator.models import ScheduleRecord
from aggregator.store import schema
from aggregator.store.base import StoreBase
from aggregator.store.base import lock_for_writing

# A source's scheduling state as schedule_records and claim_due_sources read it.
_SCHEDULE_ROWS = select(
    schema.sources.c.url,
    schema.sources.c.next_poll_at,
    schema.sources.c.poll_interval_seconds,
    schema.sources.c.unchanged_polls,
    schema.sources.c.declared_interval_seconds,
    schema.sources.c.consecutive_failures,
)


class SchedulingMixin(StoreBase):
    """What the scheduler decided per source, leases on due sources, host pauses."""

    def schedule_records(self) -> dict[str, ScheduleRecord]:
        """Every source's scheduling state, by URL."""
        with self.engine.connect() as connection:
            rows = connection.execute(_SCHEDULE_ROWS).all()
        return {row.url: _schedule_record(row) for row in rows}

    def save_schedule(
        self,
        url: str,
        *,
        next_poll_at: datetime,
        interval_seconds: int | None,
        unchanged_polls: int,
        declared_interval_seconds: int | None,
        host_pause: HostPause | None = None,
        lease_owner: str | None = None,
    ) -> None:
        """Record the scheduler's decision after a poll, and the host's pause if any;
        the lease `lease_owner` holds on the source (claim_due_sources) ends with it."""
        with self.engine.begin() as connection:
            if lease_owner is not None:
                _release(connection, url, lease_owner)
            connection.execute(
                update(schema.sources)
                .where(schema.sources.c.url == url)
                .values(
                    next_poll_at=next_poll_at,
                    poll_interval_seconds=interval_seconds,
                    unchanged_polls=unchanged_polls,
                    declared_interval_seconds=declared_interval_seconds,
                )
            )
            if host_pause is not None:
                _save_host_pause(connection, host_pause)

    def set_next_poll(self, url: str, next_poll_at: datetime | None) -> None:
        """Move one source's next poll (None: due at once), e.g. after a config change."""
        with self.engine.begin() as connection:
            connection.execute(
                update(schema.sources)
                .where(schema.sources.c.url == url)
                .values(next_poll_at=next_poll_at, poll_interval_seconds=None, unchanged_polls=0)
            )

    def claim_due_sources(
        self,
        owner: str,
        now: datetime,
        *,
        lease: timedelta,
        limit: int,
        eligible: Callable[[str], bool] | None = None,
    ) -> list[ScheduleRecord]:
        """Claim up to `limit` due sources for `owner` until `now + lease`; their records.

        Due: never scheduled or next_poll_at passed, and no unexpired lease (a worker that
        died mid-poll holds its sources only until its leases run out). `eligible` (by URL)
        leaves out sources this worker must not poll (not in its feeds.yaml, host paused,
        in flight). Each source is claimed by one caller however many call at once: on
        PostgreSQL the due rows are read FOR UPDATE SKIP LOCKED in this short transaction
        (a concurrent claimer skips them rather than waiting), on SQLite the transaction
        holds the database's write lock. Oldest due first, so none starves.
        """
        columns = schema.sources.c
        with self.engine.begin() as connection:
            if connection.dialect.name != "postgresql":
                lock_for_writing(connection)
            rows = connection.execute(
                _SCHEDULE_ROWS.add_columns(columns.id)
                .where(
                    or_(columns.next_poll_at.is_(None), columns.next_poll_at <= now),
                    or_(columns.lease_expires_at.is_(None), columns.lease_expires_at <= now),
                )
                .order_by(columns.next_poll_at.asc().nulls_first(), columns.id)
                .with_for_update(skip_locked=True)
            ).all()
            chosen = [row for row in rows if eligible is None or eligible(row.url)][:limit]
            if chosen:
                connection.execute(
                    update(schema.sources)
                    .where(columns.id.in_([row.id for row in chosen]))
                    .values(lease_owner=owner, lease_expires_at=now + lease)
                )
        return [_schedule_record(row) for row in chosen]

    def release_lease(self, url: str, owner: str) -> None:
        """End `owner`'s lease on source `url` (a poll abandoned at shutdown): due again
        at once for any worker. A lease that lapsed and was claimed by another stays."""
        with self.engine.begin() as connection:
            _release(connection, url, owner)

    def host_pauses(self, now: datetime) -> dict[str, HostPause]:
        """Hosts still paused at `now`, by host."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(schema.host_pauses).where(schema.host_pauses.c.paused_until > now)
            ).all()
        return {
            row.host: HostPause(host=row.host, until=row.paused_until, reason=row.reason)
            for row in rows
        }


def _release(connection: Connection, url: str, owner: str) -> None:
    columns = schema.sources.c
    connection.execute(
        update(schema.sources)
        .where(columns.url == url, columns.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
    )


def _save_host_pause(connection: Connection, pause: HostPause) -> None:
    """Pause a host, keeping the later of an existing and the new pause."""
    table = schema.host_pauses
    current = connection.scalar(select(table.c.paused_until).where(table.c.host == pause.host))
    if current is None:
        connection.execute(
            table.insert().values(host=pause.host, paused_until=pause.until, reason=pause.reason)
        )
    elif current < pause.until:
        connection.execute(
            update(table)
            .where(table.c.host == pause.host)
            .values(paused_until=pause.until, reason=pause.reason)
        )


def _schedule_record(row: Any) -> ScheduleRecord:
    return ScheduleRecord(
        url=row.url,
        next_poll_at=row.next_poll_at,
        interval_seconds=row.poll_interval_seconds,
        unchanged_polls=row.unchanged_polls or 0,
        declared_interval_seconds=row.declared_interval_seconds,
        consecutive_failures=row.consecutive_failures,
    )
