"""`aggregator keep-apart` and `aggregator merge` through a real subprocess, on a database
filled by a real fetch of the sample sites (served on 127.0.0.1): each writes its entry to
feeds.yaml beside `hidden:`, applies it to the stored stories at once, and holds when the
sites are fetched again; `aggregator check` refuses groups the store could not apply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from aggregator.demo import demo_config_text
from aggregator.demo import sample_sites
from aggregator.demo.server import FixtureServer
from aggregator.store import Store
from tests.cli.test_staff_cli import aggregator


@pytest.fixture
def fetched(tmp_path: Path) -> Iterator[tuple[Path, str, FixtureServer]]:
    """A working directory with feeds.yaml and a fetched SQLite database; the sample sites
    stay up so a test can fetch again."""
    database = f"sqlite:///{tmp_path / 'aggregator.db'}"
    with sample_sites() as sites:
        (tmp_path / "feeds.yaml").write_text(demo_config_text(sites.base_url), encoding="utf-8")
        result = aggregator("--config", "feeds.yaml", "--database", database, "fetch", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        yield tmp_path, database, sites


def stories(database: str) -> list[tuple[str, list[str]]]:
    """Each story's id and its items' addresses."""
    store = Store.open(database)
    try:
        found = []
        for story in store.latest_stories(200):
            record = store.story_record(story.id)
            assert record is not None
            found.append((story.id, [item.url or "" for item in record.items]))
        return found
    finally:
        store.close()


def run(workdir: Path, database: str, *args: str) -> tuple[int, str, str]:
    result = aggregator("--config", "feeds.yaml", "--database", database, *args, cwd=workdir)
    return result.returncode, result.stdout, result.stderr


def listed(workdir: Path, kind: str) -> list[dict[str, object]]:
    data = YAML(typ="safe").load((workdir / "feeds.yaml").read_text(encoding="utf-8"))
    return list(data.get(kind) or [])


def test_keep_apart_splits_the_story_and_holds_after_a_new_fetch(
    fetched: tuple[Path, str, FixtureServer],
) -> None:
    workdir, database, _ = fetched
    shared = [urls for _, urls in stories(database) if len(urls) > 1]
    assert shared, "the sample sites have a cross-posted story"
    first, second = shared[0][:2]
    code, out, err = run(workdir, database, "keep-apart", first, second, "--reason", "two fires")
    assert code == 0, err
    assert f"kept apart: {first}, {second} (two fires)" in out
    assert listed(workdir, "keep_apart") == [{"items": [first, second], "reason": "two fires"}]
    assert "members:" in (workdir / "feeds.yaml").read_text(encoding="utf-8")  # layout kept
    story_of = {url: story for story, urls in stories(database) for url in urls}
    assert story_of[first] != story_of[second]
    # A new fetch (the automatic rule sees the items again) and a second sync keep them apart.
    code, _, err = run(workdir, database, "fetch")
    assert code == 0, err
    story_of = {url: story for story, urls in stories(database) for url in urls}
    assert story_of[first] != story_of[second]
    assert run(workdir, database, "check")[0] == 0
    # Listing the same pair under merge: too would contradict it: refused, nothing written.
    before = (workdir / "feeds.yaml").read_text(encoding="utf-8")
    code, _, err = run(workdir, database, "merge", first, second)
    assert code == 2
    assert "listed both under 'keep_apart:' and under 'merge:'" in err
    assert (workdir / "feeds.yaml").read_text(encoding="utf-8") == before


def test_merge_joins_two_stories_and_story_why_says_staff_merged_them(
    fetched: tuple[Path, str, FixtureServer],
) -> None:
    workdir, database, _ = fetched
    singles = [urls[0] for _, urls in stories(database) if len(urls) == 1]
    first, second = singles[0], singles[1]
    code, out, err = run(workdir, database, "merge", first, second, "--reason", "same event")
    assert code == 0, err
    assert "written to feeds.yaml under 'merge:'" in out
    assert listed(workdir, "merge") == [{"items": [first, second], "reason": "same event"}]
    [merged] = [urls for _, urls in stories(database) if first in urls]
    assert second in merged
    code, out, err = run(workdir, database, "story", second, "--why")
    assert code == 0, err
    assert "merged by rule: staff merge" in out
    assert "staff listed it under merge: with" in out
    # Running it again adds nothing to feeds.yaml.
    code, out, _ = run(workdir, database, "merge", second, first)
    assert code == 0 and "already listed" in out
    assert len(listed(workdir, "merge")) == 1


def test_check_refuses_a_group_of_one_address(tmp_path: Path) -> None:
    text = demo_config_text("http://127.0.0.1:9/")
    text += "keep_apart:\n  - items: [https://a.example/one, https://a.example/one?utm_source=x]\n"
    text += "merge:\n  - items: [ftp://a.example/x, https://b.example/y]\n"
    (tmp_path / "feeds.yaml").write_text(text, encoding="utf-8")
    result = aggregator("--config", "feeds.yaml", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert "names 1 distinct item address(es); it needs at least two" in result.stderr
    assert "ftp://a.example/x" in result.stderr
