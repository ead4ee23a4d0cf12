"""One member's hostile addresses never stop the round (issue: hostile input, round two).

A discovered `<link rel=alternate href="/feed\\x01.xml">`, a redirect to a malformed or
unresolvable address, a hub URL with control characters: each is that source's failure,
reported with its cause, while every other member's items are stored. The fetcher keeps no
cookies, so one member's host cannot load every other member's requests with cookies.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aggregator.cli import main
from aggregator.demo.server import Route
from aggregator.models import PollOutcome
from aggregator.store import Store
from tests.hostile.server import config_for
from tests.hostile.server import fetch_once
from tests.hostile.server import poll
from tests.support.server import FixtureServer

GOOD_FEED = (
    b"<?xml version='1.0'?><rss version='2.0'><channel><title>Good</title>"
    b"<link>https://good.example.org/</link>"
    b"<item><title>Farmworkers ratify the heat standard</title>"
    b"<link>https://good.example.org/2026/heat-standard/</link>"
    b"<guid>https://good.example.org/2026/heat-standard/</guid>"
    b"<description>The vote was unanimous.</description></item>"
    b"</channel></rss>"
)
XML = {"Content-Type": "application/rss+xml"}
HTML = {"Content-Type": "text/html; charset=utf-8"}


def page_linking(href: str) -> bytes:
    return (
        "<!doctype html><html><head><title>Hostile member</title>"
        f'<link rel="alternate" type="application/rss+xml" href="{href}">'
        "</head><body><p>News soon.</p></body></html>"
    ).encode("utf-8", "surrogateescape")


def test_an_address_with_a_control_character_is_a_failure_not_a_crash(
    server: FixtureServer,
) -> None:
    result = fetch_once(server.url("/feed\x01.xml"))
    assert result.content is None
    assert result.error is not None
    assert result.error.startswith("the address is malformed")


def test_a_discovered_feed_link_with_a_control_character_leaves_the_round_going(
    server: FixtureServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.routes["/hostile/"] = Route(body=page_linking("/feed\x01.xml"), headers=HTML)
    server.routes["/good.xml"] = Route(body=GOOD_FEED, headers=XML)
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text(
        "network:\n  title: T\n  url: https://n.example.org/\n"
        "  feed_url: https://n.example.org/feeds/\n"
        "members:\n"
        "  - id: hostile\n    name: Hostile member\n    url: https://h.example.org/\n"
        f"    sources:\n      - url: {server.url('/hostile/')}\n"
        "  - id: good\n    name: Good member\n    url: https://good.example.org/\n"
        f"    sources:\n      - feed: {server.url('/good.xml')}\n",
        encoding="utf-8",
    )
    database = f"sqlite:///{tmp_path / 'a.db'}"

    code = main(["--config", str(config_path), "--database", database, "fetch"])

    out = capsys.readouterr().out
    assert code in (0, 1)  # 1: some source failed; never a traceback
    assert "Farmworkers ratify the heat standard" in Path(tmp_path / "a.db").read_bytes().decode(
        "utf-8", "replace"
    )
    assert server.url("/hostile/") in out
    store = Store.open(database)
    try:
        assert [story.title for story in store.latest_stories(10)] == [
            "Farmworkers ratify the heat standard"
        ]
    finally:
        store.close()


def test_cookies_are_never_kept_between_requests(server: FixtureServer) -> None:
    server.routes["/sets-cookies.xml"] = Route(
        body=GOOD_FEED,
        headers={
            **XML,
            "Set-Cookie": "tracker=1; Domain=127.0.0.1; Path=/; Max-Age=99999",
        },
    )
    server.routes["/other.xml"] = Route(body=GOOD_FEED, headers=XML)
    config = config_for(
        {"setter": [server.url("/sets-cookies.xml")], "other": [server.url("/other.xml")]}
    )
    store = Store.open("sqlite://")
    try:
        poll(config, store)
        poll(config, store)
    finally:
        store.close()
    for request in server.requests:
        assert "cookie" not in {name.lower() for name in request.headers}, request


# Characters a hostile feed or page can put in an address: controls, spaces, brackets,
# percent signs, non-ASCII, over-long labels, odd schemes and ports.
HOSTILE_PIECES = [
    "\x00", "\x01", "\x1b[2J", "\x7f", " ", "\t", "\n", "%", "%zz", "[", "]", "@", "\\",
    "\u202e", "é", "\ud800", "a" * 64 + ".", "::", ":99999", ":-1", "javascript:",
    "//", "..", "?", "#", "\u0001",
]  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(HOSTILE_PIECES), min_size=1, max_size=4), st.integers(0, 4))
def test_random_bytes_in_every_url_position_never_stop_the_round(
    pieces: list[str], position: int
) -> None:
    """Feed link, redirect target, discovered link, hub URL and item link each get a hostile
    address; the round still completes and the good member's story is stored."""
    junk = "".join(pieces)
    rng = random.Random(repr(junk))
    with FixtureServer(Path(__file__).parent) as server:
        hostile = f"/{rng.randrange(10**6)}{junk}.xml"
        feed_with = {
            # hub URL and item link inside an otherwise good feed
            3: GOOD_FEED.replace(
                b"<channel>",
                f'<channel><atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="hub" '
                f'href="http://127.0.0.1/hub{junk}"/>'.encode("utf-8", "surrogatepass"),
            ),
            4: GOOD_FEED.replace(
                b"https://good.example.org/2026/heat-standard/</link>",
                f"https://good.example.org/{junk}</link>".encode("utf-8", "surrogatepass"),
            ).replace(b"Farmworkers ratify", b"Hostile item"),
        }
        server.routes["/redirect.xml"] = Route(
            status=302,
            headers={"Location": hostile.encode("utf-8", "surrogatepass").decode("latin-1")},
        )
        server.routes["/page/"] = Route(
            body=page_linking(hostile.encode("utf-8", "surrogatepass").decode("utf-8", "replace")),
            headers=HTML,
        )
        server.routes["/hostile.xml"] = Route(body=feed_with.get(position, GOOD_FEED), headers=XML)
        server.routes["/good.xml"] = Route(body=GOOD_FEED, headers=XML)
        hostile_source = {
            0: server.url("/redirect.xml"),
            1: server.url("/page/"),
            2: server.url("/page/"),
        }.get(position, server.url("/hostile.xml"))
        config = config_for({"hostile": [hostile_source], "good": [server.url("/good.xml")]})
        store = Store.open("sqlite://")
        try:
            reports = poll(config, store)
            assert {report.source.url for report in reports} == {
                hostile_source,
                server.url("/good.xml"),
            }
            good = [r for r in reports if r.source.url == server.url("/good.xml")]
            assert good[0].outcome is not PollOutcome.FAILED
            titles = {story.title for story in store.latest_stories(10)}
            assert "Farmworkers ratify the heat standard" in titles
        finally:
            store.close()
