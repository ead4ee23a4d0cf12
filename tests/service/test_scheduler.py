"""The scheduling rules (pure, with a fixed clock and seeded randomness) and the scheduler
polling a real fixture server on 127.0.0.1 with a controllable clock."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.fetch import cache_max_age
from aggregator.ingest.fetch import retry_after
from aggregator.models import Config
from aggregator.models import PollOutcome
from aggregator.models import ScheduleHints
from aggregator.models import SourceConfig
from aggregator.service.app import run_service
from aggregator.service.policy import DEFAULT_POLICY
from aggregator.service.policy import SchedulePolicy
from aggregator.service.policy import ScheduleState
from aggregator.service.policy import adaptive_ceiling
from aggregator.service.policy import configured_interval
from aggregator.service.policy import decide
from aggregator.service.policy import next_poll
from aggregator.service.scheduler import PollScheduler
from aggregator.service.settings import SchedulerSettings
from aggregator.store import Store
from tests.conftest import FIXTURES
from tests.store.queries import count_items
from tests.support.scheduling import due_sources
from tests.support.scheduling import run_due_polls
from tests.support.server import FixtureServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
NO_JITTER = SchedulePolicy(jitter=0.0)
CONDITIONAL = ScheduleHints(status=200, conditional=True)
RSS = (FIXTURES / "rss_ttl_syndication.xml").read_bytes()
PLAIN_RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Plain</title>
<link>https://plain.example.org/</link><item><title>One story</title>
<link>https://plain.example.org/one</link><guid>plain-one</guid>
<pubDate>Mon, 30 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"""


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime = NOW) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


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


def config_text(base: str, sources: list[str], *, interval: str = "1h") -> str:
    lines = "\n".join(f"      - feed: {base}{path}" for path in sources)
    return f"""network:
  title: Test network
  url: https://wsr.example.org/
  feed_url: https://wsr.example.org/news
  interval: {interval}
members:
  - id: dairy
    name: Dairy Workers
    url: https://dairy.example.org/
    sources:
{lines}
"""


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


# --- headers and feed elements become hints -------------------------------------------


def test_cache_control_and_retry_after_headers_are_read() -> None:
    assert cache_max_age(httpx.Headers({"Cache-Control": "public, max-age=600"})) == 600
    assert cache_max_age(httpx.Headers({"Cache-Control": "no-cache, max-age=600"})) is None
    assert cache_max_age(httpx.Headers({"Cache-Control": "max-age=soon"})) is None
    assert retry_after(httpx.Headers({"Retry-After": "120"}), NOW) == NOW + timedelta(minutes=2)
    date = format_datetime(NOW + HOUR, usegmt=True)
    assert retry_after(httpx.Headers({"Retry-After": date}), NOW) == NOW + HOUR
    assert retry_after(httpx.Headers({"Retry-After": "whenever"}), NOW) is None


# --- the scheduler against a fixture server -------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_scheduler(
    config: Config, store: Store, fetcher: Fetcher, clock: FakeClock, **kwargs: object
) -> PollScheduler:
    return PollScheduler(
        config,
        store,
        fetcher,
        now=clock,
        rng=random.Random(3),
        **kwargs,  # type: ignore[arg-type]
    )


