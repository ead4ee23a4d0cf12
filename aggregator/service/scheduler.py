"""When each source is polled next, and the long-running loop that polls them.

Two halves, kept apart like Miniflux's ScheduleNextCheck and its worker pool:

* The rules (`decide`, `configured_interval`, `SchedulePolicy`) are pure: given what the
  database remembers about a source, the outcome of one poll and the hints the server and
  the feed gave (Cache-Control, Retry-After, <ttl>, sy:updatePeriod), they return the next
  poll time. No clock, no randomness of their own (`now` and `rng` are passed in), no I/O.
* The wiring (`PollScheduler`, `run_service`) runs on APScheduler 3.x's AsyncIOScheduler:
  it claims due sources in the database, polls them through `poll.poll_source` (the one
  way every part of the package polls), saves each decision, watches feeds.yaml for edits,
  prunes what network.retention no longer keeps, and stops cleanly on SIGTERM/SIGINT.
  Claims are row leases (Store.claim_due_sources): any number of worker processes on one
  PostgreSQL database poll each due source once between them, and a dead worker's claims
  lapse after SchedulerSettings.lease_seconds.

The policy, with its defaults (all in SchedulePolicy):

* Interval: the source's `interval:`, else its member's, else `network.interval` (1 h).
* Jitter: ±10 % of the delay, at most ±15 min, so sources added together drift apart.
* Adaptive: after every 3 consecutive polls that brought nothing new the interval doubles,
  up to 4× the configured interval but never past 24 h (never below the configured one);
  a poll with new or updated items puts it straight back to the configured interval.
* Lower bounds (never polled sooner than): Cache-Control max-age, Retry-After, RSS <ttl>,
  sy:updatePeriod/updateFrequency (each capped at 24 h so a wild value cannot silence a
  member); 1 h for an unchanged source whose server gives no ETag/Last-Modified (every
  request to it is an unconditional full download); 1 min absolute minimum.
* Failures: configured interval × 2^failures, at most 24 h; a 410 Gone waits the full
  24 h at once. The first success returns to the normal interval.
* Offline: when every source of a round (the polls claimed together) failed the same way
  that reaches no server at all (DNS lookup failed, connection refused), on at least two
  hosts, the fault is this machine's network, not the members' sites: it is logged once
  ("this machine appears to be offline") and each of them is retried within minutes
  (offline_retry, 3 min) rather than backed off by hours, so that a network blip at boot
  does not cost hours of news.
* 429 or 503: the whole host is paused until its Retry-After (default 1 h, at most 24 h);
  other sources on that host wait too.

This module must never parse, normalize or write SQL itself (poll.py and store/ do), and
the pure half must never read the clock, the random module's global state or the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import uuid
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from aggregator.clock import Clock
from aggregator.clock import utc_now
from aggregator.config import load_config
from aggregator.errors import AggregatorError
from aggregator.errors import ConfigError
from aggregator.ingest.fetch import UNREACHABLE_CAUSES
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.fetch import host_key
from aggregator.ingest.poll import poll_settings
from aggregator.ingest.poll import poll_source
from aggregator.models import GONE_STATUS
from aggregator.models import Config
from aggregator.models import HostPause
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import PruneReport
from aggregator.models import ScheduleHints
from aggregator.models import ScheduleRecord
from aggregator.models import SourceConfig
from aggregator.service.web import listen
from aggregator.store import Store

logger = logging.getLogger(__name__)

AlertCheck = Callable[[Config, datetime], Awaitable[None]]

HOST_PAUSE_STATUSES = frozenset({429, 503})
# What `aggregator run --role` runs in one process: the scheduler and the web server
# ("all", one box), the scheduler only ("worker": any number of them share a PostgreSQL
# database, each due source claimed by one), or the web server only ("web": stateless
# replicas serving from the database, same bytes and ETags from each).
ROLES = ("all", "worker", "web")


# --- the rules (pure) -----------------------------------------------------------------


@dataclass(frozen=True)
class SchedulePolicy:
    """Every number of the scheduling policy, written once (see the module docstring)."""

    jitter: float = 0.10  # ± this fraction of the delay
    max_jitter: timedelta = timedelta(minutes=15)
    unchanged_before_slowdown: int = 3  # consecutive unchanged polls per doubling
    adaptive_factor: int = 4  # the adaptive interval goes up to this × configured …
    adaptive_ceiling: timedelta = timedelta(hours=24)  # … but never past this
    failure_ceiling: timedelta = timedelta(hours=24)
    hint_ceiling: timedelta = timedelta(hours=24)  # cap on max-age/ttl/Retry-After floors
    unconditional_floor: timedelta = timedelta(hours=1)
    host_pause_default: timedelta = timedelta(hours=1)
    min_delay: timedelta = timedelta(minutes=1)
    offline_retry: timedelta = timedelta(minutes=3)  # a failure while the machine is offline


DEFAULT_POLICY = SchedulePolicy()


@dataclass(frozen=True)
class ScheduleState:
    """What the scheduler knows about a source before the poll being decided on."""

    configured: timedelta  # from feeds.yaml
    interval: timedelta | None = None  # the adaptive interval; None: as configured
    unchanged_polls: int = 0
    failures: int = 0  # consecutive failures before this poll
    declared: timedelta | None = None  # the source's own <ttl>/sy:updatePeriod, remembered


@dataclass(frozen=True)
class ScheduleDecision:
    """When to poll next, the state to remember, and why (for logs)."""

    next_poll_at: datetime
    interval: timedelta  # the adaptive interval to remember
    unchanged_polls: int
    declared: timedelta | None
    host_pause_until: datetime | None = None
    reason: str = ""


def configured_interval(config: Config, source: SourceConfig) -> timedelta:
    """The source's own interval, else its member's, else the network's."""
    if source.interval is not None:
        return source.interval
    for member in config.members:
        if member.id == source.member_id and member.interval is not None:
            return member.interval
    return config.network.interval


