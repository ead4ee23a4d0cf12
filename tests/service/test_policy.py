"""The scheduling rules (aggregator.service.policy): pure, with a fixed clock and seeded
randomness."""

from __future__ import annotations

import random
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from aggregator.config import parse_config
from aggregator.models import PollOutcome
from aggregator.models import ScheduleHints
from aggregator.models import SourceConfig
from aggregator.service.policy import DEFAULT_POLICY
from aggregator.service.policy import SchedulePolicy
from aggregator.service.policy import ScheduleState
from aggregator.service.policy import adaptive_ceiling
from aggregator.service.policy import configured_interval
from aggregator.service.policy import decide
from aggregator.service.policy import next_poll
from tests.conftest import FIXTURES

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
NO_JITTER = SchedulePolicy(jitter=0.0)
CONDITIONAL = ScheduleHints(status=200, conditional=True)


def state(configured: timedelta = HOUR, **kwargs: object) -> ScheduleState:
    return ScheduleState(configured=configured, **kwargs)  # type: ignore[arg-type]


def delay(
    outcome: PollOutcome,
    hints: ScheduleHints = CONDITIONAL,
    current: ScheduleState | None = None,
    policy: SchedulePolicy = NO_JITTER,
) -> timedelta:
    when = next_poll(current or state(), outcome, hints, NOW, random.Random(1), policy)
    return when - NOW


# --- intervals ------------------------------------------------------------------------


def test_interval_is_the_sources_then_the_members_then_the_networks() -> None:
    config = parse_config((FIXTURES / "config" / "two_members_feed_and_page.yaml").read_text())
    ciw_feed = config.member("ciw").sources[0]
    center_page = config.member("example-center").sources[0]
    assert configured_interval(config, ciw_feed) == timedelta(minutes=30)
    assert configured_interval(config, center_page) == timedelta(days=1)
    bare = SourceConfig(member_id="ciw", kind="feed", url="https://ciw-online.org/other")
    assert configured_interval(config, bare) == timedelta(hours=2)


def test_an_unchanged_poll_waits_the_configured_interval() -> None:
    assert delay(PollOutcome.UNCHANGED, current=state(timedelta(hours=2))) == timedelta(hours=2)
    assert delay(PollOutcome.NEW, current=state(timedelta(minutes=30))) == timedelta(minutes=30)


def test_jitter_stays_within_ten_percent_and_spreads_sources() -> None:
    delays = [
        next_poll(state(), PollOutcome.NEW, CONDITIONAL, NOW, random.Random(seed)) - NOW
        for seed in range(500)
    ]
    assert all(timedelta(minutes=54) <= d <= timedelta(minutes=66) for d in delays)
    assert max(delays) - min(delays) > timedelta(minutes=10)  # not in lockstep
    assert len(set(delays)) > 400


def test_jitter_is_bounded_for_long_intervals() -> None:
    day = timedelta(days=1)
    delays = [
        next_poll(state(day), PollOutcome.NEW, CONDITIONAL, NOW, random.Random(seed)) - NOW
        for seed in range(300)
    ]
    assert all(abs(d - day) <= DEFAULT_POLICY.max_jitter for d in delays)
    assert max(delays) - min(delays) > timedelta(minutes=20)


def test_same_seed_same_decision() -> None:
    first = decide(state(), PollOutcome.NEW, CONDITIONAL, NOW, random.Random(7))
    second = decide(state(), PollOutcome.NEW, CONDITIONAL, NOW, random.Random(7))
    assert first == second


# --- failures -------------------------------------------------------------------------


def test_failures_back_off_exponentially_to_a_ceiling() -> None:
    failed = ScheduleHints(status=500)
    delays = [delay(PollOutcome.FAILED, failed, state(failures=failures)) for failures in range(8)]
    assert delays[:4] == [2 * HOUR, 4 * HOUR, 8 * HOUR, 16 * HOUR]
    assert delays[4:] == [timedelta(hours=24)] * 4


def test_a_source_failing_for_months_does_not_overflow() -> None:
    assert delay(PollOutcome.FAILED, ScheduleHints(), state(failures=5000)) == timedelta(hours=24)


def test_recovery_returns_to_the_configured_interval() -> None:
    after_failures = state(failures=6, interval=HOUR)
    assert delay(PollOutcome.NEW, CONDITIONAL, after_failures) == HOUR
    decision = decide(after_failures, PollOutcome.UNCHANGED, CONDITIONAL, NOW, random.Random(1))
    assert decision.next_poll_at - NOW <= 1.1 * HOUR


def test_gone_waits_the_full_ceiling_at_once() -> None:
    assert delay(PollOutcome.FAILED, ScheduleHints(status=410)) == timedelta(hours=24)


def test_a_long_configured_interval_is_never_shortened_by_backoff() -> None:
    two_days = timedelta(days=2)
    assert delay(PollOutcome.FAILED, ScheduleHints(status=500), state(two_days)) == two_days


# --- adaptive -------------------------------------------------------------------------