def test_due_polls_run_once_and_are_rescheduled_from_the_database(
    server: FixtureServer, store: Store, clock: FakeClock
) -> None:
    server.routes["/ttl.xml"] = Route(body=RSS, headers={"Content-Type": "application/rss+xml"})
    server.routes["/plain.xml"] = Route(
        body=PLAIN_RSS, headers={"Content-Type": "application/rss+xml"}
    )
    config = parse_config(config_text(server.base_url, ["/ttl.xml", "/plain.xml"]))

    async def scenario() -> None:
        async with Fetcher(clock=clock) as fetcher:
            scheduler = make_scheduler(config, store, fetcher, clock)
            reports = await run_due_polls(scheduler)
            assert sorted(r.outcome.value for r in reports) == ["new", "new"]
            assert await run_due_polls(scheduler) == []  # nothing due a moment later

    asyncio.run(scenario())
    records = store.schedule_records()
    ttl_record = records[server.url("/ttl.xml")]
    plain_record = records[server.url("/plain.xml")]
    # <ttl>180</ttl> (3 h) and sy:updatePeriod daily / 4 (6 h): the longer one is the floor.
    assert ttl_record.declared_interval_seconds == 6 * 3600
    assert ttl_record.next_poll_at == NOW + timedelta(hours=6)
    assert plain_record.next_poll_at is not None
    assert NOW + 0.9 * HOUR <= plain_record.next_poll_at <= NOW + 1.1 * HOUR

    # A restart: a new scheduler on the same database polls nothing until time has come.
    async def restart() -> list[str]:
        async with Fetcher(clock=clock) as fetcher:
            scheduler = make_scheduler(config, store, fetcher, clock)
            before = await run_due_polls(scheduler)
            assert before == []
            clock.advance(timedelta(minutes=70))
            return [report.source.url for report in await run_due_polls(scheduler)]

    assert asyncio.run(restart()) == [server.url("/plain.xml")]
    assert len(server.requests_for("/plain.xml")) == 2
    assert len(server.requests_for("/ttl.xml")) == 1
    # The second request was conditional: the scheduler never drops validators.
    assert "if-none-match" in server.requests_for("/plain.xml")[1].headers


def test_a_429_pauses_every_source_on_that_host(
    server: FixtureServer, store: Store, clock: FakeClock
) -> None:
    server.routes["/limited.xml"] = Route(status=429, headers={"Retry-After": "1800"})
    server.routes["/other.xml"] = Route(body=PLAIN_RSS)
    config = parse_config(config_text(server.base_url, ["/limited.xml", "/other.xml"]))

    async def scenario() -> None:
        async with Fetcher(clock=clock) as fetcher:
            scheduler = make_scheduler(config, store, fetcher, clock)
            # Only the limited source is due at first; the other one was polled already.
            store.set_next_poll(server.url("/other.xml"), NOW + timedelta(minutes=5))
            reports = await run_due_polls(scheduler)
            assert [r.outcome for r in reports] == [PollOutcome.FAILED]
            clock.advance(timedelta(minutes=10))
            assert due_sources(scheduler) == []  # other.xml is due, but its host is paused
            clock.advance(timedelta(minutes=21))
            due = [source.url for source in due_sources(scheduler)]
            assert due == [server.url("/other.xml")]

    asyncio.run(scenario())
    pauses = store.host_pauses(NOW)
    assert [pause.until for pause in pauses.values()] == [NOW + timedelta(minutes=30)]


def test_the_same_source_is_never_polled_twice_at_once(
    server: FixtureServer, store: Store, clock: FakeClock
) -> None:
    server.routes["/slow.xml"] = Route(body=PLAIN_RSS, delay=0.5)
    config = parse_config(config_text(server.base_url, ["/slow.xml"]))

    async def scenario() -> None:
        async with Fetcher(clock=clock) as fetcher:
            scheduler = make_scheduler(config, store, fetcher, clock)
            first = scheduler.start_due_polls()
            await asyncio.sleep(0.1)
            assert scheduler.in_flight == {server.url("/slow.xml")}
            assert scheduler.start_due_polls() == []  # still due, but in flight
            await asyncio.gather(*first)
            assert scheduler.in_flight == set()

    asyncio.run(scenario())
    assert len(server.requests_for("/slow.xml")) == 1