def adaptive_ceiling(configured: timedelta, policy: SchedulePolicy = DEFAULT_POLICY) -> timedelta:
    return max(configured, min(configured * policy.adaptive_factor, policy.adaptive_ceiling))


def declared_interval(hints: ScheduleHints) -> timedelta | None:
    """The longest interval the feed itself asks for (<ttl>, sy:updatePeriod), if any."""
    declared = [
        value
        for value in (
            timedelta(minutes=hints.ttl_minutes) if hints.ttl_minutes is not None else None,
            hints.update_period,
        )
        if value is not None and value > timedelta(0)
    ]
    return max(declared, default=None)


def jittered(delay: timedelta, policy: SchedulePolicy, rng: random.Random) -> timedelta:
    spread = min(delay * policy.jitter, policy.max_jitter)
    return delay + spread * rng.uniform(-1.0, 1.0)


def decide(
    state: ScheduleState,
    outcome: PollOutcome,
    hints: ScheduleHints,
    now: datetime,
    rng: random.Random,
    policy: SchedulePolicy = DEFAULT_POLICY,
    *,
    offline: bool = False,
) -> ScheduleDecision:
    """The next poll of one source after a poll that ended with `outcome` at `now`.

    `offline`: the failure was this machine's network (offline_cause), not the source's.
    """
    configured = state.configured
    ceiling = adaptive_ceiling(configured, policy)
    current = min(max(state.interval or configured, configured), ceiling)
    declared = declared_interval(hints) or state.declared
    hint_cap = max(policy.hint_ceiling, configured)
    floors: list[tuple[timedelta, str]] = []
    if hints.retry_after is not None and hints.retry_after > now:
        floors.append((hints.retry_after - now, "Retry-After"))
    host_pause_until = None

    if outcome is PollOutcome.FAILED:
        failures = state.failures + 1
        unchanged = state.unchanged_polls
        interval = current
        failure_cap = max(policy.failure_ceiling, configured)
        if hints.status == GONE_STATUS:
            delay, reason = failure_cap, "gone (HTTP 410)"
        elif offline:
            # The source did nothing wrong: try again as soon as the network may be back,
            # but never later than its own backoff would.
            delay = min(configured * 2 ** min(failures, 32), policy.offline_retry)
            reason = "this machine appears to be offline: retrying soon"
        else:
            # 2**failures is bounded before multiplying: a source failing for months
            # would otherwise overflow timedelta.
            factor = 2 ** min(failures, 32)
            delay = min(configured * factor, failure_cap)
            reason = f"backing off after {failures} failure(s)"
        if hints.status in HOST_PAUSE_STATUSES:
            pause = hints.retry_after - now if hints.retry_after is not None else None
            if pause is None or pause <= timedelta(0):
                pause = policy.host_pause_default
            host_pause_until = now + min(pause, hint_cap)
            floors.append((host_pause_until - now, f"host paused (HTTP {hints.status})"))
    else:
        if outcome in (PollOutcome.NEW, PollOutcome.UPDATED):
            unchanged = 0
            interval = configured
            reason = "new items: configured interval"
        else:
            unchanged = state.unchanged_polls + 1
            interval = current
            if unchanged % policy.unchanged_before_slowdown == 0:
                interval = min(current * 2, ceiling)
            reason = f"{unchanged} unchanged poll(s): interval {interval}"
        delay = interval
        if hints.cache_max_age is not None:
            floors.append((timedelta(seconds=hints.cache_max_age), "Cache-Control max-age"))
        if declared is not None:
            floors.append((declared, "the feed's ttl/updatePeriod"))
        if outcome is PollOutcome.UNCHANGED and not hints.conditional:
            floors.append((policy.unconditional_floor, "no validators: at most hourly"))

    wait = max(jittered(delay, policy, rng), policy.min_delay)
    for floor, why in floors:
        floor = min(floor, hint_cap)
        if floor > wait:
            wait, reason = floor, f"{reason}; at least {floor} ({why})"
    return ScheduleDecision(
        next_poll_at=now + wait,
        interval=interval,
        unchanged_polls=unchanged,
        declared=declared,
        host_pause_until=host_pause_until,
        reason=reason,
    )