def test_unchanged_sources_slow_down_to_a_ceiling_and_speed_up_on_news() -> None:
    current = state()
    seen = []
    for _ in range(12):
        decision = decide(
            current, PollOutcome.UNCHANGED, CONDITIONAL, NOW, random.Random(), NO_JITTER
        )
        seen.append(decision.next_poll_at - NOW)
        current = ScheduleState(
            configured=HOUR,
            interval=decision.interval,
            unchanged_polls=decision.unchanged_polls,
        )
    assert seen[:2] == [HOUR, HOUR]
    assert seen[2:5] == [2 * HOUR] * 3
    assert seen[5:] == [4 * HOUR] * 7  # 4 × the configured hour
    news = decide(current, PollOutcome.NEW, CONDITIONAL, NOW, random.Random(), NO_JITTER)
    assert news.next_poll_at - NOW == HOUR
    assert news.unchanged_polls == 0
    assert news.interval == HOUR


def test_adaptive_ceiling_is_at_most_a_day_and_never_below_the_configured() -> None:
    assert adaptive_ceiling(HOUR) == 4 * HOUR
    assert adaptive_ceiling(timedelta(hours=12)) == timedelta(hours=24)
    assert adaptive_ceiling(timedelta(days=3)) == timedelta(days=3)


def test_a_remembered_interval_outside_the_bounds_is_clamped() -> None:
    """After staff shorten `interval:`, the old adaptive interval cannot exceed the ceiling."""
    stale = state(HOUR, interval=timedelta(days=3), unchanged_polls=1)
    assert delay(PollOutcome.UNCHANGED, CONDITIONAL, stale) == 4 * HOUR


# --- politeness lower bounds ----------------------------------------------------------


def test_cache_control_max_age_is_a_lower_bound() -> None:
    hints = ScheduleHints(status=200, cache_max_age=3 * 3600, conditional=True)
    assert delay(PollOutcome.NEW, hints) == 3 * HOUR
    shorter = ScheduleHints(status=200, cache_max_age=60, conditional=True)
    assert delay(PollOutcome.NEW, shorter) == HOUR


def test_retry_after_is_a_lower_bound_on_success_and_failure() -> None:
    later = NOW + timedelta(hours=5)
    assert delay(PollOutcome.NEW, ScheduleHints(status=200, retry_after=later)) == 5 * HOUR
    assert delay(PollOutcome.FAILED, ScheduleHints(status=500, retry_after=later)) == 5 * HOUR


def test_rss_ttl_and_update_period_are_lower_bounds_and_remembered() -> None:
    hints = ScheduleHints(status=200, ttl_minutes=180, conditional=True)
    decision = decide(state(), PollOutcome.NEW, hints, NOW, random.Random(), NO_JITTER)
    assert decision.next_poll_at - NOW == 3 * HOUR
    assert decision.declared == 3 * HOUR
    # A 304 carries no feed body, so the declared ttl is remembered from the last parse.
    remembered = state(declared=decision.declared)
    assert delay(PollOutcome.UNCHANGED, CONDITIONAL, remembered) == 3 * HOUR
    daily = ScheduleHints(status=200, update_period=timedelta(days=1), conditional=True)
    assert delay(PollOutcome.NEW, daily) == timedelta(days=1)


def test_hints_are_capped_so_a_wild_value_cannot_silence_a_member() -> None:
    hints = ScheduleHints(status=200, ttl_minutes=60 * 24 * 365, cache_max_age=10**9)
    assert delay(PollOutcome.NEW, hints) == timedelta(hours=24)


def test_unchanged_source_without_validators_is_fetched_at_most_hourly() -> None:
    fast = state(timedelta(minutes=10))
    no_validators = ScheduleHints(status=200, conditional=False)
    assert delay(PollOutcome.UNCHANGED, no_validators, fast) == HOUR
    assert delay(PollOutcome.UNCHANGED, CONDITIONAL, fast) == timedelta(minutes=10)
    assert delay(PollOutcome.NEW, no_validators, fast) == timedelta(minutes=10)


def test_jitter_never_goes_below_a_lower_bound() -> None:
    hints = ScheduleHints(status=200, cache_max_age=3600, conditional=True)
    for seed in range(200):
        when = next_poll(state(), PollOutcome.NEW, hints, NOW, random.Random(seed))
        assert when - NOW >= HOUR


def test_429_and_503_pause_the_host_until_retry_after_or_an_hour() -> None:
    later = NOW + timedelta(minutes=90)
    limited = decide(
        state(),
        PollOutcome.FAILED,
        ScheduleHints(status=429, retry_after=later),
        NOW,
        random.Random(),
    )
    assert limited.host_pause_until == later
    assert limited.next_poll_at >= later
    unavailable = decide(
        state(), PollOutcome.FAILED, ScheduleHints(status=503), NOW, random.Random()
    )
    assert unavailable.host_pause_until == NOW + HOUR
    other = decide(state(), PollOutcome.FAILED, ScheduleHints(status=500), NOW, random.Random())
    assert other.host_pause_until is None
