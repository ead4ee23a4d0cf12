"""Hiding stories: `aggregator hide/unhide`, feeds.yaml `hidden:`, and the published feeds."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.config import hidden_target
from aggregator.config import parse_config
from aggregator.errors import ConfigError
from aggregator.models import CacheValidators
from aggregator.models import Config
from aggregator.models import FetchResult
from aggregator.models import HiddenStory
from aggregator.models import Item
from aggregator.store import Store

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)
STORY_ID = "urn:uuid:0f1d2c3b-4a59-5687-9a0b-1c2d3e4f5a6b"
FEED = "https://greenway.example.org/feed/"

CONFIG = """\
network:
  title: WSR Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news/
members:
  - id: gfc
    name: Greenway Farmworker Coalition
    url: https://greenway.example.org/
    sources:
      - feed: https://greenway.example.org/feed/
"""


def story_item(number: int) -> Item:
    published = datetime(2025, 3, number, tzinfo=UTC)
    return Item(
        member_id="gfc",
        source_url=FEED,
        key=f"guid:{number}",
        url=f"https://greenway.example.org/2025/03/story-{number}/",
        title=f"Story number {number} about a different campaign",
        content_html="",
        summary=f"<p>Text {number}</p>",
        published=published,
        updated=published,
        date_from_source=True,
        content_hash=str(number),
    )


def stored(store: Store, config: Config) -> None:
    store.sync_config(config)
    source = config.members[0].sources[0]
    result = FetchResult(
        source=source,
        fetched_at=NOW,
        final_url=FEED,
        status=200,
        content=b"<rss/>",
        validators=CacheValidators(),
    )
    store.record_items(result, [story_item(1), story_item(2), story_item(3)])


def titles(store: Store) -> list[str]:
    return [story.title.split(" about")[0] for story in store.latest_stories(10)]


def test_hidden_targets_are_read_the_way_the_store_compares_them() -> None:
    uid = "0F1D2C3B-4A59-5687-9A0B-1C2D3E4F5A6B"
    assert hidden_target(f"urn:uuid:{uid}") == f"urn:uuid:{uid.lower()}"
    assert hidden_target(uid) == f"urn:uuid:{uid.lower()}"
    assert hidden_target("https://Greenway.example.org/a/?utm_source=x") == (
        "https://greenway.example.org/a/"
    )
    assert hidden_target("story 12") is None


def test_hide_and_unhide_by_story_id(store: Store) -> None:
    stored(store, parse_config(CONFIG))
    story = store.latest_stories(10)[1]
    assert titles(store) == ["Story number 3", "Story number 2", "Story number 1"]
    store.hide(story.id, "posted by mistake", NOW)
    assert titles(store) == ["Story number 3", "Story number 1"]
    assert store.count_stories() == 2
    [record] = store.hidden_stories()
    assert (record.target, record.reason, record.origin) == (story.id, "posted by mistake", "cli")
    removed = store.unhide(story.id)
    assert removed is not None and removed.reason == "posted by mistake"
    assert titles(store) == ["Story number 3", "Story number 2", "Story number 1"]
    assert store.unhide(story.id) is None


def test_hide_by_item_address_and_language_filter_still_apply(store: Store) -> None:
    stored(store, parse_config(CONFIG))
    store.hide("https://greenway.example.org/2025/03/story-3/", "legal request", NOW)
    assert titles(store) == ["Story number 2", "Story number 1"]
    assert store.story_page(1).stories[0].title.startswith("Story number 2")


def test_feeds_yaml_hidden_list_is_applied_and_withdrawn(store: Store) -> None:
    hidden = CONFIG + (
        "hidden:\n"
        "  - item: https://greenway.example.org/2025/03/story-1/\n"
        "    reason: duplicate of a partner's post\n"
    )
    config = parse_config(hidden)
    assert config.hidden == (
        HiddenStory(
            target="https://greenway.example.org/2025/03/story-1/",
            reason="duplicate of a partner's post",
            line=12,
        ),
    )
    stored(store, config)
    assert titles(store) == ["Story number 3", "Story number 2"]
    store.hide("https://greenway.example.org/2025/03/story-2/", "by command", NOW)
    store.sync_config(parse_config(CONFIG))  # the entry was deleted from feeds.yaml
    # The feeds.yaml entry is gone; the one hidden by command stays hidden.
    assert titles(store) == ["Story number 3", "Story number 1"]


@pytest.mark.parametrize(
    ("entry", "field", "words"),
    [
        (f"  - item: {STORY_ID}\n", "hidden.reason", "no 'reason:'"),
        ("  - item: story twelve\n    reason: spam\n", "hidden.item", "neither a story id"),
        (f"  - {STORY_ID}\n", "hidden", "'item:'"),
        (f"  - item: {STORY_ID}\n    reason: r\n    why: w\n", "hidden.why", "unknown key"),
    ],
)
def test_hidden_list_problems(entry: str, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(CONFIG + "hidden:\n" + entry)
    [problem] = raised.value.problems
    assert problem.field == field
    assert words in problem.message


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_hide_and_unhide_commands(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'a.db'}"
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text(CONFIG, encoding="utf-8")
    store = Store.open(database)
    try:
        stored(store, parse_config(CONFIG))
        story_id = store.latest_stories(1)[0].id
    finally:
        store.close()
    code, out, _ = run_cli("--database", database, "hide", story_id, "--reason", "wrong photo")
    assert code == 0
    assert f"hidden: {story_id} (wrong photo)" in out
    code, out, _ = run_cli(
        "--config", str(config_path), "--database", database, "unhide", story_id.upper()[9:]
    )
    assert code == 0
    assert "it was hidden: wrong photo" in out
    code, _, err = run_cli(
        "--database",
        database,
        "hide",
        "urn:uuid:" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
        "--reason",
        "x",
    )
    assert code == 2
    assert "no stored story" in err
    assert run_cli("--database", database, "hide", "nonsense", "--reason", "x")[0] == 2