def next_poll(
    state: ScheduleState,
    outcome: PollOutcome,
    hints: ScheduleHints,
    now: datetime,
    rng: random.Random,
    policy: SchedulePolicy = DEFAULT_POLICY,
) -> datetime:
    """Only the time of `decide`'s answer."""
    return decide(state, outcome, hints, now, rng, policy).next_poll_at


def offline_cause(reports: Sequence[PollReport]) -> str | None:
    """The cause, when a round's polls say that this machine reaches no server at all.

    That is: every poll failed, all with the same cause among fetch.UNREACHABLE_CAUSES
    (DNS lookup failed, connection refused), on at least two hosts. One host refusing is
    that host's fault; sites that answer anything at all mean the network works.
    """
    causes = {report.error for report in reports}
    if len(causes) != 1 or any(r.outcome is not PollOutcome.FAILED for r in reports):
        return None
    (cause,) = causes
    hosts = {host_key(report.source.url) for report in reports}
    return cause if cause in UNREACHABLE_CAUSES and len(hosts) >= 2 else None


def state_from_record(record: ScheduleRecord | None, configured: timedelta) -> ScheduleState:
    if record is None:
        return ScheduleState(configured=configured)
    return ScheduleState(
        configured=configured,
        interval=_seconds(record.interval_seconds),
        unchanged_polls=record.unchanged_polls,
        failures=record.consecutive_failures,
        declared=_seconds(record.declared_interval_seconds),
    )


def is_due(record: ScheduleRecord | None, now: datetime) -> bool:
    """Never-scheduled sources are due at once; the others when their time has come."""
    return record is None or record.next_poll_at is None or record.next_poll_at <= now


