"""The long-running loop that polls every source when policy.py says it is due.

`PollScheduler` runs on APScheduler 3.x's AsyncIOScheduler: it claims due sources in the
database, polls them through `poll.poll_source` (the one way every part of the package
polls; their writes go through the scheduler's one StoreWriter, and every claim, state
read and schedule save runs in a thread, never on the event loop), saves each decision
of policy.decide, follows feeds.yaml edits (reload.py), prunes what network.retention
no longer keeps and evaluates alerts. Claims are row leases (Store.claim_due_sources):
any number of worker processes on one PostgreSQL database poll each due source once
between them, and a dead worker's claims lapse after SchedulerSettings.lease_seconds.
Whoever follows the polls or the reloads (the web app, WebSub) appends to its `hooks`
(service/app.py wires them).

This module must never parse, normalize or write SQL itself (poll.py and store/ do), never
decide a next poll time itself (policy.py does), and never build the web server, install
signal handlers or know about WebSub (service/app.py does).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from aggregator.clock import Clock
from aggregator.clock import utc_now
from aggregator.errors import AggregatorError
from aggregator.ingest.fetch import UNREACHABLE_CAUSES
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.fetch import host_key
from aggregator.ingest.poll import poll_settings
from aggregator.ingest.poll import poll_source
from aggregator.models import Config
from aggregator.models import HostPause
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import PruneReport
from aggregator.models import ScheduleRecord
from aggregator.models import SourceConfig
from aggregator.models import SourceState
from aggregator.service.hooks import SchedulerHooks
from aggregator.service.policy import DEFAULT_POLICY
from aggregator.service.policy import SchedulePolicy
from aggregator.service.policy import ScheduleState
from aggregator.service.policy import configured_interval
from aggregator.service.policy import decide
from aggregator.service.policy import offline_cause
from aggregator.service.policy import state_from_record
from aggregator.service.policy import whole_seconds
from aggregator.service.reload import ConfigWatcher
from aggregator.service.reload import ReloadCounts
from aggregator.service.reload import reschedule
from aggregator.service.settings import SchedulerSettings
from aggregator.store import Store
from aggregator.store import StoreWriter

logger = logging.getLogger(__name__)

AlertCheck = Callable[[Config, datetime], Awaitable[None]]


@dataclass
class PollRound:
    """The polls one claim started together, judged together by offline_cause."""

    size: int
    reports: list[PollReport] = field(default_factory=list)
    finished: int = 0
    complete: asyncio.Event = field(default_factory=asyncio.Event)
    # Every claimed source's state, read once for the claim (in a thread) by the first
    # poll that needs it; the others await the same read.
    states: asyncio.Task[dict[str, SourceState]] | None = None

    def finish(self, report: PollReport | None) -> None:
        """One poll is over (`None`: it was abandoned, e.g. at shutdown)."""
        self.finished += 1
        if report is not None:
            self.reports.append(report)
        if self.finished >= self.size:
            self.complete.set()

    def offline_cause(self) -> str | None:
        """offline_cause of the whole round; None until every poll of it is over."""
        if not self.complete.is_set() or len(self.reports) < self.size:
            return None
        return offline_cause(self.reports)


class PollScheduler:
    """Polls due sources, one poll per source at a time, and follows feeds.yaml edits.

    One APScheduler interval job (the "tick", every few seconds) asks the database which
    sources are due, rather than one APScheduler job per source: the database is then the
    only schedule (a restart resumes from it, nothing has to be kept in step), and each
    decision's irregular next time (jitter, backoff, Retry-After) needs no job rescheduling.
    A tick only starts polls as tasks and returns, so a slow source never delays others;
    the Fetcher enforces the global and per-host (2) concurrency limits.

    `now` is injectable: tests drive `start_due_polls` and `check_config` with a fake clock
    instead of sleeping.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        fetcher: Fetcher,
        *,
        config_path: str | os.PathLike[str] | None = None,
        now: Clock = utc_now,
        rng: random.Random | None = None,
        policy: SchedulePolicy = DEFAULT_POLICY,
        settings: SchedulerSettings | None = None,
        alert_check: AlertCheck | None = None,
        hooks: SchedulerHooks | None = None,
        polling: bool = True,
    ) -> None:
        self.config = config
        self.store = store
        self.fetcher = fetcher
        self.watcher = ConfigWatcher(config_path if config_path is not None else config.path)
        self.now = now
        self.rng = rng or random.Random()
        self.policy = policy
        self.settings = settings or SchedulerSettings()
        self.alert_check = alert_check
        # Followers (the web app's set_config, so both serve the same; WebSub) append here.
        self.hooks = hooks or SchedulerHooks()
        self.in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[PollReport | None]] = set()
        self._accepting = True
        self._apscheduler: AsyncIOScheduler | None = None
        # False: only follow feeds.yaml edits (a `--role web` replica polls and writes nothing).
        self.polling = polling
        # Names this process's leases; unique per start, so a restarted worker never takes
        # a dead predecessor's claims for its own.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._continuous = False  # set by start(): finished polls make room for more at once
        # The one writer of every poll's results (and WebSub deliveries'): SQL off the loop.
        self.writer = StoreWriter(store)
        # Claims off the loop run one at a time (a tick and a finished poll may both claim).
        self._claiming = asyncio.Lock()
        # The cause while this machine appears to be offline (said once, not per source).
        self.offline: str | None = None
        if polling:
            store.sync_config(config)

    # --- polling ---

    def busy(self) -> bool:
        """Whether polls are in flight (the WebSub pinger waits for a round to end)."""
        return bool(self.in_flight)

    def start_due_polls(self) -> list[asyncio.Task[PollReport | None]]:
        """Claim due sources (up to max_in_flight polls in all) and start a poll task for
        each; returns at once. Sources claimed by another worker are left to it.

        The claim is SQL run where this is called: the service's ticks claim off the event
        loop instead (start_due_polls_off_loop); tests drive this one directly."""
        if not self._accepting or not self.polling:
            return []
        return self._start(self._claim(frozenset(self.in_flight)))

    async def start_due_polls_off_loop(self) -> list[asyncio.Task[PollReport | None]]:
        """start_due_polls with the claim (SQL) in a thread, never on the event loop."""
        if not self._starting():
            return []
        async with self._claiming:
            claimed = await asyncio.to_thread(self._claim, frozenset(self.in_flight))
            if not self._starting():
                # Stopped meanwhile: the claims are given back rather than left to lapse.
                for record in claimed:
                    await asyncio.to_thread(self._release, record.url)
                return []
            return self._start(claimed)

    def _starting(self) -> bool:
        """Whether new polls may start (not stopping, and this process polls)."""
        return self._accepting and self.polling

    def _claim(self, busy: frozenset[str]) -> list[ScheduleRecord]:
        """The due sources this process may poll now, leased to it (`busy`: in flight)."""
        room = self.settings.max_in_flight - len(busy)
        if room <= 0:
            return []
        now = self.now()
        configured = {
            source.url for member in self.config.members for source in member.sources
        }
        paused = self.store.host_pauses(now)

        def eligible(url: str) -> bool:
            return url in configured and url not in busy and host_key(url) not in paused

        return self.store.claim_due_sources(
            self.owner,
            now,
            lease=timedelta(seconds=self.settings.lease_seconds),
            limit=room,
            eligible=eligible,
        )

    def _start(self, claimed: list[ScheduleRecord]) -> list[asyncio.Task[PollReport | None]]:
        configured = {
            source.url: source for member in self.config.members for source in member.sources
        }
        # feeds.yaml may have changed while the claim ran; a source polled meanwhile by
        # another claim of ours is already in flight.
        claimed = [
            record
            for record in claimed
            if record.url in configured and record.url not in self.in_flight
        ]
        started = []
        batch = PollRound(size=len(claimed))
        urls = [record.url for record in claimed]
        if claimed:
            batch.states = asyncio.create_task(asyncio.to_thread(self.store.source_states, urls))
        for record in claimed:
            source = configured[record.url]
            self.in_flight.add(source.url)
            task = asyncio.create_task(
                self._poll(source, record, batch), name=f"poll {source.url}"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    async def _poll(
        self, source: SourceConfig, record: ScheduleRecord, batch: PollRound
    ) -> PollReport | None:
        saved = False
        report: PollReport | None = None
        try:
            configured = configured_interval(self.config, source)
            state = state_from_record(record, configured)
            settings = poll_settings(self.config, source)
            try:
                states = await asyncio.shield(batch.states) if batch.states is not None else {}
                report = await poll_source(
                    source,
                    fetcher=self.fetcher,
                    store=self.store,
                    language=settings.language,
                    retention=settings.retention,
                    state=states.get(source.url),
                    writer=self.writer,
                )
            except Exception as exc:
                # logger.exception keeps the traceback; one source's fault (a bug, a
                # database hiccup) must not stop the service or leave the source stuck.
                logger.exception(
                    "polling %s (%s) failed unexpectedly", source.url, source.member_id
                )
                report = PollReport(
                    source=source, outcome=PollOutcome.FAILED, error=f"internal error: {exc}"
                )
            finally:
                batch.finish(report)
            if report.error in UNREACHABLE_CAUSES:
                # Whether it was this source or this machine shows only once the round's
                # other polls are over (each ends within the fetcher's deadline).
                await batch.complete.wait()
            self._note_network(report, batch.offline_cause())
            # Off the loop: the schedule is SQL, and the web server may share this loop.
            await asyncio.to_thread(
                self._save_decision, source, state, report, offline=self.offline is not None
            )
            saved = True
            self.hooks.after_poll(report)
            return report
        finally:
            self.in_flight.discard(source.url)
            if not saved:
                await self._release_off_loop(source.url)
            if self._continuous and len(self.in_flight) <= self.settings.max_in_flight // 2:
                await self._claim_more()

    def _release(self, url: str) -> None:
        """A poll abandoned (shutdown) or whose outcome could not be saved: its source is
        due again for every worker at once, rather than when the lease would lapse."""
        try:
            self.store.release_lease(url, self.owner)
        except Exception:
            # The database is away: the lease lapses by itself.
            logger.exception("could not release the claim on %s", url)

    async def _release_off_loop(self, url: str) -> None:
        try:
            await asyncio.to_thread(self._release, url)
        except asyncio.CancelledError:
            # Cancelled again while releasing (shutdown): the lease lapses by itself.
            logger.debug("the claim on %s was left to lapse", url)

    async def _claim_more(self) -> None:
        try:
            await self.start_due_polls_off_loop()
        except Exception:
            # The next tick tries again; a poll's ending must not fail because of it.
            logger.exception("looking for due sources failed")

    def _note_network(self, report: PollReport, offline: str | None) -> None:
        """Say once when this machine appears to go offline, and once when it is back."""
        if offline is not None and self.offline is None:
            self.offline = offline
            logger.warning(
                "this machine appears to be offline: every source polled failed with "
                "\"%s\"; retrying them every few minutes until the network is back",
                offline,
            )
        elif offline is None and self.offline is not None and (
            report.outcome is not PollOutcome.FAILED or report.error != self.offline
        ):
            self.offline = None
            logger.warning("the network is back: sources are polled on their schedule again")

    def member_name(self, source: SourceConfig) -> str:
        """The member's name for logs (its id if feeds.yaml no longer lists it)."""
        try:
            return self.config.member(source.member_id).name
        except KeyError:
            return source.member_id

    def _save_decision(
        self,
        source: SourceConfig,
        state: ScheduleState,
        report: PollReport,
        *,
        offline: bool = False,
    ) -> None:
        """Saved in its own short transaction after the poll's: if the process dies in
        between, the old next_poll_at (already past) makes the source due again, which
        costs one extra poll and loses nothing."""
        now = self.now()
        decision = decide(
            state,
            report.outcome,
            report.hints,
            now,
            self.rng,
            self.policy,
            offline=offline and report.outcome is PollOutcome.FAILED,
        )
        pause = None
        if decision.host_pause_until is not None:
            host = host_key(source.url)
            reason = report.error or f"HTTP {report.hints.status}"
            pause = HostPause(host=host, until=decision.host_pause_until, reason=reason)
            logger.warning("pausing %s until %s: %s", host, decision.host_pause_until, reason)
        self.store.save_schedule(
            source.url,
            next_poll_at=decision.next_poll_at,
            interval_seconds=whole_seconds(decision.interval),
            unchanged_polls=decision.unchanged_polls,
            declared_interval_seconds=whole_seconds(decision.declared),
            host_pause=pause,
            lease_owner=self.owner,
        )
        outcome = report.outcome.value
        if report.outcome is PollOutcome.FAILED:
            outcome += f": {report.error or 'unknown cause'}"
        # A failure is worth a warning, except while offline: that was said once already.
        level = logging.INFO
        if report.outcome is PollOutcome.FAILED:
            level = logging.DEBUG if offline else logging.WARNING
        logger.log(
            level,
            "%s: %s: %s; next poll %s (%s)",
            self.member_name(source),
            source.url,
            outcome,
            decision.next_poll_at.isoformat(timespec="seconds"),
            decision.reason,
        )

    # --- hot reload ---

    # --- hot reload ---

    def check_config(self) -> bool:
        """Reload feeds.yaml if it changed; True when a new configuration was applied.

        A bad edit is logged with every problem and the running configuration stays.
        """
        config = self.watcher.changed()
        if config is None:
            return False
        self.apply_config(config)
        return True

    def apply_config(self, config: Config) -> None:
        if not self.polling:
            self.config = config
            self.hooks.after_reload(config)
            logger.warning("feeds.yaml reloaded: %d members", len(config.members))
            return
        self._applied(config, self._sync_store(self.config, config))

    def _sync_store(self, old_config: Config, config: Config) -> ReloadCounts:
        """apply_config's database half: feeds.yaml synced, new and removed sources
        rescheduled (SQL: the service runs it in a thread)."""
        self.store.sync_config(config)
        return reschedule(old_config, config, self.store, self.now(), self.policy, self.rng)

    def _applied(self, config: Config, counts: ReloadCounts) -> None:
        self.config = config
        self.hooks.after_reload(config)
        logger.warning(
            "feeds.yaml reloaded: %d members, %d new source(s), %d removed",
            len(config.members),
            counts.added,
            counts.removed,
        )

    # --- alerts ---

    async def check_alerts(self) -> None:
        if self.alert_check is None:
            return
        try:
            await self.alert_check(self.config, self.now())
        except AggregatorError as exc:
            logger.error("checking alerts failed: %s", exc)
        except Exception:
            # A background job: a fault is logged and the next run tries again.
            logger.exception("checking alerts failed unexpectedly; the next run tries again")

    # --- retention ---

    def prune(self) -> PruneReport | None:
        """Apply network.retention now (None when everything is kept)."""
        report = prune_expired(self.config, self.store, self.now())
        if report is not None:
            logger.info(
                "retention %s: pruned %d item(s), %d story(ies), %d expired host pause(s)",
                self.config.network.retention,
                report.items,
                report.stories,
                report.host_pauses,
            )
        return report

    async def _prune(self) -> None:
        try:
            # In a thread: a long prune (batches of PRUNE_BATCH) must not stall polls or,
            # with --role all, the web server sharing this event loop.
            await asyncio.to_thread(self.prune)
        except Exception:
            logger.exception("pruning old items failed; the next run tries again")

    # --- running ---

    def start(self) -> AsyncIOScheduler:
        """Start the APScheduler jobs on the running event loop."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        first = datetime.now(UTC)
        common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "next_run_time": first}
        scheduler.add_job(
            quiet_when_stopped(self._reload, self._stopping),
            "interval",
            seconds=self.settings.reload_seconds,
            id="reload",
            **common,
        )
        if not self.polling:
            scheduler.start()
            self._apscheduler = scheduler
            return scheduler
        self._continuous = True
        scheduler.add_job(
            quiet_when_stopped(self._tick, self._stopping),
            "interval",
            seconds=self.settings.tick_seconds,
            id="tick",
            **common,
        )
        scheduler.add_job(
            quiet_when_stopped(self._prune, self._stopping),
            "interval",
            seconds=self.settings.prune_seconds,
            id="prune",
            # Not at start: several workers restarted together would all prune at once.
            **{**common, "next_run_time": first + timedelta(minutes=1)},
        )
        if self.alert_check is not None:
            scheduler.add_job(
                quiet_when_stopped(self.check_alerts, self._stopping),
                "interval",
                seconds=self.settings.alert_seconds,
                id="alerts",
                **common,
            )
        scheduler.start()
        self._apscheduler = scheduler
        return scheduler

    async def _tick(self) -> None:
        try:
            await self.start_due_polls_off_loop()
        except AggregatorError as exc:
            logger.error("looking for due sources failed: %s", exc)
        except Exception:
            logger.exception("looking for due sources failed unexpectedly; the next tick tries")

    async def _reload(self) -> None:
        try:
            # Reading and checking the edited file is off the event loop: a huge or hostile
            # edit must never stop the web server answering (/healthz once went quiet 16 s).
            config = await asyncio.to_thread(self.watcher.changed)
            if config is not None:
                if self.polling:
                    # The database's half (sync, reschedule) is SQL: off the loop.
                    counts = await asyncio.to_thread(self._sync_store, self.config, config)
                    self._applied(config, counts)
                else:
                    self.apply_config(config)
        except AggregatorError as exc:
            logger.error("reloading feeds.yaml failed: %s", exc)
        except Exception:
            logger.exception("reloading feeds.yaml failed unexpectedly; the next check tries")

    def _stopping(self) -> bool:
        return not self._accepting

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop starting polls, give in-flight ones `grace_seconds`, then cancel the rest.

        Every poll writes in single transactions, so a cancelled poll leaves either its
        whole result or nothing.
        """
        self._accepting = False
        if self._apscheduler is not None and self._apscheduler.running:
            self._apscheduler.shutdown(wait=False)
        grace = self.settings.grace_seconds if grace_seconds is None else grace_seconds
        pending = set(self._tasks)
        if pending:
            logger.warning("waiting up to %g s for %d poll(s) in flight", grace, len(pending))
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                await asyncio.gather(*still, return_exceptions=True)
                logger.warning("abandoned %d poll(s) at shutdown", len(still))
        # What the polls handed to the writer is applied before it stops.
        await self.writer.aclose()


def quiet_when_stopped(
    job: Callable[[], Awaitable[None]], stopping: Callable[[], bool]
) -> Callable[[], Awaitable[None]]:
    """`job` as an APScheduler job that ends quietly when stop() cancels it: APScheduler
    cancels the jobs running at shutdown and logs each cancellation as a job that "raised an
    exception", with a traceback, on every ordinary stop that lands mid-job. A cancellation
    while not stopping is still raised."""

    @functools.wraps(job)
    async def run() -> None:
        try:
            await job()
        except asyncio.CancelledError:
            if not stopping():
                raise

    return run


def prune_expired(config: Config, store: Store, now: datetime) -> PruneReport | None:
    """Delete what network.retention no longer keeps; None when it keeps everything."""
    retention = config.network.retention
    if retention is None:
        return None
    return store.prune(now - retention, now)


