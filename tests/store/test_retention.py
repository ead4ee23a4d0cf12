"""network.retention: validated in feeds.yaml, applied by Store.prune in batches (and by
`aggregator prune` and the scheduler), and at poll time so that pruned items stay pruned;
paging by cursor goes on over what remains."""

from __future__ import annotations

import asyncio
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select

from aggregator.cli import main
from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.errors import ConfigError
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_source
from aggregator.models import CacheValidators
from aggregator.models import Config
from aggregator.models import FetchResult
from aggregator.models import HostPause
from aggregator.models import Item
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.models import SourceConfig
from aggregator.models import StoryCursor
from aggregator.service.scheduler import prune_expired
from aggregator.store import Store
from aggregator.store import schema
from tests.store.queries import count_items
from tests.support.server import FixtureServer

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=30)
FEED = SourceConfig(member_id="harvest", kind="feed", url="https://harvest.example/feed/")
OTHER = SourceConfig(member_id="garment", kind="feed", url="https://garment.example/feed/")
TEXT = (
    "<p>Farmworkers walked out of the fields on Tuesday after temperatures passed forty "
    "degrees for the third day in a row, calling on growers to adopt the heat standard.</p>"
)


def config(retention: timedelta | None = RETENTION) -> Config:
    return Config(
        network=NetworkConfig(
            title="Sample network",
            url="https://network.example/",
            feed_url="https://network.example/news/",
            retention=retention,
        ),
        members=(
            MemberConfig(
                id="harvest", name="Harvest", url="https://harvest.example/", sources=(FEED,)
            ),
            MemberConfig(
                id="garment", name="Garment", url="https://garment.example/", sources=(OTHER,)
            ),
        ),
    )


def item(number: int, age: timedelta, source: SourceConfig = FEED, **overrides: object) -> Item:
    values: dict[str, object] = {
        "member_id": source.member_id,
        "source_url": source.url,
        "key": f"guid:{number}",
        "url": f"{source.url}{number}",
        "title": f"Story number {number} from the fields",
        "content_html": f"<p>Report {number}.</p>",
        "summary": "",
        "published": NOW - age,
        "updated": NOW - age,
        "date_from_source": True,
        "tags": ("heat",),
        "content_hash": f"v{number}",
    }
    values.update(overrides)
    return Item(**values)  # type: ignore[arg-type]


def fetched(source: SourceConfig = FEED, body: bytes = b"<rss/>") -> FetchResult:
    return FetchResult(
        source=source,
        fetched_at=NOW,
        final_url=source.url,
        status=200,
        content=body,
        validators=CacheValidators(),
    )


def story_ids(store: Store, limit: int, before: StoryCursor | None = None) -> list[str]:
    """Every story id, paging by cursor `limit` at a time from `before`."""
    seen: list[str] = []
    cursor = before
    while True:
        page = store.story_page(limit, before=cursor)
        seen.extend(story.id for story in page.stories)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@pytest.fixture
def synced(store: Store) -> Store:
    store.sync_config(config())
    return store


# --- feeds.yaml -----------------------------------------------------------------------

YAML = """network:
  title: Test network
  url: https://wsr.example.org/
  feed_url: https://wsr.example.org/news
  {line}
members:
  - id: dairy
    name: Dairy Workers
    url: https://dairy.example.org/
    sources:
      - feed: https://dairy.example.org/feed.xml
"""


