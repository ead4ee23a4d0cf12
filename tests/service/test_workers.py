"""Several `aggregator run` processes on one PostgreSQL database, as in production:
three `--role worker` processes share a few hundred sources (each polled once per round,
nothing stored twice, cross-posts still merged), a worker killed mid-poll has its claim
taken over when the lease runs out, and two `--role web` replicas serve the same bytes
with the same ETags."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
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
from sqlalchemy import func
from sqlalchemy import select

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.demo.server import send
from aggregator.ingest.fetch import Fetcher
from aggregator.models import CacheValidators
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.service.hooks import Hook
from aggregator.service.hooks import SchedulerHooks
from aggregator.service.scheduler import PollScheduler
from aggregator.store import Store
from aggregator.store import schema
from tests.store.queries import count_items
from tests.store.queries import leases
from tests.support.scheduling import run_due_polls
from tests.support.server import FixtureServer

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = 300  # one feed each; members 2k and 2k+1 cross-post one statement
WORKERS = 3
JOINT_TEXT = (
    "The unions of the network call on parliament to withdraw the new labour code, which "
    "strips workers of the right to bargain collectively and lengthens the working week."
)
# One poll per source per round: the next poll is an hour or more away.
# "<logger>: <member name>: <source url>: <outcome>[: cause]; next poll …"
POLLED = re.compile(
    r"aggregator\.service\.scheduler: [^\n]*?: (\S+): "
    r"(new|updated|unchanged|failed)\b[^\n]*?; next poll"
)

postgres_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def feed_body(member: int, now: datetime) -> bytes:
    pair = member // 2
    stamp = format_datetime(now - timedelta(hours=1 + pair % 24), usegmt=True)
    own = "".join(
        f"<item><title>Member {member} local report {topic}</title>"
        f"<link>https://m{member}.example.org/{topic}</link><guid>m{member}-{topic}</guid>"
        f"<pubDate>{stamp}</pubDate><description>Local news {member} {topic}.</description>"
        "</item>"
        for topic in ("wages", "safety")
    )
    joint = (
        f"<item><title>Joint statement {pair} on the labour code</title>"
        f"<link>https://m{member}.example.org/joint-{pair}</link><guid>m{member}-joint</guid>"
        f"<pubDate>{stamp}</pubDate><description>{JOINT_TEXT} ({pair})</description></item>"
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Member {member}</title>'
        f"<link>https://m{member}.example.org/</link>{own}{joint}</channel></rss>"
    ).encode()


def config_text(base_url: str, paths: list[str]) -> str:
    members = "".join(
        f"""  - id: m{index}
    name: Member {index}
    url: https://m{index}.example.org/
    sources:
      - feed: {base_url}{path}
"""
        for index, path in enumerate(paths)
    )
    return f"""network:
  title: Test network
  url: https://wsr.example.org/
  feed_url: https://wsr.example.org/news/
  interval: 1h
members:
{members}"""


def aggregator(config: Path, database: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aggregator.cli",
            "--config",
            str(config),
            "--database",
            database,
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM, and what the process printed; it must stop cleanly."""
    process.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    return stdout, stderr


