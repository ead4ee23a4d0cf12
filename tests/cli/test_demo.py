"""`aggregator demo`, run as a newcomer runs it: a subprocess, its printed lines, its links.

The demo serves its sample member sites on a 127.0.0.1 port of its own; with --serve it then
runs the real service. These tests read what it printed, the feeds it published (parsed back
with feedparser) and follow every story link to the sample sites over real sockets.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path

import feedparser
import httpx
import pytest

from aggregator.store import Store
from tests.service.test_websub import free_port

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = {"harvest", "dairy", "cleaners", "garment", "faith"}
SOURCE_LINE = re.compile(
    r"(?P<member>[a-z]+): new: http://127\.0\.0\.1:\d+/[a-z]+/\S* \(\d+ new\)"
)
CONTINUE_READING = re.compile(r'<a[^>]* href="([^"]+)"[^>]*>Continue reading')
# How long the demo may take to fetch, export and start serving on a loaded machine; a
# ceiling on waiting, never a measure of speed.
START_DEADLINE_SECONDS = 120.0


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "aggregator.cli", "demo", *args]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def check_source_lines(lines: list[str]) -> None:
    """The first lines: exactly one per sample source, naming where it was read."""
    matches = [SOURCE_LINE.fullmatch(line) for line in lines[: len(MEMBERS)]]
    assert all(matches), lines
    assert {match.group("member") for match in matches if match} == MEMBERS


def test_demo_prints_one_line_per_source_and_where_the_feed_is(tmp_path: Path) -> None:
    output = tmp_path / "demo"
    finished = subprocess.run(
        demo_command("--output", str(output)),
        capture_output=True,
        text=True,
        env=environment(),
        cwd=tmp_path,
        timeout=START_DEADLINE_SECONDS,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    lines = finished.stdout.splitlines()
    check_source_lines(lines)
    feed_path = (output / "published" / "feed.atom").resolve()
    page_path = (output / "published" / "index.html").resolve()
    assert lines[len(MEMBERS) :] == [
        f"The combined feed: {feed_path}",
        f"Its news page: {page_path} (the stories' links open while "
        "`aggregator demo --serve` runs)",
    ]
    feed = feedparser.parse(feed_path.read_bytes())
    assert not feed.bozo and len(feed.entries) >= 20
    joint = [entry for entry in feed.entries if len(entry.get("authors", [])) > 1]
    assert joint, "the demo's cross-posted statement should be credited to two members"
    # Every story is on the demo's own sample sites, none on a made-up host.
    assert all(entry.link.startswith("http://127.0.0.1:") for entry in feed.entries)
    assert b".example" not in feed_path.read_bytes()


@dataclass
class ServingDemo:
    process: subprocess.Popen[str]
    base: str  # the demo's web site
    output: Path


def start_demo(tmp_path: Path, *options: str) -> ServingDemo:
    """`aggregator demo --serve --port N [options]`, once its web site answers."""
    port = free_port()
    output = tmp_path / "demo"
    process = subprocess.Popen(
        demo_command("--output", str(output), "--serve", "--port", str(port), *options),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(),
        cwd=tmp_path,
    )
    demo = ServingDemo(process=process, base=f"http://127.0.0.1:{port}", output=output)
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        try:
            # Not the access log's test page (/members.opml), so that no line is printed yet.
            if httpx.get(demo.base + "/feed.atom").status_code == 200:
                return demo
        except httpx.TransportError:
            time.sleep(0.2)
    shut_down(demo)
    raise AssertionError(f"the demo's web site never answered: {process.communicate()}")


def shut_down(demo: ServingDemo) -> None:
    if demo.process.poll() is None:
        demo.process.send_signal(signal.SIGINT)
        try:
            demo.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            demo.process.kill()
            demo.process.communicate()


@pytest.fixture
def serving_demo(tmp_path: Path) -> Iterator[ServingDemo]:
    demo = start_demo(tmp_path)
    try:
        yield demo
    finally:
        shut_down(demo)


def stop(demo: ServingDemo) -> tuple[str, str]:
    """Ctrl-C, as a newcomer stops it, and what it printed."""
    demo.process.send_signal(signal.SIGINT)
    stdout, stderr = demo.process.communicate(timeout=60)
    assert demo.process.returncode == 0, stderr
    return stdout, stderr


def test_every_story_link_of_the_served_demo_opens_a_page(serving_demo: ServingDemo) -> None:
    feed = feedparser.parse(httpx.get(serving_demo.base + "/feed.atom").content)
    assert len(feed.entries) >= 20
    story_links = {entry.link for entry in feed.entries}
    pictures: set[str] = set()
    continue_reading: set[str] = set()
    for entry in feed.entries:
        texts = [content.value for content in entry.get("content", [])]
        texts.append(entry.get("summary", ""))
        for text in texts:
            pictures.update(re.findall(r'<img[^>]* src="([^"]+)"', text))
            continue_reading.update(CONTINUE_READING.findall(text))
    # The harvest feed's WordPress excerpts end in "Continue reading" links; the normalize
    # stage turns that tail into one ellipsis and keeps the link as the story's own.
    assert not continue_reading, continue_reading
    assert pictures
    with httpx.Client() as client:
        for link in sorted(story_links):
            assert link.startswith("http://127.0.0.1:"), link
            page = client.get(link)
            assert page.status_code == 200, link
            assert page.headers["content-type"].startswith("text/html"), link
            assert "<article>" in page.text and "<h1>" in page.text, link
        for picture in sorted(pictures):
            assert client.get(picture).status_code == 200, picture


def test_served_demo_prints_only_what_a_newcomer_needs(serving_demo: ServingDemo) -> None:
    # A request that uvicorn's access log would have printed a line for.
    assert httpx.get(serving_demo.base + "/").status_code == 200
    stdout, stderr = stop(serving_demo)
    lines = stdout.splitlines()
    check_source_lines(lines)
    feed_path = (serving_demo.output / "published" / "feed.atom").resolve()
    assert lines[len(MEMBERS) :] == [
        f"The combined feed: {feed_path}",
        f"The news page: {serving_demo.base}/ (its feed: {serving_demo.base}/feed.atom; "
        "Ctrl-C to stop)",
        "stopped",
    ]
    # No alembic or uvicorn INFO lines, no WebSub advice meant for production, no access log.
    assert stderr == ""


def test_served_demo_does_not_poll_again_at_once(serving_demo: ServingDemo) -> None:
    """The demo has just fetched every source: the service it starts must find none due."""
    store = Store.open(f"sqlite:///{serving_demo.output / 'aggregator.db'}", upgrade=False)
    try:
        records = store.schedule_records()
    finally:
        store.close()
    assert len(records) == len(MEMBERS)
    now = datetime.now(UTC)
    for url, record in records.items():
        # Not polled a second time (that would count one unchanged poll)…
        assert record.unchanged_polls == 0, url
        # …and not due: its next poll is an interval away.
        assert record.next_poll_at is not None and record.next_poll_at > now, url


def test_demo_access_log_when_asked(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, "--access-log")
    try:
        assert httpx.get(demo.base + "/members.opml").status_code == 200
        stdout, stderr = stop(demo)
    finally:
        shut_down(demo)
    assert '"GET /members.opml HTTP/1.1" 200' in stdout + stderr