def test_retention_is_read_from_feeds_yaml_and_keeps_everything_when_absent() -> None:
    assert parse_config(YAML.format(line="retention: 400d")).network.retention == timedelta(
        days=400
    )
    assert parse_config(YAML.format(line="interval: 1h")).network.retention is None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("retention: 12h", "should be at least a day"),
        ("retention: 365", "has no unit"),
        ("retention: forever", "is not a length of time"),
        ("retension: 365d", "did you mean 'retention'"),
    ],
)
def test_a_bad_retention_is_refused_with_its_line(line: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(YAML.format(line=line))
    assert problem in str(error.value)
    assert "line 5" in str(error.value)


# --- pruning --------------------------------------------------------------------------


def test_prune_deletes_old_items_and_emptied_stories_in_batches(synced: Store) -> None:
    old = [item(number, timedelta(days=40 + number)) for number in range(7)]
    recent = [item(100 + number, timedelta(days=number)) for number in range(3)]
    synced.record_items(fetched(), old + recent)
    # A cross-post whose first half is past the retention and whose second is not.
    first_half = item(
        50, timedelta(days=31), title="Heat standard adopted at last", content_html=TEXT
    )
    second_half = item(
        51, timedelta(days=28), OTHER, title="Heat standard adopted at last", content_html=TEXT
    )
    synced.record_items(fetched(), [first_half])
    synced.record_items(fetched(OTHER), [second_half])
    assert synced.count_stories() == 11
    synced.save_schedule(
        FEED.url,
        next_poll_at=NOW,
        interval_seconds=None,
        unchanged_polls=0,
        declared_interval_seconds=None,
        host_pause=HostPause(host="harvest.example", until=NOW - timedelta(hours=1), reason="429"),
    )
    version = synced.data_version()

    report = synced.prune(NOW - RETENTION, NOW, batch_size=3)

    assert (report.items, report.stories, report.host_pauses) == (8, 7, 1)
    assert count_items(synced) == 4
    assert synced.count_stories() == 4
    assert synced.data_version() != version  # the web server's cached renderings expire
    with synced.engine.connect() as connection:
        tags = connection.scalar(select(func.count()).select_from(schema.item_tags))
    assert tags == 4
    survivor = next(
        story for story in synced.latest_stories(10) if story.title.startswith("Heat standard")
    )
    assert [credit.member_id for credit in survivor.credits] == ["garment"]
    assert survivor.published == NOW - timedelta(days=28)
    assert synced.host_pauses(NOW - timedelta(days=1)) == {}
    # Nothing left to prune: a second pass is a no-op.
    again = synced.prune(NOW - RETENTION, NOW)
    assert (again.items, again.stories) == (0, 0)


def test_paging_returns_every_remaining_story_once_across_a_prune(synced: Store) -> None:
    synced.record_items(
        fetched(), [item(number, timedelta(days=number, hours=1)) for number in range(45)]
    )
    first_page = synced.story_page(7)
    assert first_page.next_cursor is not None

    synced.prune(NOW - RETENTION, NOW, batch_size=4)

    remaining = story_ids(synced, 7)
    assert len(remaining) == len(set(remaining)) == 30
    assert remaining == [story.id for story in synced.latest_stories(100)]
    # A reader half way through the pages when the prune ran carries on without gaps or
    # repeats among what is left.
    rest = story_ids(synced, 7, before=first_page.next_cursor)
    assert [story.id for story in first_page.stories] + rest == remaining


def test_prune_expired_follows_the_configured_retention(synced: Store) -> None:
    synced.record_items(fetched(), [item(1, timedelta(days=400)), item(2, timedelta(days=2))])
    assert prune_expired(config(retention=None), synced, NOW) is None
    assert count_items(synced) == 2
    report = prune_expired(config(), synced, NOW)
    assert report is not None
    assert report.items == 1
    assert count_items(synced) == 1


def test_items_older_than_the_retention_are_not_stored_again_by_a_poll(store: Store) -> None:
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Harvest</title>
<link>https://harvest.example/</link>
<item><title>Fresh news</title><link>https://harvest.example/fresh</link><guid>fresh</guid>
<pubDate>Thu, 19 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>Ancient news</title><link>https://harvest.example/old</link><guid>old</guid>
<pubDate>Mon, 01 Jan 2024 10:00:00 GMT</pubDate></item>
</channel></rss>"""
    with FixtureServer() as server:
        server.routes["/feed.xml"] = Route(
            body=body, headers={"Content-Type": "application/rss+xml"}
        )
        source = SourceConfig(member_id="harvest", kind="feed", url=server.url("/feed.xml"))
        network = config()
        store.sync_config(
            Config(
                network=network.network,
                members=(
                    MemberConfig(
                        id="harvest",
                        name="Harvest",
                        url="https://harvest.example/",
                        sources=(source,),
                    ),
                ),
            )
        )

        async def poll() -> None:
            async with Fetcher(clock=lambda: NOW) as fetcher:
                report = await poll_source(
                    source, fetcher=fetcher, store=store, language=None, retention=RETENTION
                )
                assert report.new == 1

        asyncio.run(poll())
    assert [story.title for story in store.latest_stories(10)] == ["Fresh news"]


def test_the_prune_command_reports_what_it_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite:///{tmp_path / 'aggregator.db'}"
    store = Store.open(database)
    try:
        store.sync_config(parse_config(YAML.format(line="retention: 30d")))
        source = SourceConfig(
            member_id="dairy", kind="feed", url="https://dairy.example.org/feed.xml"
        )
        now = datetime.now(UTC)
        store.record_items(
            FetchResult(
                source=source, fetched_at=now, final_url=source.url, status=200, content=b"x"
            ),
            [
                item(1, timedelta(days=90), source, published=now - timedelta(days=90)),
                item(2, timedelta(days=1), source, published=now - timedelta(days=1)),
            ],
        )
    finally:
        store.close()
    kept = tmp_path / "keep.yaml"
    kept.write_text(YAML.format(line="interval: 1h"), encoding="utf-8")
    assert main(["--config", str(kept), "--database", database, "prune"]) == 0
    assert "everything is kept" in capsys.readouterr().out

    pruning = tmp_path / "feeds.yaml"
    pruning.write_text(YAML.format(line="retention: 30d"), encoding="utf-8")
    assert main(["--config", str(pruning), "--database", database, "prune"]) == 0
    assert "pruned 1 item(s) and 1 story(ies) published more than 30 days ago" in (
        capsys.readouterr().out
    )
    reopened = Store.open(database)
    try:
        assert count_items(reopened) == 1
    finally:
        reopened.close()
