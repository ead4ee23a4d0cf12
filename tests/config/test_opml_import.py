"""`aggregator import-opml`: feeds added to feeds.yaml with its comments kept, and checked."""

from __future__ import annotations

import contextlib
import difflib
import io
import shutil
from pathlib import Path

import pytest

from aggregator.cli import main
from aggregator.config import load_config
from aggregator.config import parse_config
from aggregator.config.opml_import import import_opml
from aggregator.config.opml_import import merge_opml
from aggregator.config.opml_import import read_opml
from aggregator.errors import ConfigError
from aggregator.publish.opml import members_opml
from tests import paths

FIXTURES = paths.FIXTURES / "opml"


@pytest.fixture
def feeds_yaml(tmp_path: Path) -> Path:
    target = tmp_path / "feeds.yaml"
    shutil.copy(FIXTURES / "feeds_with_comments.yaml", target)
    return target


def test_reading_a_feed_reader_export_with_folders() -> None:
    members = read_opml((FIXTURES / "feed_reader_export_with_folders.opml").read_bytes())
    assert [(m.name, m.tags, m.sources) for m in members] == [
        ("Coalition of Immokalee Workers", ["farmworkers"], [("feed", "https://ciw-online.org/feed/")]),
        ("CIW en español", ["farmworkers"], [("feed", "https://ciw-online.org/es/feed/")]),
        (
            "Familias Unidas por la Justicia",
            ["farmworkers"],
            [("feed", "https://www.familiasunidasjusticia.org/feed/")],
        ),
        ("Migrant Justice / Justicia Migrante", ["dairy-food"], [("feed", "https://migrantjustice.net/rss.xml")]),
        ("CIW (duplicate under another folder)", [], [("feed", "http://ciw-online.org/feed")]),
    ]  # fmt: skip


def test_import_adds_new_feeds_keeps_comments_and_order(feeds_yaml: Path) -> None:
    before = feeds_yaml.read_text(encoding="utf-8")
    report = import_opml(feeds_yaml, FIXTURES / "feed_reader_export_with_folders.opml")
    after = feeds_yaml.read_text(encoding="utf-8")

    # Everything staff wrote is still there, in the same order, comments included: the
    # import only inserted lines.
    changes = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    assert [line for line in changes if line.startswith("- ")] == []
    assert "+       - feed: https://ciw-online.org/es/feed/" in changes

    assert report.added_members == (
        "familias-unidas-por-la-justicia",
        "migrant-justice-justicia-migrante",
    )
    assert report.added_sources == (
        ("ciw", "https://ciw-online.org/es/feed/"),  # same site as the existing member
        ("familias-unidas-por-la-justicia", "https://www.familiasunidasjusticia.org/feed/"),
        ("migrant-justice-justicia-migrante", "https://migrantjustice.net/rss.xml"),
    )  # fmt: skip
    assert [address for address, _ in report.skipped] == [
        "https://ciw-online.org/feed/",
        "http://ciw-online.org/feed",
    ]
    assert "already in feeds.yaml (member 'ciw')" in report.skipped[0][1]

    config = load_config(feeds_yaml)
    assert [member.id for member in config.members] == [
        "ciw",
        "ctul",
        "familias-unidas-por-la-justicia",
        "migrant-justice-justicia-migrante",
    ]
    assert [source.url for source in config.members[0].sources] == [
        "https://ciw-online.org/feed/",
        "https://ciw-online.org/es/feed/",
    ]
    assert config.members[3].tags == ("dairy-food",)
    assert "  - id: familias-unidas-por-la-justicia\n    name: Familias Unidas" in after


def test_importing_twice_changes_nothing(feeds_yaml: Path) -> None:
    opml = FIXTURES / "feed_reader_export_with_folders.opml"
    import_opml(feeds_yaml, opml)
    once = feeds_yaml.read_bytes()
    report = import_opml(feeds_yaml, opml)
    assert report.added_sources == ()
    assert feeds_yaml.read_bytes() == once


def test_members_opml_round_trips() -> None:
    config = load_config(FIXTURES / "feeds_with_comments.yaml")
    exported = members_opml(config.network, config.members)
    base = (
        "network:\n  title: T\n  url: https://t.example.org/\n"
        "  feed_url: https://t.example.org/f/\nmembers: []\n"
    )
    text, report = merge_opml(base, read_opml(exported), "feeds.yaml")
    imported = parse_config(text)
    assert [(m.name, m.url, m.tags) for m in imported.members] == [
        (m.name, m.url, m.tags) for m in config.members
    ]
    assert [[(s.kind, s.url) for s in m.sources] for m in imported.members] == [
        [(s.kind, s.url) for s in m.sources] for m in config.members
    ]
    assert "members:\n  - id: coalition-of-immokalee-workers" in text
    assert len(report.added_members) == 2


def test_a_result_that_would_not_check_is_never_written(feeds_yaml: Path, tmp_path: Path) -> None:
    opml = tmp_path / "bad.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline text="Odd" type="rss" xmlUrl="feed://odd.example.org/rss"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    before = feeds_yaml.read_bytes()
    with pytest.raises(ConfigError) as raised:
        import_opml(feeds_yaml, opml)
    assert "feed://odd.example.org/rss" in str(raised.value)
    assert feeds_yaml.read_bytes() == before
    assert sorted(path.name for path in feeds_yaml.parent.iterdir()) == ["bad.opml", "feeds.yaml"]


def test_entities_are_never_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    hostile = (
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<opml version="2.0"><body><outline type="rss" text="a&x;" '
        'xmlUrl="https://a.example.org/feed"/></body></opml>'
    ).encode()
    try:
        members = read_opml(hostile)
    except ConfigError:
        return  # refusing the document is as good as not resolving it
    assert all("TOP-SECRET" not in member.name for member in members)


def test_not_opml_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="not OPML"):
        read_opml(b"<rss version='2.0'><channel/></rss>")
    with pytest.raises(ConfigError, match="not valid OPML/XML"):
        read_opml(b"<opml><body>")


def test_the_command_prints_what_it_did(feeds_yaml: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "--config",
                str(feeds_yaml),
                "import-opml",
                str(FIXTURES / "feed_reader_export_with_folders.opml"),
            ]
        )
    assert code == 0
    text = out.getvalue()
    assert "new member: migrant-justice-justicia-migrante" in text
    assert "added to ciw: https://ciw-online.org/es/feed/" in text
    assert "skipped: http://ciw-online.org/feed: already in feeds.yaml (member 'ciw')" in text
    assert "3 source(s) added, 2 new member(s)" in text