def _seconds(value: int | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None


def _whole_seconds(value: timedelta | None) -> int | None:
    return round(value.total_seconds()) if value is not None else None


# --- the wiring -----------------------------------------------------------------------


@dataclass(frozen=True)
class SchedulerSettings:
    tick_seconds: float = 5.0  # how often due sources are looked for
    reload_seconds: float = 3.0  # how often feeds.yaml's modification time is checked
    alert_seconds: float = 300.0  # how often alerts are evaluated
    grace_seconds: float = 10.0  # in-flight polls get this long to finish at shutdown
    # A claimed source is this worker's until the lease ends (store.claim_due_sources):
    # longer than a poll can take (fetch deadline 60 s, plus discovery or follow:), so
    # that only a dead worker's claims lapse.
    lease_seconds: float = 300.0
    # Polls claimed and not finished, at most: claims beyond what the fetcher can run
    # (16 at once) would sit queued while their leases run out.
    max_in_flight: int = 32
    prune_seconds: float = 86_400.0  # how often network.retention is applied


@dataclass
class PollRound:
    """The polls one claim started together, judged together by offline_cause."""

    size: int
    reports: list[PollReport] = field(default_factory=list)
    finished: int = 0
    complete: asyncio.Event = field(default_factory=asyncio.Event)

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

    `now` is injectable: tests drive `run_due_polls` and `check_config` with a fake clock
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
        on_report: Callable[[PollReport], None] | None = None,
        on_config: Callable[[Config], None] | None = None,
        polling: bool = True,
    ) -> None:
        self.config = config
        self.store = store
        self.fetcher = fetcher
        self.config_path = Path(config_path if config_path is not None else config.path)
        self.now = now
        self.rng = rng or random.Random()
        self.policy = policy
        self.settings = settings or SchedulerSettings()
        self.alert_check = alert_check
        self.on_report = on_report
        self.on_config = on_config  # e.g. the web app's set_config, so both serve the same
        self.in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[PollReport | None]] = set()
        self._config_stamp = _file_stamp(self.config_path)
        self._accepting = True
        self._apscheduler: AsyncIOScheduler | None = None
        # False: only follow feeds.yaml edits (a `--role web` replica polls and writes nothing).
        self.polling = polling
        # Names this process's leases; unique per start, so a restarted worker never takes
        # a dead predecessor's claims for its own.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._continuous = False  # set by start(): finished polls make room for more at once
        # The cause while this machine appears to be offline (said once, not per source).
        self.offline: str | None = None
        if polling:
            store.sync_config(config)

    # --- polling ---

    def due_sources(self) -> list[SourceConfig]:
        """Sources whose time has come, not already being polled, on hosts not paused.

        A look only (status, tests): polls start from start_due_polls, which claims them,
        and also leaves out sources another worker holds.
        """
        now = self.now()
        records = self.store.schedule_records()
        paused = self.store.host_pauses(now)
        return [
            source
            for member in self.config.members
            for source in member.sources
            if source.url not in self.in_flight
            and host_key(source.url) not in paused
            and is_due(records.get(source.url), now)
        ]

    def start_due_polls(self) -> list[asyncio.Task[PollReport | None]]:
        """Claim due sources (up to max_in_flight polls in all) and start a poll task for
        each; returns at once. Sources claimed by another worker are left to it."""
        if not self._accepting or not self.polling:
            return []
        room = self.settings.max_in_flight - len(self.in_flight)
        if room <= 0:
            return []
        now = self.now()
        configured = {
            source.url: source for member in self.config.members for source in member.sources
        }
        paused = self.store.host_pauses(now)

        def eligible(url: str) -> bool:
            return (
                url in configured and url not in self.in_flight and host_key(url) not in paused
            )

        claimed = self.store.claim_due_sources(
            self.owner,
            now,
            lease=timedelta(seconds=self.settings.lease_seconds),
            limit=room,
            eligible=eligible,
        )
        started = []
        batch = PollRound(size=len(claimed))
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

    async def run_due_polls(self) -> list[PollReport]:
        """Poll every due source and wait for them all (what ticks do, awaited), in claims
        of at most max_in_flight, until no due source is left unclaimed."""
        reports: list[PollReport] = []
        while started := self.start_due_polls():
            results = await asyncio.gather(*started)
            reports.extend(report for report in results if report is not None)
        return reports

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
                report = await poll_source(
                    source,
                    fetcher=self.fetcher,
                    store=self.store,
                    language=settings.language,
                    retention=settings.retention,
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
            self._save_decision(source, state, report, offline=self.offline is not None)
            saved = True
            if self.on_report is not None:
                self.on_report(report)
            return report
        finally:
            self.in_flight.discard(source.url)
            if not saved:
                self._release(source.url)
            if self._continuous and len(self.in_flight) <= self.settings.max_in_flight // 2:
                self._claim_more()

    def _release(self, url: str) -> None:
        """A poll abandoned (shutdown) or whose outcome could not be saved: its source is
        due again for every worker at once, rather than when the lease would lapse."""
        try:
            self.store.release_lease(url, self.owner)
        except Exception:
            # The database is away: the lease lapses by itself.
            logger.exception("could not release the claim on %s", url)

    def _claim_more(self) -> None:
        try:
            self.start_due_polls()
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
            interval_seconds=_whole_seconds(decision.interval),
            unchanged_polls=decision.unchanged_polls,
            declared_interval_seconds=_whole_seconds(decision.declared),
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

    def check_config(self) -> bool:
        """Reload feeds.yaml if it changed; True when a new configuration was applied.

        A bad edit is logged with every problem and the running configuration stays.
        """
        stamp = _file_stamp(self.config_path)
        if stamp == self._config_stamp:
            return False
        self._config_stamp = stamp
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            logger.error(
                "feeds.yaml was edited but cannot be used; keeping the running configuration.\n%s",
                exc,
            )
            return False
        self.apply_config(config)
        return True

    def apply_config(self, config: Config) -> None:
        if not self.polling:
            self.config = config
            if self.on_config is not None:
                self.on_config(config)
            logger.warning("feeds.yaml reloaded: %d members", len(config.members))
            return
        old = {source.url: source for member in self.config.members for source in member.sources}
        old_config = self.config
        self.store.sync_config(config)
        self.config = config
        now = self.now()
        records = self.store.schedule_records()
        added = 0
        for member in config.members:
            for source in member.sources:
                previous = old.pop(source.url, None)
                if previous is None:
                    added += 1
                    # A source listed again after a removal is polled soon, not at the
                    # time remembered from before it was removed.
                    self.store.set_next_poll(source.url, None)
                    continue
                before = configured_interval(old_config, previous)
                after = configured_interval(config, source)
                if before != after:
                    record = records.get(source.url)
                    soonest = now + jittered(after, self.policy, self.rng)
                    current = record.next_poll_at if record is not None else None
                    self.store.set_next_poll(
                        source.url, soonest if current is None else min(current, soonest)
                    )
        removed = len(old)
        if self.on_config is not None:
            self.on_config(config)
        logger.warning(
            "feeds.yaml reloaded: %d members, %d new source(s), %d removed",
            len(config.members),
            added,
            removed,
        )

    # --- alerts ---

    async def check_alerts(self) -> None:
        if self.alert_check is None:
            return
        try:
            await self.alert_check(self.config, self.now())
        except AggregatorError as exc:
            logger.error("checking alerts failed: %s", exc)

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
            self._reload, "interval", seconds=self.settings.reload_seconds, id="reload", **common
        )
        if not self.polling:
            scheduler.start()
            self._apscheduler = scheduler
            return scheduler
        self._continuous = True
        scheduler.add_job(
            self._tick, "interval", seconds=self.settings.tick_seconds, id="tick", **common
        )
        scheduler.add_job(
            self._prune,
            "interval",
            seconds=self.settings.prune_seconds,
            id="prune",
            # Not at start: several workers restarted together would all prune at once.
            **{**common, "next_run_time": first + timedelta(minutes=1)},
        )
        if self.alert_check is not None:
            scheduler.add_job(
                self.check_alerts,
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
            self.start_due_polls()
        except AggregatorError as exc:
            logger.error("looking for due sources failed: %s", exc)

    async def _reload(self) -> None:
        try:
            self.check_config()
        except AggregatorError as exc:
            logger.error("reloading feeds.yaml failed: %s", exc)

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


def prune_expired(config: Config, store: Store, now: datetime) -> PruneReport | None:
    """Delete what network.retention no longer keeps; None when it keeps everything."""
    retention = config.network.retention
    if retention is None:
        return None
    return store.prune(now - retention, now)


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """What changes when feeds.yaml is saved: modification time and size."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


@contextlib.contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            # Not the main thread (tests) or a platform without it: the caller stops us.
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_service(
    config: Config,
    store: Store,
    *,
    app: Any = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    stop: asyncio.Event | None = None,
    settings: SchedulerSettings | None = None,
    alert_check: AlertCheck | None = None,
    on_config: Callable[[Config], None] | None = None,
    on_started: Callable[[PollScheduler], None] | None = None,
    poll: bool = True,
    listening: socket.socket | None = None,
    server_log_level: str | None = None,
    access_log: bool = True,
) -> None:
    """The scheduler, and the ASGI `app` (if given) under uvicorn, until SIGTERM/SIGINT.

    `server_log_level` ("warning" for the demo) and `access_log` set what uvicorn prints.

    Signals are handled here, not by uvicorn, so that both halves stop together: the web
    server stops accepting, the scheduler gives in-flight polls their grace period.
    `poll=False` (a web replica, `--role web`) only follows feeds.yaml edits; without an
    `app` (`--role worker`) nothing is served. See ROLES. `listening`: the app's socket,
    already bound (web.listen); otherwise it is bound here, before anything is polled.
    """
    if app is not None and listening is None:
        listening = listen(host, port)
    stop = stop or asyncio.Event()
    with _stop_on_signals(stop):
        async with Fetcher(config.network.limits) as fetcher:
            scheduler = PollScheduler(
                config,
                store,
                fetcher,
                settings=settings,
                alert_check=alert_check,
                on_config=on_config,
                polling=poll,
            )
            scheduler.start()
            server = (
                _web_server(app, host, port, log_level=server_log_level, access_log=access_log)
                if app is not None
                else None
            )
            serving = (
                asyncio.create_task(server.serve(sockets=[listening]))
                if server is not None and listening is not None
                else None
            )
            if on_started is not None:
                on_started(scheduler)
            try:
                waiting = asyncio.create_task(stop.wait())
                watched: set[asyncio.Future[Any]] = {waiting}
                if serving is not None:
                    watched.add(serving)
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
            finally:
                if server is not None and serving is not None:
                    server.should_exit = True
                    await asyncio.gather(serving, return_exceptions=True)
                await scheduler.stop()
            if serving is not None and not serving.cancelled() and serving.exception():
                raise AggregatorError(f"the web server stopped: {serving.exception()}")


def _web_server(
    app: Any, host: str, port: int, *, log_level: str | None = None, access_log: bool = True
) -> uvicorn.Server:
    class EmbeddedServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # run_service owns SIGTERM/SIGINT for the scheduler and the server together.
            yield

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=False,
        server_header=False,
        log_level=log_level,
        access_log=access_log,
    )
    if access_log:
        # Asked for, so shown even when log_level keeps uvicorn's own messages quiet (the
        # Config above has just set the access logger to that level).
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    return EmbeddedServer(config)
