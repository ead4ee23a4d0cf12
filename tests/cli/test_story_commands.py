"""`aggregator story ID [--why]` through a real subprocess, on a database filled by a real
fetch of the sample sites (served on 127.0.0.1): a cross-posted story shows its members,
the item that started it and the rule and evidence that merged the other."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.demo import demo_config_text
from aggregator.demo import sample_sites
from aggregator.models import PublishedStory
from aggregator.store import Store
from tests.cli.test_staff_cli import aggregator


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A working directory with feeds.yaml and a fetched database (SQLite file)."""
    workdir = tmp_path_factory.mktemp("story")
    database = f"sqlite:///{workdir / 'aggregator.db'}"
    with sample_sites() as sites:
        (workdir / "feeds.yaml").write_text(demo_config_text(sites.base_url), encoding="utf-8")
        result = aggregator(
            "--config", "feeds.yaml", "--database", database, "fetch", cwd=workdir
        )
        assert result.returncode == 0, result.stderr
    yield workdir, database


def cross_posted(database: str) -> PublishedStory:
    store = Store.open(database)
    try:
        shared = [story for story in store.latest_stories(100) if len(story.credits) > 1]
    finally:
        store.close()
    assert shared, "the sample sites have a cross-posted story"
    return shared[0]


def test_story_shows_members_and_why_they_were_merged(fetched: tuple[Path, str]) -> None:
    workdir, database = fetched
    story = cross_posted(database)
    result = aggregator("--database", database, "story", story.id, "--why", cwd=workdir)
    assert result.returncode == 0, result.stderr
    output = result.stdout
    members = [credit.member_id for credit in story.credits]
    assert f"story {story.id}" in output
    assert f"members: {', '.join(members)}" in output
    assert output.count("started the story") == 1
    assert "merged by rule: " in output
    assert "text similarity " in output and "days apart" in output
    assert "title key: " in output and "titles compared after removing: " in output


def test_story_by_an_item_address_with_tracking_parameters(fetched: tuple[Path, str]) -> None:
    workdir, database = fetched
    story = cross_posted(database)
    assert story.url is not None
    tracked = story.url + ("&" if "?" in story.url else "?") + "utm_source=newsletter"
    result = aggregator("--database", database, "story", tracked, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert f"story {story.id}" in result.stdout
    assert "title key: " not in result.stdout  # the full evidence only with --why


def test_an_unknown_story_is_said_in_words(fetched: tuple[Path, str]) -> None:
    workdir, database = fetched
    missing = "urn:uuid:00000000-0000-0000-0000-000000000000"
    result = aggregator("--database", database, "story", missing, cwd=workdir)
    assert result.returncode == 2
    assert f"no stored story has the id or address {missing}" in result.stderr
    assert "Traceback" not in result.stderr