class ConcurrencyCounter:
    """A responder that answers slowly and records the most requests it saw at once."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.current = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.current += 1
            self.most = max(self.most, self.current)
        try:
            time.sleep(0.3)
            handler.send_response(200)
            handler.send_header("Content-Type", "application/rss+xml")
            handler.send_header("Content-Length", str(len(self.body)))
            handler.end_headers()
            handler.wfile.write(self.body)
        finally:
            with self.lock:
                self.current -= 1


def test_at_most_two_requests_at_once_per_host(
    server: FixtureServer, store: Store, clock: FakeClock
) -> None:
    counter = ConcurrencyCounter(PLAIN_RSS)
    paths = [f"/feed-{number}.xml" for number in range(6)]
    for path in paths:
        server.responders[path] = counter
    with FixtureServer() as other_host:
        other = ConcurrencyCounter(PLAIN_RSS)
        other_host.responders["/feed.xml"] = other
        text = (
            config_text(server.base_url, paths) + f"      - feed: {other_host.url('/feed.xml')}\n"
        )
        config = parse_config(text)

        async def scenario() -> float:
            async with Fetcher(clock=clock) as fetcher:
                scheduler = make_scheduler(config, store, fetcher, clock)
                started = time.monotonic()
                reports = await run_due_polls(scheduler)
                assert len(reports) == 7
                return time.monotonic() - started

        elapsed = asyncio.run(scenario())
    assert counter.most == 2
    assert other.most == 1
    assert elapsed >= 0.85  # six slow requests, two at a time: three rounds of 0.3 s


def test_shutdown_abandons_polls_after_the_grace_period_without_damage(
    server: FixtureServer, store: Store, clock: FakeClock
) -> None:
    server.routes["/stuck.xml"] = Route(body=PLAIN_RSS, delay=3)
    server.routes["/quick.xml"] = Route(body=PLAIN_RSS.replace(b"plain-one", b"quick-one"))
    config = parse_config(config_text(server.base_url, ["/stuck.xml", "/quick.xml"]))

    async def scenario() -> PollScheduler:
        async with Fetcher(clock=clock) as fetcher:
            scheduler = make_scheduler(config, store, fetcher, clock)
            scheduler.start_due_polls()
            await asyncio.sleep(0.3)
            await scheduler.stop(grace_seconds=0.2)
            assert scheduler.start_due_polls() == []  # stopped: nothing new starts
            return scheduler

    scheduler = asyncio.run(scenario())
    assert scheduler.in_flight == set()
    records = store.schedule_records()
    assert records[server.url("/quick.xml")].next_poll_at is not None
    stuck = store.source_state(server.url("/stuck.xml"))
    assert stuck.last_polled_at is None  # abandoned whole: nothing half-written
    assert records[server.url("/stuck.xml")].next_poll_at is None  # due again on restart
    assert count_items(store) == 1


# --- hot reload -----------------------------------------------------------------------


def write_config(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    # Some file systems keep a coarse mtime; the size also differs between our edits,
    # but moving the mtime on makes the change unmistakable.
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))


def test_hot_reload_applies_a_good_edit_and_keeps_the_old_config_on_a_bad_one(
    server: FixtureServer,
    store: Store,
    clock: FakeClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.routes["/a.xml"] = Route(body=PLAIN_RSS)
    server.routes["/b.xml"] = Route(body=PLAIN_RSS.replace(b"plain-one", b"b-one"))
    path = tmp_path / "feeds.yaml"
    path.write_text(config_text(server.base_url, ["/a.xml"]), encoding="utf-8")
    config = parse_config(path.read_text(), str(path))

    async def scenario() -> None:
        async with Fetcher(clock=clock) as fetcher:
            scheduler = make_scheduler(config, store, fetcher, clock, config_path=path)
            await run_due_polls(scheduler)
            assert scheduler.check_config() is False  # unchanged file: nothing to do

            write_config(path, config_text(server.base_url, ["/b.xml"]))
            assert scheduler.check_config() is True
            due = [source.url for source in due_sources(scheduler)]
            assert due == [server.url("/b.xml")]  # new source soon, removed one gone
            clock.advance(timedelta(hours=3))
            polled = [r.source.url for r in await run_due_polls(scheduler)]
            assert polled == [server.url("/b.xml")]

            with caplog.at_level(logging.ERROR, logger="aggregator.service.reload"):
                bad = config_text(server.base_url, ["/a.xml"]).replace("interval:", "intervl:")
                write_config(path, bad)
                assert scheduler.check_config() is False
            assert "cannot be used" in caplog.text
            assert "intervl" in caplog.text
            assert [s.url for m in scheduler.config.members for s in m.sources] == [
                server.url("/b.xml")
            ]

    asyncio.run(scenario())
    assert len(server.requests_for("/a.xml")) == 1


def test_reload_with_a_shorter_interval_brings_the_next_poll_forward(
    server: FixtureServer, store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    server.routes["/a.xml"] = Route(body=PLAIN_RSS)
    path = tmp_path / "feeds.yaml"
    path.write_text(config_text(server.base_url, ["/a.xml"], interval="1d"), encoding="utf-8")
    config = parse_config(path.read_text(), str(path))

    async def scenario() -> None:
        async with Fetcher(clock=clock) as fetcher:
            scheduler = make_scheduler(config, store, fetcher, clock, config_path=path)
            await run_due_polls(scheduler)
            write_config(path, config_text(server.base_url, ["/a.xml"], interval="30m"))
            assert scheduler.check_config()

    asyncio.run(scenario())
    next_at = store.schedule_records()[server.url("/a.xml")].next_poll_at
    assert next_at is not None
    assert next_at <= NOW + timedelta(minutes=33)


# --- the real AsyncIOScheduler, briefly -----------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'service.db'}")
    yield opened
    opened.close()


def test_apscheduler_ticks_poll_due_sources(server: FixtureServer, sqlite_store: Store) -> None:
    server.routes["/a.xml"] = Route(body=PLAIN_RSS)
    config = parse_config(config_text(server.base_url, ["/a.xml"]))

    async def scenario() -> None:
        async with Fetcher() as fetcher:
            scheduler = PollScheduler(
                config,
                sqlite_store,
                fetcher,
                settings=SchedulerSettings(tick_seconds=0.1, reload_seconds=0.1),
            )
            scheduler.start()
            for _ in range(50):
                await asyncio.sleep(0.1)
                if count_items(sqlite_store):
                    break
            await asyncio.sleep(0.3)  # more ticks: the source is not due again
            await scheduler.stop()

    asyncio.run(scenario())
    assert count_items(sqlite_store) == 1
    assert len(server.requests_for("/a.xml")) == 1


def test_run_service_serves_the_app_and_stops_cleanly(
    server: FixtureServer, sqlite_store: Store
) -> None:
    server.routes["/a.xml"] = Route(body=PLAIN_RSS)
    config = parse_config(config_text(server.base_url, ["/a.xml"]))

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        assert scope["type"] in ("http", "lifespan")
        if scope["type"] == "lifespan":
            return
        body = b"hello from the service"
        await send(  # type: ignore[operator]
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"22")]}
        )
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    async def scenario() -> str:
        stop = asyncio.Event()
        port = _free_port()
        task = asyncio.create_task(
            run_service(
                config,
                sqlite_store,
                app=app,
                port=port,
                stop=stop,
                settings=SchedulerSettings(tick_seconds=0.1),
            )
        )
        async with httpx.AsyncClient(trust_env=False) as client:
            text = ""
            for _ in range(50):
                await asyncio.sleep(0.1)
                try:
                    text = (await client.get(f"http://127.0.0.1:{port}/")).text
                except httpx.ConnectError:
                    continue
                if count_items(sqlite_store):
                    break
        stop.set()
        await asyncio.wait_for(task, timeout=15)
        return text

    assert asyncio.run(scenario()) == "hello from the service"
    assert count_items(sqlite_store) == 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_aggregator_run_polls_serves_reloads_and_stops_on_sigterm(
    server: FixtureServer, tmp_path: Path
) -> None:
    server.routes["/a.xml"] = Route(body=PLAIN_RSS)
    server.routes["/b.xml"] = Route(body=PLAIN_RSS.replace(b"plain-one", b"b-one"))
    path = tmp_path / "feeds.yaml"
    path.write_text(config_text(server.base_url, ["/a.xml"]), encoding="utf-8")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "aggregator.cli",
        "--config",
        str(path),
        "--database",
        f"sqlite:///{tmp_path / 'run.db'}",
        "run",
        "--port",
        str(port),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )

    def states() -> dict[str, str]:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/status.json", trust_env=False)
        except httpx.TransportError:
            return {}
        return {s["url"]: s["state"] for s in response.json()["sources"]}

    def wait_for(condition: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.2)
        return False

    try:
        assert wait_for(lambda: states().get(server.url("/a.xml")) == "ok")
        write_config(path, config_text(server.base_url, ["/a.xml", "/b.xml"]))
        assert wait_for(lambda: states().get(server.url("/b.xml")) == "ok")
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "stopped" in stdout
    assert "feeds.yaml reloaded" in stderr
    assert len(server.requests_for("/a.xml")) == 1