def wait_for(condition: Callable[[], bool], seconds: float = 180) -> bool:
    """Whether `condition` came true within `seconds`: a liveness bound, generous because a
    busy 2-core machine runs three worker processes and PostgreSQL here."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def scheduled_sources(database: str) -> int:
    """Sources whose poll outcome was saved (they have a next poll and no lease)."""
    store = Store.open(database)
    try:
        columns = schema.sources.c
        with store.engine.connect() as connection:
            return (
                connection.scalar(
                    select(func.count())
                    .select_from(schema.sources)
                    .where(columns.next_poll_at.is_not(None), columns.lease_owner.is_(None))
                )
                or 0
            )
    finally:
        store.close()


class Gate:
    """Holds every answer until released, so that all workers are up and claiming before
    the first poll can finish (else the first worker started could do the whole round)."""

    def __init__(self) -> None:
        self.open = threading.Event()

    def responder(self, route: Route) -> Callable[[BaseHTTPRequestHandler], None]:
        def respond(handler: BaseHTTPRequestHandler) -> None:
            self.open.wait(timeout=60)
            send(handler, route)

        return respond


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate()


@postgres_only
def test_three_workers_poll_every_source_once_and_store_nothing_twice(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[str]]
) -> None:
    now = datetime.now(UTC)
    gate = Gate()
    with FixtureServer() as server:
        paths = [f"/m{index}/feed.xml" for index in range(MEMBERS)]
        for index, path in enumerate(paths):
            route = Route(
                body=feed_body(index, now), headers={"Content-Type": "application/rss+xml"}
            )
            server.responders[path] = gate.responder(route)
        config_path = tmp_path / "feeds.yaml"
        config_path.write_text(config_text(server.base_url, paths), encoding="utf-8")
        Store.open(database_url).close()  # the schema, before the workers race to it

        for _ in range(WORKERS):
            workers.append(
                aggregator(
                    config_path, database_url, "run", "--role", "worker", "--tick-seconds", "0.3"
                )
            )
        for process in workers:
            assert process.stdout is not None
            assert "polling as a worker" in process.stdout.readline()
        # Every worker has had time for its first claims.
        assert wait_for(lambda: len(server.requests) >= WORKERS * 2, 30)
        time.sleep(1.0)
        gate.open.set()
        assert wait_for(lambda: scheduled_sources(database_url) == MEMBERS), (
            f"{scheduled_sources(database_url)} of {MEMBERS} sources polled"
        )
        time.sleep(1.0)  # more ticks: nothing is polled a second time
        logs = [stop(process)[1] for process in workers]
        requests = Counter(request.path for request in server.requests)

    assert requests == Counter(paths)  # every source exactly once, by one worker
    polled_by = [[url for url, _ in POLLED.findall(log)] for log in logs]
    assert sum(len(polled) for polled in polled_by) == MEMBERS  # no source by two workers
    urls_by_worker = [set(polled) for polled in polled_by]
    assert set().union(*urls_by_worker) == {server.url(path) for path in paths}
    assert all(urls_by_worker), [len(polled) for polled in polled_by]

    store = Store.open(database_url)
    try:
        assert count_items(store) == 3 * MEMBERS
        # Each member's two own stories, and each pair's statement once, crediting both.
        assert store.count_stories() == 2 * MEMBERS + MEMBERS // 2
        joint = [s for s in store.latest_stories(1000) if s.title.startswith("Joint statement")]
        assert len(joint) == MEMBERS // 2
        assert all(len(story.credits) == 2 for story in joint)
        assert leases(store) == {}
    finally:
        store.close()


@postgres_only
def test_a_killed_workers_claim_is_polled_by_another_after_the_lease(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[str]]
) -> None:
    now = datetime.now(UTC)
    lease = 3.0
    release = threading.Event()
    slow_requests: list[float] = []
    with FixtureServer() as server:
        fast = [f"/fast{index}.xml" for index in range(4)]
        for index, path in enumerate(fast):
            server.routes[path] = Route(
                body=feed_body(2 * index, now), headers={"Content-Type": "application/rss+xml"}
            )
        slow_route = Route(
            body=feed_body(101, now), headers={"Content-Type": "application/rss+xml"}
        )

        def slow(handler: BaseHTTPRequestHandler) -> None:
            slow_requests.append(time.monotonic())
            release.wait(timeout=60)  # the first worker dies before this answers
            send(handler, slow_route)

        server.responders["/slow.xml"] = slow
        config_path = tmp_path / "feeds.yaml"
        config_path.write_text(config_text(server.base_url, [*fast, "/slow.xml"]), encoding="utf-8")
        Store.open(database_url).close()
        options = (
            "run",
            "--role",
            "worker",
            "--tick-seconds",
            "0.2",
            "--lease-seconds",
            str(lease),
        )

        first = aggregator(config_path, database_url, *options)
        workers.append(first)
        assert wait_for(lambda: bool(slow_requests) and scheduled_sources(database_url) == 4)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
        release.set()
        store = Store.open(database_url)
        try:
            assert list(leases(store)) == [server.url("/slow.xml")]  # the dead one's claim

            second = aggregator(config_path, database_url, *options)
            workers.append(second)
            assert wait_for(
                lambda: len(slow_requests) == 2 and scheduled_sources(database_url) == 5
            )
            _, log = stop(second)
            assert count_items(store) == 5 * 3
            assert leases(store) == {}
        finally:
            store.close()
        fast_requests = Counter(request.path for request in server.requests)

    # Taken over only once the dead worker's lease had run out, by the second worker,
    # and the sources the first one finished were not polled again.
    assert slow_requests[1] - slow_requests[0] >= lease - 0.5
    assert [url for url, _ in POLLED.findall(log)] == [server.url("/slow.xml")]
    assert all(fast_requests[path] == 1 for path in fast)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def published_item(number: int, source_url: str, now: datetime) -> Item:
    return Item(
        member_id="m0",
        source_url=source_url,
        key=f"guid:{number}",
        url=f"https://m0.example.org/{number}",
        title=f"Report number {number}",
        content_html=f"<p>Report {number}.</p>",
        summary="",
        published=now - timedelta(hours=number),
        updated=now - timedelta(hours=number),
        date_from_source=True,
        content_hash=f"v{number}",
    )


@postgres_only
def test_web_replicas_serve_the_same_bytes_and_etags_and_poll_nothing(
    database_url: str, tmp_path: Path, workers: list[subprocess.Popen[str]]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with FixtureServer() as server:
        config_path = tmp_path / "feeds.yaml"
        config_path.write_text(config_text(server.base_url, ["/m0.xml"]), encoding="utf-8")
        config = parse_config(config_path.read_text(encoding="utf-8"), str(config_path))
        source = config.members[0].sources[0]
        store = Store.open(database_url)
        store.sync_config(config)

        def poll(numbers: range) -> None:
            result = FetchResult(
                source=source,
                fetched_at=now,
                final_url=source.url,
                status=200,
                content=f"<rss>{numbers}</rss>".encode(),
                validators=CacheValidators(),
            )
            store.record_items(result, [published_item(n, source.url, now) for n in numbers])

        poll(range(1, 6))
        ports = [free_port(), free_port()]
        for port in ports:
            workers.append(
                aggregator(config_path, database_url, "run", "--role", "web", "--port", str(port))
            )
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for port in ports]

        def answers(path: str) -> list[httpx.Response]:
            return [client.get(path) for client in clients]

        def up() -> bool:
            try:
                return all(response.status_code == 200 for response in answers("/healthz"))
            except httpx.TransportError:
                return False

        try:
            assert wait_for(up, 30)
            for path in ("/feed.atom", "/feed.json", "/api/items?limit=3", "/members/m0/feed.rss"):
                first, second = answers(path)
                assert first.status_code == second.status_code == 200
                assert first.content == second.content
                assert first.headers["etag"] == second.headers["etag"]
                # A client switched to the other replica keeps its cached copy.
                again = clients[1].get(path, headers={"If-None-Match": first.headers["etag"]})
                assert again.status_code == 304
            before = answers("/feed.atom")[0].headers["etag"]

            poll(range(1, 8))  # a worker stored two more stories

            def both_changed() -> bool:
                tags = {response.headers["etag"] for response in answers("/feed.atom")}
                return len(tags) == 1 and before not in tags

            assert wait_for(both_changed, 30)
            first, second = answers("/feed.atom")
            assert first.content == second.content
            assert b"Report number 7" in first.content
        finally:
            for client in clients:
                client.close()
            store.close()
        for process in workers:
            stop(process)
        assert server.requests == []  # web replicas poll nothing


def test_a_web_replicas_scheduler_claims_nothing_and_follows_feeds_yaml(tmp_path: Path) -> None:
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text(config_text("https://m.example.org", ["/a.xml"]), encoding="utf-8")
    config = parse_config(config_path.read_text(encoding="utf-8"), str(config_path))
    store = Store.open(f"sqlite:///{tmp_path / 'web.db'}")
    seen: list[int] = []

    async def scenario() -> None:
        async with Fetcher() as fetcher:
            scheduler = PollScheduler(
                config,
                store,
                fetcher,
                config_path=config_path,
                polling=False,
                hooks=SchedulerHooks(
                    after_reload=Hook(
                        "after_reload", [lambda reloaded: seen.append(len(reloaded.members))]
                    )
                ),
            )
            assert scheduler.start_due_polls() == []
            assert await run_due_polls(scheduler) == []
            edited = config_text("https://m.example.org", ["/a.xml", "/b.xml"])
            config_path.write_text(edited, encoding="utf-8")
            stamp = time.time() + 5
            os.utime(config_path, (stamp, stamp))
            assert scheduler.check_config() is True

    try:
        asyncio.run(scenario())
        assert seen == [2]
        # It wrote nothing: not even the members (the workers keep them in step).
        assert store.schedule_records() == {}
        assert leases(store) == {}
    finally:
        store.close()
