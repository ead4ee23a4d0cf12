"""The scheduler (aggregator.service.scheduler) polling a real fixture server on 127.0.0.1
with a controllable clock; the rules it applies are tested in test_policy.py."""

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
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.models import Config
from aggregator.models import PollOutcome
from aggregator.service.app import run_service
from aggregator.service.scheduler import PollScheduler
from aggregator.service.scheduler import quiet_when_stopped
from aggregator.service.settings import SchedulerSettings
from aggregator.store import Store
from tests.conftest import FIXTURES
from tests.store.queries import count_items
from tests.support.scheduling import due_sources
from tests.support.scheduling import run_due_polls
from tests.support.server import FixtureServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
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
    server.routes["/stuck.xml"] = Route(body=PLAIN_RSS, delay=30)
    server.routes["/quick.xml"] = Route(body=PLAIN_RSS.replace(b"plain-one", b"quick-one"))
    config = parse_config(config_text(server.base_url, ["/stuck.xml", "/quick.xml"]))
    quick = server.url("/quick.xml")

    async def scenario() -> PollScheduler:
        async with Fetcher(clock=clock) as fetcher:
            scheduler = make_scheduler(config, store, fetcher, clock)
            scheduler.start_due_polls()
            # Wait for the quick poll to finish (not a fixed sleep: a loaded machine is slow),
            # while the stuck one is still waiting for its answer.
            for _ in range(600):
                if quick not in scheduler.in_flight:
                    break
                await asyncio.sleep(0.05)
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
        # A liveness bound, not a speed claim: a loaded CI machine starts the service slowly.
        deadline = time.monotonic() + 60
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
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "stopped" in stdout
    assert "feeds.yaml reloaded" in stderr
    assert len(server.requests_for("/a.xml")) == 1


def test_a_job_cancelled_by_stop_ends_quietly_and_any_other_cancellation_is_raised() -> None:
    # APScheduler cancels the jobs running at shutdown and logs a cancelled job with a
    # traceback: a SIGTERM landing mid-tick printed one (tests/service/test_app.py saw it).
    stopping = False

    async def forever() -> None:
        await asyncio.Event().wait()

    async def cancel_once_started() -> asyncio.Task[None]:
        task = asyncio.ensure_future(quiet_when_stopped(forever, lambda: stopping)())
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return task

    task = asyncio.run(cancel_once_started())
    assert task.cancelled()  # not stopping: an ordinary cancellation
    stopping = True
    task = asyncio.run(cancel_once_started())
    assert not task.cancelled() and task.exception() is None
