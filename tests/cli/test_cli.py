"""End to end through the CLI: feeds.yaml -> fetch from a real server -> SQLite -> export.

The published feeds are read back with feedparser, as a subscriber's feed reader would.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import feedparser
import pytest

from aggregator.cli import main
from aggregator.demo.server import Route
from tests.conftest import FIXTURES
from tests.support.server import FixtureServer

CONFIG = textwrap.dedent(
    """\
    network:
      title: Sample Network
      url: https://network.example/
      feed_url: https://network.example/news/
      description: News from the sample members
      language: en
    members:
      - id: riverbend
        name: Riverbend Farmworker Alliance
        url: https://riverbend-workers.example.org/
        tags: [agriculture]
        sources:
          - feed: {base}/wordpress_content_encoded.xml
      - id: partner
        name: Orchard Workers Solidarity Fund
        url: https://orchard-solidarity.example.net/
        sources:
          - feed: {base}/crosspost_partner_rss.xml
      - id: dairy
        name: Dairy Workers
        url: https://dairy.example/
        sources:
          - feed: {base}/atom_xml_base_xhtml.xml
          - feed: {base}/broken.xml
      - id: cleaners
        name: Ciudad Cleaners
        url: https://cleaners.example/
        sources:
          - feed: {base}/rss10_iso8859_1.xml
          - feed: {base}/jsonfeed_11.json
          - page: {base}/news_page_cards.html
            selectors:
              item: article.news-card
              title: h2 a
              date: time
    """
)


@pytest.fixture
def config_path(tmp_path: Path, server: FixtureServer) -> Path:
    server.routes["/broken.xml"] = Route(status=500, body=b"Internal Server Error")
    path = tmp_path / "feeds.yaml"
    path.write_text(CONFIG.format(base=server.base_url), encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_accepts_a_good_file(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--config", str(config_path), "check")
    assert code == 0
    assert "OK — 4 members, 7 sources" in out


def test_bad_config_exits_2_and_fetches_nothing(
    tmp_path: Path, server: FixtureServer, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "feeds.yaml"
    bad.write_text(
        CONFIG.format(base=server.base_url).replace("  - id: partner", "  - id: riverbend"),
        encoding="utf-8",
    )
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    code, _, err = run(capsys, "--config", str(bad), "--database", database, "fetch")
    assert code == 2
    assert "line 14, member 'riverbend', field 'id'" in err
    assert "already used by the member on line 8" in err
    assert server.requests == []


def test_fetch_then_export_publishes_one_clean_combined_feed(
    tmp_path: Path,
    config_path: Path,
    server: FixtureServer,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = database_url
    base = ["--config", str(config_path), "--database", database]

    code, out, _ = run(capsys, *base, "fetch")
    assert code == 0, out
    assert f"riverbend: new: {server.base_url}/wordpress_content_encoded.xml (2 new)" in out
    assert f"dairy: broken: {server.base_url}/broken.xml HTTP 500 (server error)" in out
    assert "7 sources: 6 with new items, 0 updated, 0 unchanged, 1 failed" in out

    published = tmp_path / "published"
    code, out, _ = run(capsys, *base, "export", str(published))
    assert code == 0
    atom = feedparser.parse((published / "feed.atom").read_bytes())
    rss = feedparser.parse((published / "feed.rss").read_bytes())
    assert not atom.bozo and not rss.bozo, (atom.get("bozo_exception"), rss.get("bozo_exception"))
    json_feed = json.loads((published / "feed.json").read_text(encoding="utf-8"))

    # The cross-post is one story credited to both members; the generic title is not merged.
    heat = [entry for entry in atom.entries if "heat standard" in entry.title.lower()]
    assert len(heat) == 1
    assert [author.name for author in heat[0].authors] == [
        "Riverbend Farmworker Alliance",
        "Orchard Workers Solidarity Fund",
    ]
    assert heat[0].link == "https://riverbend-workers.example.org/2025/03/heat-standard-signed/"
    assert "utm_" not in heat[0].link
    # Newest first, and the same order in every format.
    dates = [entry.published_parsed for entry in atom.entries]
    assert dates == sorted(dates, reverse=True)
    assert [entry.id for entry in atom.entries] == [entry.id for entry in rss.entries]
    assert [entry.id for entry in atom.entries] == [item["id"] for item in json_feed["items"]]
    # Latin-1 RSS 1.0 came through intact.
    assert any("agrícola" in entry.title for entry in atom.entries)
    # Content is sanitized and absolute.
    for entry in atom.entries:
        body = entry.get("content", [{"value": ""}])[0]["value"]
        assert "<script" not in body and "javascript:" not in body
        assert 'src="/' not in body and 'href="/' not in body


def test_repoll_is_conditional_and_an_edit_updates_in_place(
    tmp_path: Path,
    config_path: Path,
    server: FixtureServer,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = database_url
    base = ["--config", str(config_path), "--database", database]
    run(capsys, *base, "fetch")
    run(capsys, *base, "export", str(tmp_path / "before"))

    code, out, _ = run(capsys, *base, "fetch")
    assert code == 0
    assert f"riverbend: unchanged: {server.base_url}/wordpress_content_encoded.xml" in out
    second = server.requests_for("/wordpress_content_encoded.xml")[1]
    assert "if-none-match" in second.headers

    original = (FIXTURES / "wordpress_content_encoded.xml").read_bytes()
    edited = original.replace(
        b"<title>Heat standard signed at three more orchards</title>",
        b"<title>Heat standard signed at four more orchards</title>",
    )
    assert edited != original
    server.routes["/wordpress_content_encoded.xml"] = Route(
        body=edited, headers={"Content-Type": "application/rss+xml"}
    )
    code, out, _ = run(capsys, *base, "fetch", "--member", "riverbend")
    assert code == 0
    assert "riverbend: updated:" in out and "(1 updated)" in out
    assert "partner" not in out  # --member polls only that member

    run(capsys, *base, "export", str(tmp_path / "after"))
    before = feedparser.parse((tmp_path / "before" / "feed.atom").read_bytes())
    after = feedparser.parse((tmp_path / "after" / "feed.atom").read_bytes())
    assert len(after.entries) == len(before.entries)
    ids_before = {entry.title: entry.id for entry in before.entries}
    ids_after = {entry.title: entry.id for entry in after.entries}
    assert "Heat standard signed at four more orchards" in ids_after
    assert (
        ids_after["Heat standard signed at four more orchards"]
        == ids_before["Heat standard signed at three more orchards"]
    )


def test_failed_source_never_shrinks_the_published_feed(
    tmp_path: Path,
    config_path: Path,
    server: FixtureServer,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = database_url
    base = ["--config", str(config_path), "--database", database]
    run(capsys, *base, "fetch")
    run(capsys, *base, "export", str(tmp_path / "before"))
    server.routes["/wordpress_content_encoded.xml"] = Route(status=503, body=b"down")
    server.routes["/jsonfeed_11.json"] = Route(body=b"{ truncated", headers={})
    code, out, _ = run(capsys, *base, "fetch")
    assert code == 0
    assert "riverbend: broken:" in out and "HTTP 503" in out
    assert "cleaners: broken:" in out and "JSON" in out
    run(capsys, *base, "export", str(tmp_path / "after"))
    before = (tmp_path / "before" / "feed.atom").read_bytes()
    after = (tmp_path / "after" / "feed.atom").read_bytes()
    assert len(feedparser.parse(after).entries) == len(feedparser.parse(before).entries)


def test_unknown_member_is_refused(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--config", str(config_path), "fetch", "--member", "nobody")
    assert code == 2 and "no member with id 'nobody'" in err


def test_unusable_database_exits_3(
    config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_bytes(b"this is not an SQLite database, just some text" * 20)
    code, _, err = run(
        capsys, "--config", str(config_path), "--database", f"sqlite:///{not_a_db}", "fetch"
    )
    assert code == 3 and "cannot open the database" in err
