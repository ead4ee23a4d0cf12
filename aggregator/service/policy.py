"""When each source is polled next: the scheduling rules, pure.

Like Miniflux's ScheduleNextCheck and lemon24/reader's Decider: given what the database
remembers about a source, the outcome of one poll and the hints the server and the feed
gave (Cache-Control, Retry-After, <ttl>, sy:updatePeriod), `decide` returns the next poll
time and the state to remember. service/scheduler.py applies the decisions.

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

This module must never read the clock (`now` is passed in), the random module's global
state (`rng` is passed in), the network, the database or feeds.yaml.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from aggregator.ingest.fetch import UNREACHABLE_CAUSES
from aggregator.ingest.fetch import host_key
from aggregator.models import GONE_STATUS
from aggregator.models import Config
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import ScheduleHints
from aggregator.models import ScheduleRecord
from aggregator.models import SourceConfig

HOST_PAUSE_STATUSES = frozenset({429, 503})


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


def _seconds(value: int | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None


def whole_seconds(value: timedelta | None) -> int | None:
    return round(value.total_seconds()) if value is not None else None

