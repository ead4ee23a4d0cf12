"""The web app under a real uvicorn server on 127.0.0.1, over a store filled by a real poll.

The store is the offline demo's: its sample member sites are served by the FixtureServer
and polled through poll_all, exactly as `aggregator fetch` does. items_per_feed is 4 so
that the 27 demo stories make several RFC 5005 archive pages.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

import feedparser
import html5lib
import httpx
import pytest
from sqlalchemy import create_engine
from starlette.applications import Starlette

from aggregator.cli import main
from aggregator.config import parse_config
from aggregator.demo import demo_config_text
from aggregator.demo import sample_sites
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.models import Config
from aggregator.publish.export import export_files
from aggregator.publish.site import site_files
from aggregator.publish.site import site_paths
from aggregator.service import server as server_module
from aggregator.service import web
from aggregator.store import Store
from aggregator.text import tag_slug
from tests.support.polling import poll_once

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PER_PAGE = 4
HISTORY_NS = "{http://purl.org/syndication/history/1.0}"
ATOM_NS = "{http://www.w3.org/2005/Atom}"


@dataclass(frozen=True)
class Demo:
    config: Config
    config_path: Path
    database: str
    store: Store


@dataclass(frozen=True)
class Live:
    base: str
    client: httpx.Client


def paged_demo_config_text(base_url: str) -> str:
    text = demo_config_text(base_url)
    return text.replace("  language: en\n", f"  language: en\n  items_per_feed: {PER_PAGE}\n", 1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    directory = tmp_path_factory.mktemp("demo")
    with sample_sites() as sites:
        config_path = directory / "feeds.yaml"
        config_path.write_text(paged_demo_config_text(sites.base_url), encoding="utf-8")
        config = parse_config(config_path.read_text(encoding="utf-8"), str(config_path))
        database = f"sqlite:///{directory / 'aggregator.db'}"
        store = Store.open(database)
        store.sync_config(config)

        poll_once(config, store)
    yield Demo(config=config, config_path=config_path, database=database, store=store)
    store.close()


def serve(app: Starlette) -> Iterator[str]:
    """Run `app` under uvicorn on a free 127.0.0.1 port in a thread; yield its base URL."""
    server = server_module.make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def live(demo: Demo) -> Iterator[Live]:
    app = web.create_app(demo.config, demo.store, clock=lambda: NOW)
    for base in serve(app):
        with httpx.Client(base_url=base, timeout=10) as client:
            yield Live(base=base, client=client)


def local_path(demo: Demo, url: str) -> str:
    """The server path of a published address (addresses hang off network.feed_url)."""
    assert url.startswith(demo.config.network.feed_url), url
    return "/" + url.removeprefix(demo.config.network.feed_url)


def all_story_ids(demo: Demo) -> list[str]:
    return [story.id for story in demo.store.latest_stories(1000)]


# --- every endpoint -------------------------------------------------------------------

ENDPOINTS = [
    ("/", "text/html; charset=utf-8"),
    ("/index.html", "text/html; charset=utf-8"),
    ("/embed", "text/html; charset=utf-8"),
    ("/embed.js", "text/javascript; charset=utf-8"),
    ("/feed.atom", "application/atom+xml; charset=utf-8"),
    ("/feed.rss", "application/rss+xml; charset=utf-8"),
    ("/feed.json", "application/feed+json; charset=utf-8"),
    ("/members/dairy/feed.atom", "application/atom+xml; charset=utf-8"),
    ("/members/dairy/feed.json", "application/feed+json; charset=utf-8"),
    ("/members/dairy/items.json", "application/json; charset=utf-8"),
    ("/tags/wage-theft/feed.rss", "application/rss+xml; charset=utf-8"),
    ("/archive/1.atom", "application/atom+xml; charset=utf-8"),
    ("/members.opml", "text/x-opml; charset=utf-8"),
    ("/opml", "text/x-opml; charset=utf-8"),
    ("/api/items", "application/json; charset=utf-8"),
    ("/api/items.json", "application/json; charset=utf-8"),
    ("/api/openapi.json", "application/json"),
    ("/healthz", "text/plain; charset=utf-8"),
    ("/status", "text/html; charset=utf-8"),
    ("/status.json", "application/json; charset=utf-8"),
]


@pytest.mark.parametrize(("path", "content_type"), ENDPOINTS)
def test_every_endpoint_answers_with_its_content_type(
    live: Live, path: str, content_type: str
) -> None:
    response = live.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.content


@pytest.mark.parametrize(
    "path",
    [
        "/members/nobody/feed.atom",
        "/tags/no-such-tag/feed.atom",
        "/tags/Wage-Theft/feed.atom",  # only the slug is published
        "/feed.xml",
        "/archive/999.atom",
        "/members/dairy/archive/0.atom",
        "/nothing-here",
    ],
)
def test_unpublished_paths_are_404(live: Live, path: str) -> None:
    assert live.client.get(path).status_code == 404


def test_feeds_carry_cache_headers_and_cors(live: Live, demo: Demo) -> None:
    response = live.client.get("/feed.atom")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["access-control-allow-origin"] == "*"
    etag = response.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    newest = max(story.updated for story in demo.store.latest_stories(PER_PAGE))
    assert response.headers["last-modified"] == format_datetime(newest, usegmt=True)
    # The same bytes twice (from the render cache), so the same strong validator.
    again = live.client.get("/feed.atom")
    assert again.content == response.content and again.headers["etag"] == etag


# --- conditional requests -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/feed.atom", "/members/harvest/feed.rss", "/api/items"])
def test_if_none_match_gets_304(live: Live, path: str) -> None:
    first = live.client.get(path)
    etag = first.headers["etag"]
    response = live.client.get(path, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["access-control-allow-origin"] == "*"
    # A list with the tag in it, and the weak form of it, match too (RFC 9110 13.1.2).
    assert live.client.get(path, headers={"If-None-Match": f'"x", W/{etag}'}).status_code == 304
    assert live.client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_if_modified_since_gets_304_unless_older(live: Live) -> None:
    first = live.client.get("/feed.rss")
    last_modified = first.headers["last-modified"]
    assert (
        live.client.get("/feed.rss", headers={"If-Modified-Since": last_modified}).status_code
        == 304
    )
    older = format_datetime(
        datetime.strptime(last_modified, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
        - timedelta(seconds=1),
        usegmt=True,
    )
    assert live.client.get("/feed.rss", headers={"If-Modified-Since": older}).status_code == 200
    # If-None-Match wins: a stale tag with a fresh date is not a 304.
    both = {"If-None-Match": '"stale"', "If-Modified-Since": last_modified}
    assert live.client.get("/feed.rss", headers=both).status_code == 200
    assert live.client.get("/feed.rss", headers={"If-Modified-Since": "garbage"}).status_code == 200


# --- feeds per member and per tag -----------------------------------------------------


def parse_feed(live: Live, path: str) -> feedparser.FeedParserDict:
    response = live.client.get(path)
    assert response.status_code == 200, path
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, (path, parsed.get("bozo_exception"))
    return parsed


def test_every_member_and_tag_feed_parses_back_without_bozo(live: Live, demo: Demo) -> None:
    prefixes = [""] + [f"members/{member.id}/" for member in demo.config.members]
    prefixes += [f"tags/{quote(tag)}/" for tag in demo.store.tag_slugs()]
    for prefix in prefixes:
        for extension in ("atom", "rss"):
            parsed = parse_feed(live, f"/{prefix}feed.{extension}")
            assert parsed.entries, prefix
        document = live.client.get(f"/{prefix}feed.json").json()
        assert document["version"] == "https://jsonfeed.org/version/1.1"
        assert document["feed_url"].endswith(f"{prefix}feed.json")
        assert document["items"]


def test_member_feed_holds_that_members_stories(live: Live, demo: Demo) -> None:
    parsed = parse_feed(live, "/members/garment/feed.atom")
    assert parsed.feed.title == f"{demo.config.network.title}: Garment Rights Monitor (sample)"
    assert len(parsed.entries) == PER_PAGE
    expected = [story.id for story in demo.store.latest_stories(PER_PAGE, member_id="garment")]
    assert [entry.id for entry in parsed.entries] == expected
    for entry in parsed.entries:
        assert "garment" in {tag.term for tag in entry.tags}
    # The cross-posted heat statement is credited to harvest and garment: in both feeds.
    (joint,) = [s.id for s in demo.store.latest_stories(1000) if len(s.credits) > 1]
    for member_id in ("harvest", "garment"):
        items = live.client.get(f"/members/{member_id}/items.json").json()["items"]
        assert joint in {item["id"] for item in items}
        assert all(any(m["id"] == member_id for m in item["members"]) for item in items)


def test_tag_feed_matches_item_tags_case_insensitively_and_member_tags(
    live: Live, demo: Demo
) -> None:
    # "Wage theft", "wage theft" and "wage-theft" are one tag.
    items = live.client.get("/api/items", params={"tag": "Wage Theft", "limit": 100}).json()[
        "items"
    ]
    members = {credit["id"] for item in items for credit in item["members"]}
    assert members == {"harvest", "dairy", "garment"}
    assert all(any(tag_slug(tag) == "wage-theft" for tag in item["tags"]) for item in items)
    # "agriculture" is only a member tag (harvest, dairy): all their stories match it.
    parsed = live.client.get("/tags/agriculture/feed.json").json()
    everything = live.client.get("/api/items", params={"tag": "agriculture", "limit": 100}).json()
    expected = [
        story.id
        for story in demo.store.latest_stories(1000)
        if {credit.member_id for credit in story.credits} & {"harvest", "dairy"}
    ]
    assert [item["id"] for item in everything["items"]] == expected
    assert [entry["id"] for entry in parsed["items"]] == expected[:PER_PAGE]


def test_an_accented_tag_feed_is_served_at_its_folded_address(live: Live) -> None:
    """The demo's "Capacitación" tag is published under text.slugify's folded slug."""
    parsed = parse_feed(live, "/tags/capacitacion/feed.atom")
    assert parsed.feed.links[0].href.endswith("/tags/capacitacion/feed.atom")
    assert parsed.entries[0].title.startswith("¿Conoces tus derechos?")


def test_language_filter_on_feeds(live: Live) -> None:
    parsed = parse_feed(live, "/feed.atom?lang=es")
    assert parsed.entries
    items = live.client.get("/api/items", params={"lang": "es", "limit": 100}).json()["items"]
    assert len(items) > len(parsed.entries) == PER_PAGE
    assert [item["id"] for item in items][:PER_PAGE] == [entry.id for entry in parsed.entries]
    assert all(item["language"] == "es" for item in items)
    assert live.client.get("/feed.atom?lang=!!").status_code == 400


# --- RFC 5005 archives ----------------------------------------------------------------


def links(document: bytes, rel: str) -> list[str]:
    root = ET.fromstring(document)
    return [
        link.get("href", "") for link in root.findall(f"{ATOM_NS}link") if link.get("rel") == rel
    ]


def test_archives_hold_every_older_story_exactly_once(live: Live, demo: Demo) -> None:
    subscription = live.client.get("/feed.atom").content
    total = demo.store.count_stories()
    full_pages = total // PER_PAGE
    assert full_pages >= 2
    seen: list[str] = []
    url = links(subscription, "prev-archive")
    pages = 0
    while url:
        response = live.client.get(local_path(demo, url[0]))
        assert response.status_code == 200
        root = ET.fromstring(response.content)
        assert root.find(f"{HISTORY_NS}archive") is not None
        assert links(response.content, "current") == [demo.config.network.feed_url + "feed.atom"]
        # An archive shares its subscription feed's id.
        assert root.findtext(f"{ATOM_NS}id") == demo.config.network.feed_url + "feed.atom"
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo
        assert len(parsed.entries) == PER_PAGE
        seen += [entry.id for entry in parsed.entries]
        pages += 1
        url = links(response.content, "prev-archive")
    assert pages == full_pages
    assert len(seen) == len(set(seen)) == full_pages * PER_PAGE
    # The stories not archived yet are the newest stored: the subscription shows them.
    newest_stored = set(all_story_ids(demo)) - set(seen)
    assert len(newest_stored) == total - full_pages * PER_PAGE
    # Walking forward from the oldest archive reaches the newest one.
    assert links(live.client.get("/archive/1.atom").content, "next-archive") == [
        demo.config.network.feed_url + "archive/2.atom"
    ]
    assert links(live.client.get(f"/archive/{full_pages}.atom").content, "next-archive") == []


def test_member_feed_has_its_own_archives(live: Live, demo: Demo) -> None:
    total = demo.store.count_stories(member_id="harvest")
    assert links(live.client.get("/members/harvest/feed.atom").content, "prev-archive") == [
        f"{demo.config.network.feed_url}members/harvest/archive/{total // PER_PAGE}.atom"
    ]
    archive = parse_feed(live, "/members/harvest/archive/1.atom")
    assert all("harvest" in {tag.term for tag in entry.tags} for entry in archive.entries)


# --- the JSON API ---------------------------------------------------------------------


def page_through(live: Live, **params: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor: str | None = None
    for _ in range(100):
        query = dict(params, **({"before": cursor} if cursor else {}))
        response = live.client.get("/api/items", params=query)
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == "*"
        document = response.json()
        items += document["items"]
        cursor = document["next"]
        if cursor is None:
            return items
    raise AssertionError("the cursor never ended")


def test_cursor_paging_returns_every_story_exactly_once_newest_first(
    live: Live, demo: Demo
) -> None:
    items = page_through(live, limit="5")
    assert [item["id"] for item in items] == all_story_ids(demo)
    first = live.client.get("/api/items", params={"limit": "5"}).json()
    second = live.client.get("/api/items", params={"limit": "5", "before": first["next"]}).json()
    assert [item["id"] for item in second["items"]] == all_story_ids(demo)[5:10]


def test_api_item_has_the_agreed_shape(live: Live) -> None:
    document = live.client.get("/api/items", params={"limit": "1"}).json()
    assert set(document) == {"items", "next"}
    (item,) = document["items"]
    assert set(item) == {
        "id", "url", "title", "summary", "summary_text", "published", "updated",
        "image", "language", "tags", "members",
    }  # fmt: skip
    assert item["id"].startswith("urn:uuid:")
    assert item["published"].endswith("Z")
    assert set(item["members"][0]) == {"id", "name", "url", "item_url"}
    full = live.client.get("/api/items", params={"limit": "1", "full": "1"}).json()
    assert "<p>" in full["items"][0]["content_html"]


def test_api_filters(live: Live, demo: Demo) -> None:
    found = page_through(live, q="CLERGY", limit="2")
    assert found
    for item in found:
        text = f"{item['title']} {item['summary']}".casefold()
        assert "clergy" in text
    # LIKE wildcards in the query are literal characters.
    assert live.client.get("/api/items", params={"q": "%"}).json()["items"] == []
    member = page_through(live, member="cleaners", limit="2")
    assert [item["id"] for item in member] == [
        story.id for story in demo.store.latest_stories(1000, member_id="cleaners")
    ]
    both = page_through(live, member="harvest", q="heat", limit="100")
    assert both and all(
        "heat" in str(item["title"]).casefold() or "heat" in str(item["summary"]).casefold()
        for item in both
    )


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"member": "nobody"}, "member"),
        ({"before": "not-a-cursor"}, "before"),
        ({"tag": "!!!"}, "tag"),
        ({"q": "x" * 201}, "q"),
        ({"lang": "english please"}, "lang"),
        ({"full": "yes"}, "full"),
    ],
)
def test_bad_api_parameters_get_400_with_a_json_error(
    live: Live, query: dict[str, str], parameter: str
) -> None:
    response = live.client.get("/api/items", params=query)
    assert response.status_code == 400
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json()["parameter"] == parameter
    assert response.json()["error"]


def test_openapi_documents_the_items_api(live: Live) -> None:
    schema = live.client.get("/api/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    parameters = {p["name"] for p in schema["paths"]["/api/items"]["get"]["parameters"]}
    assert parameters == {"limit", "member", "tag", "before", "q", "lang", "full"}
    assert "/members/{member}/feed.{format}" in schema["paths"]


# --- OPML -----------------------------------------------------------------------------


def test_members_opml_lists_each_members_own_sources(live: Live, demo: Demo) -> None:
    root = ET.fromstring(live.client.get("/members.opml").content)
    assert root.get("version") == "2.0"
    outlines = root.findall("body/outline")
    assert [o.get("text") for o in outlines] == [m.name for m in demo.config.members]
    for outline, member in zip(outlines, demo.config.members, strict=True):
        assert outline.get("htmlUrl") == member.url
        children = outline.findall("outline")
        feeds = [c.get("xmlUrl") for c in children if c.get("type") == "rss"]
        pages = [c.get("url") for c in children if c.get("type") == "link"]
        own_feeds = [s.url for s in member.sources if s.kind != "page"]
        # A page-only member is subscribed through its feed on the network, so that a
        # reader importing the file gets every member.
        if own_feeds:
            assert feeds == own_feeds
        else:
            assert len(feeds) == 1
            assert str(feeds[0]).endswith(f"/members/{member.id}/feed.atom")
        assert pages == [s.url for s in member.sources if s.kind == "page"]


def test_published_opml_lists_feeds_this_server_serves(live: Live, demo: Demo) -> None:
    root = ET.fromstring(live.client.get("/opml").content)
    urls = [o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")]
    assert len(urls) == 1 + len(demo.config.members) + len(demo.store.tag_slugs())
    for url in urls:
        assert url is not None
        assert live.client.get(local_path(demo, url)).status_code == 200, url


# --- the static export ----------------------------------------------------------------


def test_export_writes_the_bytes_the_server_serves(live: Live, demo: Demo, tmp_path: Path) -> None:
    paths = site_paths(demo.config, demo.store)
    written = export_files(tmp_path, site_files(demo.config, demo.store, now=NOW))
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(paths)
    for path in paths:
        served = live.client.get("/" + quote(path))
        assert served.status_code == 200, path
        exported = (tmp_path / path).read_bytes()
        if path == "embed.js":
            # The one difference: the script reads the live API, or the static JSON.
            assert b'"api/items"' in served.content and b'"api/items.json"' in exported
            assert served.content.replace(b'"api/items"', b'"api/items.json"') == exported
        elif path == "index.html":
            # The other: the live page adds the search form and paging a static host
            # cannot answer; the rest is the same bytes.
            live_only = re.compile(
                rb'<form class="search".*?</form>\n|<nav class="paging".*?</nav>\n', re.S
            )
            assert b'<form class="search"' in served.content
            assert live_only.sub(b"", served.content) == exported
        else:
            assert served.content == exported, path


def test_cli_export_writes_every_query_less_path(demo: Demo, tmp_path: Path) -> None:
    code = main(
        ["--config", str(demo.config_path), "--database", demo.database, "export", str(tmp_path)]
    )
    assert code == 0
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted(site_paths(demo.config, demo.store))
    for expected in ("index.html", "embed.js", "embed.html", "api/items.json", "opml"):
        assert expected in files
    assert "members/faith/items.json" in files and "tags/dairy/feed.json" in files


# --- freshness and health -------------------------------------------------------------


def test_cache_follows_data_and_config_changes(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web, "VERSION_CHECK_SECONDS", 0.0)
    store = Store.open(demo.database)  # a second connection pool over the same file
    app = web.create_app(demo.config, store, clock=lambda: NOW)
    try:
        for base in serve(app):
            with httpx.Client(base_url=base) as client:
                before = client.get("/members.opml")
                renamed = [
                    m if m.id != "faith" else type(m)(**{**m.__dict__, "name": "Renamed Faith"})
                    for m in demo.config.members
                ]
                new_config = Config(network=demo.config.network, members=tuple(renamed))
                web.set_config(app, new_config)
                after = client.get("/members.opml")
                assert b"Renamed Faith" in after.content
                assert after.headers["etag"] != before.headers["etag"]
                assert (
                    client.get(
                        "/members.opml", headers={"If-None-Match": before.headers["etag"]}
                    ).status_code
                    == 200
                )

                feed = client.get("/members/faith/feed.atom")
                store.sync_config(new_config)  # a write that changes what is published
                changed = client.get("/members/faith/feed.atom")
                assert b"Renamed Faith" in changed.content
                assert changed.headers["etag"] != feed.headers["etag"]
    finally:
        store.sync_config(demo.config)
        store.close()


def test_healthz_is_503_when_the_database_does_not_answer(tmp_path: Path, demo: Demo) -> None:
    broken = Store(create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"))
    for base in serve(web.create_app(demo.config, broken)):
        response = httpx.get(base + "/healthz")
        assert response.status_code == 503
        assert response.headers["cache-control"] == "no-store"


def test_healthz_is_ok_with_a_database(live: Live) -> None:
    response = live.client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")


def test_status_json_lists_every_source(live: Live, demo: Demo) -> None:
    text = json.dumps(live.client.get("/status.json").json())
    for member in demo.config.members:
        for source in member.sources:
            assert source.url in text


def test_page_links_its_feeds_for_autodiscovery(live: Live, demo: Demo) -> None:
    page = live.client.get("/").text
    assert f'href="{demo.config.network.feed_url}feed.atom"' in page
    assert f'href="{demo.config.network.feed_url}members.opml"' in page or "members.opml" in page


# --- the reader's side: search, paging, 404, embed help (plain HTTP, no JavaScript) ---


def html_tree(text: str) -> ET.Element:
    parser = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False)
    root: ET.Element = parser.parse(text)
    return root


def headlines(page: ET.Element) -> list[str]:
    return [a.get("href") or "" for a in page.findall(".//article/h3/a")]


def test_older_stories_links_page_through_every_story_once(live: Live, demo: Demo) -> None:
    seen: list[str] = []
    address = "/"
    for _ in range(50):
        page = html_tree(live.client.get(address).text)
        seen += headlines(page)
        older = [a for a in page.iter("a") if a.get("rel") == "next"]
        if not older:
            break
        address = "/" + (older[0].get("href") or "")
    expected = [story.url for story in demo.store.latest_stories(1000)]
    assert seen == expected
    assert len(seen) > PER_PAGE


def test_search_form_answers_without_javascript(live: Live, demo: Demo) -> None:
    form = html_tree(live.client.get("/").text).find(".//form[@role='search']")
    assert form is not None and (form.get("method") or "").lower() == "get"
    (field,) = [i for i in form.iter("input") if i.get("name") == "q"]
    word = "union"
    matching = [story.url for story in demo.store.latest_stories(1000, query=word)]
    assert 0 < len(matching) < len(all_story_ids(demo))

    answer = live.client.get("/", params={field.get("name") or "": word})

    assert answer.status_code == 200
    page = html_tree(answer.text)
    assert headlines(page)[:PER_PAGE] == matching[:PER_PAGE]
    search_box = page.find(".//input[@name='q']")
    assert search_box is not None and search_box.get("value") == word


def test_search_matching_nothing_says_so(live: Live) -> None:
    page = html_tree(live.client.get("/", params={"q": "zzzz-no-such-words"}).text)
    assert headlines(page) == []
    assert "No story matches this search." in "".join(page.itertext())


def test_bad_paging_address_gets_an_html_400(live: Live) -> None:
    answer = live.client.get("/", params={"before": "not-a-cursor"})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/no-such-page", "/members/nobody/feed.atom"])
def test_unknown_paths_get_an_html_404_for_browsers(live: Live, demo: Demo, path: str) -> None:
    answer = live.client.get(path, headers={"Accept": "text/html,application/xhtml+xml"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    page = html_tree(answer.text)
    assert page.findtext(".//h1") == "Page not found"
    assert demo.config.network.feed_url in {a.get("href") for a in page.iter("a")}
    plain = live.client.get(path, headers={"Accept": "application/atom+xml"})
    assert plain.status_code == 404 and plain.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("path", ["/embed?help", "/embed.html?help"])
def test_embed_help_shows_the_snippet(live: Live, demo: Demo, path: str) -> None:
    answer = live.client.get(path)
    assert answer.status_code == 200
    text = "".join(html_tree(answer.text).itertext())
    assert "<div data-wsr-news" in text
    assert f'<script src="{demo.config.network.feed_url}embed.js" async></script>' in text
    assert "#embedding-the-latest-news-on-your-site" in answer.text


def test_api_summary_text_has_no_continue_reading(live: Live) -> None:
    items = live.client.get("/api/items", params={"limit": 100}).json()["items"]
    # The demo's WordPress excerpts end in "… Continue reading" links (harvest/feed.xml):
    # neither the HTML summary nor its text carries that dead tail.
    assert any("summit-fresh" in item["url"] for item in items)
    assert all("Continue reading" not in item["summary"] for item in items)
    assert all("Continue reading" not in item["summary_text"] for item in items)
    assert "Continue reading" not in live.client.get("/embed").text


# --- the same answers on SQLite and PostgreSQL ----------------------------------------


def test_story_queries_agree_on_every_database(database_url: str) -> None:
    """Tag, search, language and cursor queries, on a store filled by a real poll."""
    with sample_sites() as sites:
        config = parse_config(paged_demo_config_text(sites.base_url), "feeds.yaml")
        store = Store.open(database_url)
        try:
            store.sync_config(config)

            async def poll() -> None:
                async with Fetcher() as fetcher:
                    await poll_all(config, store, fetcher)

            asyncio.run(poll())
            everything = [story.id for story in store.latest_stories(1000)]
            assert len(everything) == store.count_stories() == 27
            paged: list[str] = []
            page = store.story_page(4)
            while True:
                paged += [story.id for story in page.stories]
                if page.next_cursor is None:
                    break
                page = store.story_page(4, before=page.next_cursor)
            assert paged == everything
            # Case-insensitive search (ILIKE on PostgreSQL, LIKE on SQLite), LIKE escaped.
            clergy = store.latest_stories(100, query="CLERGY")
            assert clergy and all(
                "clergy" in f"{story.title} {story.summary}".casefold() for story in clergy
            )
            assert store.latest_stories(100, query="100%") == []
            wage_theft = store.latest_stories(100, tag="WAGE THEFT")
            assert {c.member_id for s in wage_theft for c in s.credits} == {
                "harvest",
                "dairy",
                "garment",
            }
            assert store.count_stories(tag="agriculture") == len(
                [
                    s
                    for s in store.latest_stories(1000)
                    if {"harvest", "dairy"} & {c.member_id for c in s.credits}
                ]
            )
            spanish = store.latest_stories(100, language="ES")
            assert spanish and all(story.language == "es" for story in spanish)
            assert "capacitacion" in store.tag_slugs()
            # Every published document renders from this database.
            files = site_files(config, store, now=NOW)
            assert feedparser.parse(files["tags/capacitacion/feed.atom"]).entries
            before = store.data_version()
            store.sync_config(config)
            assert store.data_version() > before
        finally:
            store.close()
