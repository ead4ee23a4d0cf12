"""/status in Chromium at desktop and phone (390 px) widths: staff must read every source's
member name and problem without scrolling sideways, and get back to the news page.

The store is filled by polling a real fixture server (one healthy member) and a closed
port on 127.0.0.1 (one failing member), then served by the real web app under uvicorn.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import CONNECTION_REFUSED
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.service import server as server_module
from aggregator.service import web
from aggregator.store import Store
from tests.browser.conftest import Browsing
from tests.browser.helpers import NOW
from tests.support.server import FixtureServer

FAILING_NAME = "Centro de Trabajadores Unidos en la Lucha"
RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Dairy</title>
<link>http://127.0.0.1/</link><item><title>One story</title>
<link>http://127.0.0.1/one</link><guid>dairy-one</guid>
<pubDate>Mon, 30 Nov 2026 10:00:00 GMT</pubDate></item></channel></rss>"""
# Another member's post of the same article link: the automatic rule merges it, and /status
# must list that merge with its reason.
CROSS_POST = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Farm</title>
<link>http://127.0.0.1/</link><item><title>Dairy workers' story, shared</title>
<link>http://127.0.0.1/one</link><guid>farm-one</guid>
<pubDate>Mon, 30 Nov 2026 11:00:00 GMT</pubDate></item></channel></rss>"""


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def status_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("status")
    with FixtureServer() as sites:
        sites.routes["/feed.xml"] = Route(body=RSS)
        sites.routes["/farm.xml"] = Route(body=CROSS_POST)
        config = parse_config(
            f"""network:
  title: Test network
  url: http://127.0.0.1/
  feed_url: http://127.0.0.1/news/
members:
  - id: ctul
    name: {FAILING_NAME}
    url: http://127.0.0.1/ctul/
    sources:
      - feed: http://127.0.0.1:{closed_port()}/a-rather-long-path/to/the/members/feed/
  - id: dairy
    name: Dairy Workers
    url: http://127.0.0.1/dairy/
    sources:
      - feed: {sites.url("/feed.xml")}
  - id: farm
    name: Farmworker Alliance
    url: http://127.0.0.1/farm/
    sources:
      - feed: {sites.url("/farm.xml")}
"""
        )
        store = Store.open(f"sqlite:///{directory / 'aggregator.db'}")
        store.sync_config(config)

        async def poll() -> None:
            # Fetched at NOW, the page's clock: the merge is within /status's window.
            async with Fetcher(clock=lambda: NOW) as fetcher:
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
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            store.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_status_shows_names_and_problems_on_screen_and_links_home(
    browsing: Browsing, status_site: str, width: int
) -> None:
    context = browsing.context(javascript=False, viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(status_site + "/status")

    failing = page.locator("tbody tr", has_text=FAILING_NAME)
    expect(failing).to_have_count(1)
    problem = failing.locator("td.problem")
    expect(problem).to_contain_text(CONNECTION_REFUSED)
    expect(failing.locator("td.member")).to_contain_text(FAILING_NAME)
    for cell in (problem, failing.locator("td.member"), failing.locator("td.url")):
        expect(cell).to_be_visible()
        box = cell.bounding_box()
        assert box is not None
        # Within the screen's width: nothing pushed off to the right.
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= width + 0.5, (width, box)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width

    home = page.get_by_role("link", name="Latest news")
    expect(home).to_be_visible()
    home.click()
    page.wait_for_url(status_site + "/")
    expect(page.locator("main article").first).to_be_visible()


@pytest.mark.parametrize("width", [1280, 390])
def test_status_lists_the_latest_automatic_merge_with_its_reason(
    browsing: Browsing, status_site: str, width: int
) -> None:
    context = browsing.context(javascript=False, viewport={"width": width, "height": 800})
    page = context.new_page()
    page.goto(status_site + "/status")
    expect(page.locator("h2#merges")).to_contain_text("Cross-posts merged automatically")
    merge = page.locator("#merges + p + table tbody tr")
    expect(merge).to_have_count(1)
    expect(merge).to_contain_text("link: both link to http://127.0.0.1/one")
    expect(merge).to_contain_text("joined")
    expect(merge.locator("td.url a")).to_have_attribute("href", "http://127.0.0.1/one")
    for cell in merge.locator("td").all():
        box = cell.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= width + 0.5, (width, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
