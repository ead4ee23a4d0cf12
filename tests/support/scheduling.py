"""Driving a PollScheduler and the WebSub pinger to completion in tests, without sleeping.

The service never awaits a whole round (ticks only start polls), so these live here, not
in aggregator/service; they use only the scheduler's public path (start_due_polls) and
never change what the service does.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from aggregator.ingest.fetch import host_key
from aggregator.models import PollReport
from aggregator.models import ScheduleRecord
from aggregator.models import SourceConfig
from aggregator.service.scheduler import PollScheduler
from aggregator.service.websub.publisher import HubPinger


def is_due(record: ScheduleRecord | None, now: datetime) -> bool:
    """Never-scheduled sources are due at once; the others when their time has come."""
    return record is None or record.next_poll_at is None or record.next_poll_at <= now


async def run_due_polls(scheduler: PollScheduler) -> list[PollReport]:
    """Poll every due source and wait for them all (what ticks do, awaited), in claims of
    at most max_in_flight, until no due source is left unclaimed."""
    reports: list[PollReport] = []
    while started := scheduler.start_due_polls():
        results = await asyncio.gather(*started)
        reports.extend(report for report in results if report is not None)
    return reports


def due_sources(scheduler: PollScheduler) -> list[SourceConfig]:
    """Sources whose time has come, not being polled, on hosts not paused (a look only)."""
    now = scheduler.now()
    records = scheduler.store.schedule_records()
    paused = scheduler.store.host_pauses(now)
    return [
        source
        for member in scheduler.config.members
        for source in member.sources
        if source.url not in scheduler.in_flight
        and host_key(source.url) not in paused
        and is_due(records.get(source.url), now)
    ]


async def drain(pinger: HubPinger) -> None:
    """Wait for a ping that is waiting to go out."""
    flush = pinger._flush
    if flush is not None and not flush.done():
        await asyncio.shield(flush)
