"""feeds.yaml hot reload: notice an edit, load it, and move the schedule to match.

`ConfigWatcher` tells when the file changed (modification time and size) and gives the new
configuration, or logs every problem of a bad edit and gives nothing, so that the running
configuration stays. `reschedule` is what a reload changes in the schedule: a new source
(or one listed again) is polled soon, and one whose configured interval changed is polled
no later than one new interval from now.

This module must never poll, never decide a poll's next time after a poll (policy.py does)
and never drop the running configuration for one that does not load.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aggregator.config import load_config
from aggregator.errors import ConfigError
from aggregator.models import Config
from aggregator.service.policy import SchedulePolicy
from aggregator.service.policy import configured_interval
from aggregator.service.policy import jittered
from aggregator.store import Store

logger = logging.getLogger(__name__)


def file_stamp(path: Path) -> tuple[int, int] | None:
    """What changes when feeds.yaml is saved: modification time and size."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


class ConfigWatcher:
    """Watches one feeds.yaml for edits."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._stamp = file_stamp(self.path)

    def changed(self) -> Config | None:
        """The edited configuration when the file changed since last asked and loads.

        A bad edit is logged with every problem and None is returned. It reads and checks
        the file synchronously: the running service calls it in a thread
        (asyncio.to_thread), never on the event loop.
        """
        stamp = file_stamp(self.path)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            return load_config(self.path)
        except ConfigError as exc:
            logger.error(
                "feeds.yaml was edited but cannot be used; keeping the running configuration.\n%s",
                exc,
            )
            return None


@dataclass(frozen=True)
class ReloadCounts:
    added: int  # sources new to feeds.yaml (or listed again)
    removed: int  # sources no longer listed


def reschedule(
    old: Config,
    new: Config,
    store: Store,
    now: datetime,
    policy: SchedulePolicy,
    rng: random.Random,
) -> ReloadCounts:
    """Bring the stored schedule in step with `new` (already synced into `store`)."""
    before = {source.url: source for member in old.members for source in member.sources}
    records = store.schedule_records()
    added = 0
    for member in new.members:
        for source in member.sources:
            previous = before.pop(source.url, None)
            if previous is None:
                added += 1
                # A source listed again after a removal is polled soon, not at the
                # time remembered from before it was removed.
                store.set_next_poll(source.url, None)
                continue
            was = configured_interval(old, previous)
            now_configured = configured_interval(new, source)
            if was != now_configured:
                record = records.get(source.url)
                soonest = now + jittered(now_configured, policy, rng)
                current = record.next_poll_at if record is not None else None
                store.set_next_poll(
                    source.url, soonest if current is None else min(current, soonest)
                )
    return ReloadCounts(added=added, removed=len(before))
