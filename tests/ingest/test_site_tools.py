"""Member sites made with WordPress and the hosted builders, end to end through the CLI.

`aggregator preview` (a subprocess, as staff run it) must find each fixture site's feed at
its tool's address and name the tool; `aggregator fetch` + `export` must publish the
WordPress debris fixture (tests/fixtures/sites/wpdebris) clean in Atom, RSS and JSON Feed,
read back with feedparser, with every real image, caption and link kept.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from aggregator.ingest.parse.site_tools import detect_site_tool
from tests.site_fixtures import DEBRIS
from tests.site_fixtures import SHORTCODE
from tests.site_fixtures import SITES
from tests.site_fixtures import aggregator
from tests.site_fixtures import serve_sites
from tests.support.server import FixtureServer

UPLOADS = "https://tomatopickers.example.org/wp-content/uploads/2025/03"


@pytest.fixture(scope="module")
def sites() -> Iterator[FixtureServer]:
    with serve_sites() as server:
        yield server


@pytest.mark.parametrize(
    ("site", "tool", "feed"),
    [
        ("/wpdebris/", "WordPress (wp-content paths)", "/wpdebris/?feed=rss2"),
        (
            "/wixblog/",
            'Wix (generator meta tag "Wix.com Website Builder")',
            "/wixblog/blog-feed.xml",
        ),
        ("/ghost/", 'Ghost (generator meta tag "Ghost 5.82")', "/ghost/rss/"),
        ("/blogger/", 'Blogger (generator meta tag "blogger")', "/blogger/feeds/posts/default"),
        (
            "/drupal7/",
            'Drupal (generator meta tag "Drupal 7 (http://drupal.org)")',
            "/drupal7/node/feed",
        ),
        (
            "/bilingual/es/noticias/",
            'WordPress (generator meta tag "WordPress 6.7.2")',
            "/bilingual/es/feed/",
        ),
    ],
)
def test_preview_finds_the_feed_where_the_site_tool_puts_it(
    sites: FixtureServer, tmp_path: Path, site: str, tool: str, feed: str
) -> None:
    result = aggregator("preview", sites.url(site), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"Site tool: {tool}" in lines
    assert f"Would be added as a feed: {sites.url(feed)}" in lines
    chosen = [line for line in lines if line.startswith(f"  * {sites.url(feed)}  chosen (")]
    assert chosen and chosen[0].endswith(f"where {tool.split()[0]} puts it)")


def test_a_page_without_marks_has_no_site_tool() -> None:
    assert detect_site_tool((SITES / "plain" / "news.html").read_bytes()) is None


CONFIG = textwrap.dedent(
    """\
    network:
      title: Sample Network
      url: https://network.example/
      feed_url: https://network.example/news/
      language: en
    members:
      - id: ctp
        name: Coalition of Tomato Pickers
        url: https://tomatopickers.example.org/
        sources:
          - feed: {base}/wpdebris/?feed=rss2
      - id: cta
        name: Centro de Trabajadores Agrícolas
        url: https://ctagricolas.example.org/
        language: es
        sources:
          - feed: {base}/bilingual/es/feed/
    """
)
def test_fetch_and_export_publish_member_posts_without_site_debris(
    sites: FixtureServer, tmp_path: Path
) -> None:
    config = tmp_path / "feeds.yaml"
    config.write_text(CONFIG.format(base=sites.base_url), encoding="utf-8")
    base = ["--config", str(config), "--database", f"sqlite:///{tmp_path / 'db.sqlite'}"]
    fetched = aggregator(*base, "fetch", cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    exported = aggregator(*base, "export", str(tmp_path / "out"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr

    atom = feedparser.parse((tmp_path / "out" / "feed.atom").read_bytes())
    rss = feedparser.parse((tmp_path / "out" / "feed.rss").read_bytes())
    json_feed = json.loads((tmp_path / "out" / "feed.json").read_text(encoding="utf-8"))
    assert not atom.bozo and not rss.bozo
    published = {
        "atom": [_feedparser_text(entry) for entry in atom.entries],
        "rss": [_feedparser_text(entry) for entry in rss.entries],
        "json": [
            item.get("title", "") + item.get("content_html", "") + item.get("summary", "")
            for item in json_feed["items"]
        ],
    }
    for name, texts in published.items():
        assert len(texts) == 5, name
        everything = "\n".join(texts)
        assert not SHORTCODE.search(everything), name
        for debris in DEBRIS:
            assert debris not in everything, (name, debris)
        # Every real image, caption and link survived.
        for kept in (
            f"{UPLOADS}/march-bridge.jpg",
            "<figcaption>Marchers cross the Caloosahatchee bridge on day four.</figcaption>",
            f"{UPLOADS}/capitol-steps.jpg",
            f"{UPLOADS}/rally-1024x683.jpg",
            f"{UPLOADS}/shade-tent.jpg",
            "https://tomatopickers.example.org/petition/",
            "https://tomatopickers.example.org/statement/",
            "https://tomatopickers.example.org/stewards/",
            "✊",
            "🍅",
            "[sic]",
            "[1]",
            "[Statement] Heat rules now",
            "Workers’ march reaches the state capitol & the governor listens",
            "statement page</a>…",
            "Más de cien trabajadores llegaron a la asamblea de marzo…",
        ):
            assert kept in everything, (name, kept)
    march = next(item for item in json_feed["items"] if "march" in item["title"].lower())
    assert march["url"] == "https://tomatopickers.example.org/?p=34460"
    assert march["image"] == f"{UPLOADS}/march-bridge.jpg"


def _feedparser_text(entry: feedparser.FeedParserDict) -> str:
    content = "".join(part.value for part in entry.get("content", []))
    return "\n".join((entry.title, entry.get("summary", ""), content))
