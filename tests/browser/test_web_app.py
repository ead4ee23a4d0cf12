"""The real service in Chromium: the web app (aggregator.service.web under uvicorn) and a static
export, over a store filled by polling the offline demo's sample sites on 127.0.0.1.

The demo's stories link to their pages on the sample sites on 127.0.0.1; the tests check
that nothing outside 127.0.0.1 was asked for.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from aggregator.config import parse_config
from aggregator.demo import demo_config_text
from aggregator.demo import sample_sites
from aggregator.demo import server as demo_server
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.models import Config
from aggregator.publish.export import export_files
from aggregator.publish.site import site_files
from aggregator.service import server as server_module
from aggregator.service import web
from aggregator.store import Store
from tests.browser.conftest import Browsing
from tests.browser.helpers import NOW
from tests.browser.helpers import Site
from tests.support.server import FixtureServer


@dataclass(frozen=True)
class Service:
    config: Config
    store: Store
    sites: demo_server.FixtureServer  # the demo's member sites, still serving their images
    base: str  # where the web app listens


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    directory = tmp_path_factory.mktemp("service")
    with sample_sites() as sites:
        config_path = directory / "feeds.yaml"
        config_path.write_text(demo_config_text(sites.base_url), encoding="utf-8")
        config = parse_config(config_path.read_text(encoding="utf-8"), str(config_path))
        store = Store.open(f"sqlite:///{directory / 'aggregator.db'}")
        store.sync_config(config)

        async def poll() -> None:
            async with Fetcher() as fetcher:
                await poll_all(config, store, fetcher)

        # In its own thread: Playwright's sync API keeps an event loop running in this one.
        polling = threading.Thread(target=asyncio.run, args=(poll(),))
        polling.start()
        polling.join(timeout=60)
        server = server_module.make_server(web.create_app(config, store, clock=lambda: NOW), port=0)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield Service(config, store, sites, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            store.close()


def forget_example_hosts(browsing: Browsing) -> None:
    strays = [
        url for url in browsing.offsite if not (urlsplit(url).hostname or "").endswith(".example")
    ]
    assert strays == []
    browsing.offsite.clear()


def test_served_front_page_without_javascript(browsing: Browsing, service: Service) -> None:
    page = browsing.context(javascript=False).new_page()

    page.goto(service.base + "/")

    expected = len(service.store.latest_stories(service.config.network.items_per_feed))
    assert expected > 0
    articles = page.locator("main article")
    expect(articles).to_have_count(expected)
    expect(articles.first.locator("h3 a")).to_be_visible()
    expect(page.locator('head link[rel="alternate"]')).to_have_count(3)
    expect(page.locator("ul.members > li")).to_have_count(len(service.config.members))
    title = browsing.pixels(articles.first.locator("h3").screenshot())
    assert title.ink > 100
    forget_example_hosts(browsing)


@pytest.mark.parametrize(
    "viewport",
    [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
    ids=["desktop", "phone"],
)
def test_search_tags_and_404_without_javascript(
    browsing: Browsing, service: Service, viewport: dict[str, int]
) -> None:
    page = browsing.context(javascript=False, viewport=viewport).new_page()
    page.goto(service.base + "/")
    word = "union"
    matching = service.store.latest_stories(1000, query=word)
    assert 0 < len(matching) < len(service.store.latest_stories(1000))

    box = page.get_by_role("searchbox", name="Search the news")
    expect(box).to_be_visible()
    bounds = box.bounding_box()
    assert bounds is not None and bounds["x"] + bounds["width"] <= viewport["width"]
    box.fill(word)
    page.get_by_role("button", name="Search").click()

    page.wait_for_url("**/?q=union")
    expect(page.locator("main h2").first).to_have_text("Stories matching “union”")
    expect(page.locator("main article")).to_have_count(len(matching))
    expect(page.get_by_role("link", name="Newest stories")).to_be_visible()
    tag = page.locator("main article ul.tags a").first
    expect(tag).to_be_visible()
    assert (tag.get_attribute("href") or "").endswith("/feed.atom")
    # One picture per story at most: the thumbnail, never the same one again in the text.
    assert page.locator("main article .summary img").count() == 0

    page.goto(service.base + "/no-such-page")
    expect(page.locator("h1")).to_have_text("Page not found")
    expect(page.get_by_role("link", name="Go to the latest news")).to_be_visible()
    forget_example_hosts(browsing)


def test_served_widget_on_another_origin(browsing: Browsing, service: Service) -> None:
    member = service.config.members[0].id
    with Site() as host:
        host.html(
            "/page",
            f"""<!DOCTYPE html><html lang="en"><head><title>Host</title>
            <style>* {{ color: red !important; font-size: 40px }}</style></head><body>
            <div id="widget" data-wsr-news data-limit="2" data-member="{member}"></div>
            <script src="{service.base}/embed.js" async></script></body></html>""",
        )
        page = browsing.context().new_page()

        page.goto(host.url("/page"))

        items = page.locator("#widget li")
        expect(items).to_have_count(2)
        expected = service.store.latest_stories(2, member_id=member)
        for n, story in enumerate(expected):
            expect(items.nth(n).locator(".t")).to_have_text(story.title)
        color = items.first.locator(".t").evaluate("node => getComputedStyle(node).color")
        assert color == "rgb(6, 69, 173)"
        expect(page.locator("#widget a.more")).to_have_attribute(
            "href", service.config.network.feed_url
        )
    forget_example_hosts(browsing)


def test_exported_site_widget_reads_the_static_json(
    browsing: Browsing, service: Service, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    export_files(export, site_files(service.config, service.store, now=NOW))
    member = service.config.members[1].id
    with FixtureServer(export) as static:
        # The CMS page on the same static host: no API and no CORS involved.
        static.routes["/cms/page.html"] = Route(
            body=f"""<!DOCTYPE html><html lang="en"><head><title>Host</title></head><body>
            <div id="widget" data-wsr-news data-limit="3" data-member="{member}"></div>
            <script src="../embed.js" async></script></body></html>""".encode(),
            headers={"Content-Type": "text/html; charset=utf-8"},
        )
        page = browsing.context().new_page()

        page.goto(static.url("/cms/page.html"))

        items = page.locator("#widget li")
        expected = service.store.latest_stories(3, member_id=member)
        expect(items).to_have_count(len(expected))
        for n, story in enumerate(expected):
            expect(items.nth(n).locator(".t")).to_have_text(story.title)
        assert static.requests_for(f"/members/{member}/items.json")
        assert not static.requests_for("/api/items")

        page.goto(static.url("/index.html"))

        expect(page.locator("main article").first).to_be_visible()
    forget_example_hosts(browsing)
