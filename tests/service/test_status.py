"""The status rows, read from a database filled by real polls of a fixture server, and
their text, JSON and HTML renderings; `aggregator status` end to end."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console

from aggregator.cli import main
from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.models import Config
from aggregator.service.status import SourceStatus
from aggregator.service.status import relative_time
from aggregator.service.status import render_status_html
from aggregator.service.status import render_status_json
from aggregator.service.status import render_status_text
from aggregator.service.status import status_rows
from aggregator.service.status import status_table
from aggregator.store import Store
from tests.conftest import FIXTURES
from tests.support.server import FixtureServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RSS = (FIXTURES / "rss_ttl_syndication.xml").read_bytes()


def network_config(base: str) -> Config:
    return parse_config(
        f"""network:
  title: WSR <Network> & friends
  url: https://wsr.example.org/
  feed_url: https://wsr.example.org/news
members:
  - id: dairy
    name: Dairy Workers
    url: https://dairy.example.org/
    sources:
      - feed: {base}/ok.xml
      - feed: {base}/broken.xml
  - id: movers
    name: "<script>alert('x')</script> Movers"
    url: https://movers.example.org/
    sources:
      - feed: {base}/old.xml
      - feed: {base}/gone.xml
      - feed: {base}/later.xml
"""
    )


def poll_some(server: FixtureServer, store: Store, config: Config) -> None:
    server.routes["/ok.xml"] = Route(body=RSS)
    server.routes["/broken.xml"] = Route(status=500, body=b"<h1>oops</h1>")
    server.routes["/old.xml"] = Route(status=301, headers={"Location": server.url("/new.xml")})
    server.routes["/new.xml"] = Route(body=RSS.replace(b"dairy-2026-11", b"movers-2026-11"))
    server.routes["/gone.xml"] = Route(status=410)
    sources = [s for m in config.members for s in m.sources if not s.url.endswith("later.xml")]
    store.sync_config(config)

    async def run() -> None:
        async with Fetcher(clock=lambda: NOW) as fetcher:
            await poll_all(config, store, fetcher, sources=sources)

    asyncio.run(run())


@pytest.fixture
def rows(server: FixtureServer, store: Store) -> list[SourceStatus]:
    config = network_config(server.base_url)
    poll_some(server, store, config)
    return status_rows(store, config, NOW + timedelta(hours=2))


def by_url(rows: list[SourceStatus], server: FixtureServer, path: str) -> SourceStatus:
    return next(row for row in rows if row.source_url == server.url(path))


def test_rows_follow_feeds_yaml_and_say_what_is_wrong(
    rows: list[SourceStatus], server: FixtureServer
) -> None:
    assert [row.source_url.rsplit("/", 1)[1] for row in rows] == [
        "ok.xml",
        "broken.xml",
        "old.xml",
        "gone.xml",
        "later.xml",
    ]
    ok = by_url(rows, server, "/ok.xml")
    assert (ok.state, ok.items, ok.consecutive_failures) == ("ok", 1, 0)
    assert ok.last_success == NOW
    assert ok.newest_item == datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert ok.member_name == "Dairy Workers"

    broken = by_url(rows, server, "/broken.xml")
    assert broken.state == "failing"
    assert broken.last_error == "HTTP 500 (server error)"
    assert broken.failing_since == NOW
    assert broken.last_success is None

    moved = by_url(rows, server, "/old.xml")
    assert moved.state == "moved"
    assert moved.moved_to == server.url("/new.xml")
    assert moved.feeds_yaml_change == (
        f"in feeds.yaml, replace 'feed: {server.url('/old.xml')}' "
        f"with 'feed: {server.url('/new.xml')}'"
    )

    gone = by_url(rows, server, "/gone.xml")
    assert gone.gone and gone.state == "gone"
    never = by_url(rows, server, "/later.xml")
    assert never.state == "never polled" and never.last_poll is None


def test_text_table_is_aligned_and_plain(rows: list[SourceStatus]) -> None:
    text = render_status_text(rows, NOW + timedelta(hours=2))
    lines = text.splitlines()
    assert len(lines) == 6
    assert lines[0].split()[:3] == ["member", "source", "state"]
    column = lines[0].index("state")
    assert [line[column:].split()[0] for line in lines[1:]] == [
        "ok",
        "failing",
        "moved",
        "gone",
        "never",
    ]
    assert "HTTP 500 (server error)" in lines[2]
    assert "2 h ago" in lines[1]
    assert "\x1b" not in text


def test_json_has_every_field_in_utc(rows: list[SourceStatus], server: FixtureServer) -> None:
    document = json.loads(render_status_json(rows, NOW))
    assert document["generated"] == "2026-12-01T12:00:00Z"
    first = document["sources"][0]
    assert first["member"] == {"id": "dairy", "name": "Dairy Workers"}
    assert first["last_success"] == "2026-12-01T12:00:00Z"
    assert first["items"] == 1
    moved = document["sources"][2]
    assert moved["moved_to"] == server.url("/new.xml")
    assert document["sources"][3]["gone"] is True


def test_html_escapes_everything(rows: list[SourceStatus], server: FixtureServer) -> None:
    config = network_config(server.base_url)
    page = render_status_html(rows, config.network, NOW)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "WSR &lt;Network&gt; &amp; friends" in page
    assert page.count("<tr>") == 6
    assert 'class="state-failing"' in page


def test_relative_times() -> None:
    assert relative_time(None, NOW) == "never"
    assert relative_time(NOW, NOW) == "now"
    assert relative_time(NOW - timedelta(minutes=5), NOW) == "5 min ago"
    assert relative_time(NOW + timedelta(hours=3), NOW) == "in 3 h"
    assert relative_time(NOW - timedelta(days=61), NOW) == "61 days ago"


def test_status_command_prints_the_table_and_json(
    server: FixtureServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = network_config(server.base_url)
    database = f"sqlite:///{tmp_path / 'status.db'}"
    store = Store.open(database)
    try:
        poll_some(server, store, config)
    finally:
        store.close()
    path = tmp_path / "feeds.yaml"
    path.write_text(
        f"""network:
  title: WSR
  url: https://wsr.example.org/
  feed_url: https://wsr.example.org/news
members:
  - id: dairy
    name: Dairy Workers
    url: https://dairy.example.org/
    sources:
      - feed: {server.url("/ok.xml")}
      - feed: {server.url("/broken.xml")}
""",
        encoding="utf-8",
    )
    assert main(["--config", str(path), "--database", database, "status"]) == 0
    out = capsys.readouterr().out
    assert "broken.xml" in out and "HTTP 500 (server error)" in out
    assert main(["--config", str(path), "--database", database, "status", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [source["state"] for source in document["sources"]] == ["ok", "failing"]


def test_status_table_for_a_terminal_uses_rich(rows: list[SourceStatus]) -> None:
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(status_table(rows, NOW))
    drawn = buffer.getvalue()
    assert "┃" in drawn or "│" in drawn
    assert "failing" in drawn
