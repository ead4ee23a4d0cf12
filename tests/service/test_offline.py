"""What staff see when polls fail: the cause and the member in the scheduler's log line,
and the machine's own network being down told apart from members' sites being down.

The rule (schedule.offline_cause, decide(offline=...)) is tested as pure functions; the
scheduler is then run against closed ports on 127.0.0.1 (connection refused, as when the
machine is offline) and a real fixture server, with a clock the tests move by hand.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import CONNECTION_REFUSED
from aggregator.ingest.fetch import DNS_FAILED
from aggregator.ingest.fetch import Fetcher
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import ScheduleHints
from aggregator.models import SourceConfig
from aggregator.service.policy import SchedulePolicy
from aggregator.service.policy import ScheduleState
from aggregator.service.policy import decide
from aggregator.service.policy import offline_cause
from aggregator.service.scheduler import PollScheduler
from aggregator.store import Store
from tests.support.scheduling import run_due_polls
from tests.support.server import FixtureServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
NO_JITTER = SchedulePolicy(jitter=0.0)
PLAIN_RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Plain</title>
<link>https://plain.example.org/</link><item><title>One story</title>
<link>https://plain.example.org/one</link><guid>plain-one</guid>
<pubDate>Mon, 30 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"""


def failed(url: str, error: str | None) -> PollReport:
    source = SourceConfig(member_id="m", url=url, kind="feed")
    if error is None:
        return PollReport(source=source, outcome=PollOutcome.UNCHANGED)
    return PollReport(source=source, outcome=PollOutcome.FAILED, error=error)


# --- the rule -------------------------------------------------------------------------


def test_a_round_failing_everywhere_the_same_unreachable_way_is_the_machine_offline() -> None:
    dns = [failed("https://a.example/feed", DNS_FAILED), failed("https://b.example/", DNS_FAILED)]
    assert offline_cause(dns) == DNS_FAILED
    refused = [failed("http://127.0.0.1:1/", CONNECTION_REFUSED)]
    refused.append(failed("http://127.0.0.1:2/", CONNECTION_REFUSED))
    assert offline_cause(refused) == CONNECTION_REFUSED


@pytest.mark.parametrize(
    "reports",
    [
        # One host refusing is that host's fault.
        [failed("https://a.example/1", DNS_FAILED), failed("https://a.example/2", DNS_FAILED)],
        # Any site answering means the network works.
        [failed("https://a.example/", DNS_FAILED), failed("https://b.example/", None)],
        # Failing in different ways is the sites' doing.
        [
            failed("https://a.example/", DNS_FAILED),
            failed("https://b.example/", CONNECTION_REFUSED),
        ],
        [
            failed("https://a.example/", "HTTP 404 (not found)"),
            failed("https://b.example/", "HTTP 404 (not found)"),
        ],
        [],
    ],
)
def test_anything_else_is_not_the_machine_offline(reports: list[PollReport]) -> None:
    assert offline_cause(reports) is None


def test_offline_failures_are_retried_within_minutes_not_backed_off_by_hours() -> None:
    after_three = ScheduleState(configured=HOUR, failures=3)
    hints = ScheduleHints(status=None)
    backed_off = decide(after_three, PollOutcome.FAILED, hints, NOW, random.Random(1), NO_JITTER)
    assert backed_off.next_poll_at - NOW == 16 * HOUR
    offline = decide(
        after_three, PollOutcome.FAILED, hints, NOW, random.Random(1), NO_JITTER, offline=True
    )
    assert offline.next_poll_at - NOW == timedelta(minutes=3)
    assert "offline" in offline.reason
    # Never later than the source's own backoff: a 1-minute source stays at 2 minutes.
    fast = ScheduleState(configured=timedelta(minutes=1))
    quick = decide(fast, PollOutcome.FAILED, hints, NOW, random.Random(1), NO_JITTER, offline=True)
    assert quick.next_poll_at - NOW == timedelta(minutes=2)


# --- the scheduler --------------------------------------------------------------------


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def two_member_config(first: str, second: str) -> str:
    return f"""network:
  title: Test network
  url: https://wsr.example.org/
  feed_url: https://wsr.example.org/news
  interval: 1h
members:
  - id: ctul
    name: Centro de Trabajadores Unidos en la Lucha
    url: https://ctul.example.org/
    sources:
      - feed: {first}
  - id: dairy
    name: Dairy Workers
    url: https://dairy.example.org/
    sources:
      - feed: {second}
"""


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'offline.db'}")
    yield store
    store.close()


def poll_round(config_text: str, store: Store, now: datetime) -> PollScheduler:
    config = parse_config(config_text)

    async def scenario() -> PollScheduler:
        async with Fetcher(clock=lambda: now) as fetcher:
            scheduler = PollScheduler(
                config, store, fetcher, now=lambda: now, rng=random.Random(3)
            )
            await run_due_polls(scheduler)
            return scheduler

    return asyncio.run(scenario())


def test_every_source_refused_says_offline_once_and_retries_in_minutes(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    first = f"http://127.0.0.1:{closed_port()}/feed.xml"
    second = f"http://127.0.0.1:{closed_port()}/rss"
    caplog.set_level(logging.INFO, logger="aggregator.service.scheduler")
    scheduler = poll_round(two_member_config(first, second), sqlite_store, NOW)
    assert scheduler.offline == CONNECTION_REFUSED
    messages = [record.getMessage() for record in caplog.records if record.levelno >= logging.INFO]
    offline = [message for message in messages if "appears to be offline" in message]
    assert len(offline) == 1, messages
    # Said once for the machine, not once more per source.
    assert not [message for message in messages if first in message or second in message]
    records = sqlite_store.schedule_records()
    for url in (first, second):
        next_poll_at = records[url].next_poll_at
        assert next_poll_at is not None
        assert next_poll_at - NOW <= timedelta(minutes=3.5)


def test_one_site_refusing_while_others_answer_is_backed_off_and_named(
    sqlite_store: Store, server: FixtureServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/plain.xml"] = Route(body=PLAIN_RSS)
    refused = f"http://127.0.0.1:{closed_port()}/feed/"
    caplog.set_level(logging.INFO, logger="aggregator.service.scheduler")
    config = two_member_config(refused, server.url("/plain.xml"))
    scheduler = poll_round(config, sqlite_store, NOW)
    assert scheduler.offline is None
    messages = [record.getMessage() for record in caplog.records]
    assert not [message for message in messages if "offline" in message]
    # The failure's line names the member, the address and the cause in plain words.
    failure = [record for record in caplog.records if refused in record.getMessage()]
    assert len(failure) == 1
    assert failure[0].levelno == logging.WARNING
    line = failure[0].getMessage()
    assert line.startswith(f"Centro de Trabajadores Unidos en la Lucha: {refused}: failed: ")
    assert CONNECTION_REFUSED in line
    next_poll_at = sqlite_store.schedule_records()[refused].next_poll_at
    assert next_poll_at is not None
    assert next_poll_at - NOW >= timedelta(hours=1.5)
