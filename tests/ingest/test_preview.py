"""`aggregator preview`: what staff see before adding a member, checked through the CLI."""

from __future__ import annotations

import contextlib
import io

import pytest

from aggregator.cli import main
from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.preview import parse_selectors_option
from aggregator.models import PageSelectors
from tests.site_fixtures import serve_sites
from tests.support.server import FixtureServer

HEADER = """\
network:
  title: WSR Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news/
members:
"""

RELATIVE_FEED = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Relative links</title><link>/</link>
<item><title>First story</title><link>/news/1</link>
  <pubDate>Mon, 03 Mar 2025 10:00:00 GMT</pubDate></item>
<item><title>Second story</title><link>/news/2</link></item>
</channel></rss>"""


def preview(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["preview", *args])
    return code, out.getvalue(), err.getvalue()


def test_a_wordpress_site_previews_its_posts_feed() -> None:
    with serve_sites() as server:
        code, out, _ = preview(server.url("/wordpress/"))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Preview of {server.url('/wordpress/')} (nothing is stored)"
    chosen = "chosen (rss20, 100% full text, named by the page)"
    assert f"  * {server.url('/wordpress/feed/')}  {chosen}" in lines
    assert f"    {server.url('/wordpress/comments/feed/')}  a comments feed: never used" in lines
    assert f"Would be added as a feed: {server.url('/wordpress/feed/')}" in lines
    assert "2 item(s):" in lines
    assert "  2025-03-12  Greenhouse workers sign first code of conduct" in lines
    assert "Warnings:" not in lines


def test_yaml_block_pastes_into_a_valid_feeds_yaml() -> None:
    with serve_sites() as server:
        code, out, _ = preview(server.url("/wordpress/"), "--yaml")
    assert code == 0
    assert f"# found on {server.url('/wordpress/')} by autodiscovery" in out
    config = parse_config(HEADER + out)
    [member] = config.members
    assert member.id == "gfc"  # the name is long and the host an IP address: initials
    assert member.name == "Greenway Farmworker Coalition"
    assert member.language == "en"
    assert [(source.kind, source.url) for source in member.sources] == [
        ("feed", server.url("/wordpress/feed/"))
    ]


def test_a_site_name_comes_from_the_page_not_a_generic_feed_title() -> None:
    with serve_sites() as server:
        _, out, _ = preview(server.url("/jsonld/news/"), "--yaml")
    member = parse_config(HEADER + out).members[0]
    assert member.name == "Alianza de Trabajadoras del Hogar"
    assert member.language == "es"
    assert member.sources[0].url == server.url("/jsonld/feed.json")


def test_a_site_without_feed_is_previewed_as_a_page_with_its_warnings() -> None:
    with serve_sites() as server:
        code, out, _ = preview(server.url("/plain/news.html"))
        _, yaml_out, _ = preview(server.url("/plain/news.html"), "--yaml")
    assert code == 0
    assert "Would be added as a news page (without selectors)" in out
    assert "no feed was found on the site, so this address would be read as a news page" in out
    assert "1 item(s) appear more than once (same link" in out
    source = parse_config(HEADER + yaml_out).members[0].sources[0]
    assert (source.kind, source.selectors) == ("page", None)


def test_a_page_without_dates_warns() -> None:
    with serve_sites() as server:
        _, out, _ = preview(server.url("/wix/"), "--page")
    assert "  no date     Orchard crews elect their first safety committee" in out
    assert "show no dates" in out
    assert "'follow: true'" in out


def test_selectors_are_used_and_written_into_the_yaml() -> None:
    with serve_sites() as server:
        url = server.url("/plain/news.html")
        code, out, _ = preview(url, "--selectors", "item=ul.news li,date=i")
        _, yaml_out, _ = preview(url, "--selectors", "item=ul.news li,date=i", "--yaml")
    assert code == 0
    assert "(with the given selectors)" in out
    source = parse_config(HEADER + yaml_out).members[0].sources[0]
    assert source.selectors == PageSelectors(item="ul.news li", date="i")


def test_relative_links_in_a_feed_and_missing_dates_are_warned_about() -> None:
    with FixtureServer() as server:
        server.routes["/feed.xml"] = Route(
            body=RELATIVE_FEED, headers={"Content-Type": "application/rss+xml"}
        )
        code, out, _ = preview(server.url("/feed.xml"))
    assert code == 0
    assert f"              {server.url('/news/1')}  (written relative)" in out
    assert "2 item link(s) are written relative (e.g. '/news/1')" in out
    assert "1 of 2 items have no date; each would be dated when first seen" in out


def test_an_address_that_fails_says_why_and_exits_1() -> None:
    with FixtureServer() as server:
        code, out, _ = preview(server.url("/missing/"))
        yaml_code, _, err = preview(server.url("/missing/"), "--yaml")
    assert code == 1
    assert "Cannot be read: HTTP 404 (not found)" in out
    assert yaml_code == 1
    assert "nothing to add" in err


def test_bad_arguments_exit_2() -> None:
    assert preview("ftp://example.org/")[0] == 2  # "example.org" alone is read as https://
    code, _, err = preview("https://example.org/", "--selectors", "title=h2")
    assert code == 2
    assert "needs item=" in err


def test_selectors_option_keeps_commas_inside_a_selector() -> None:
    assert parse_selectors_option("item=article, li.news,title=h2 a") == PageSelectors(
        item="article, li.news", title="h2 a"
    )
    with pytest.raises(ValueError, match="key=selector"):
        parse_selectors_option("article")
