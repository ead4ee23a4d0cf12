"""The front page (/) in a real headless Chromium: it works with JavaScript off, shows the
stories (asserted on screenshots), is one column on a phone, and a hostile title is text."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from aggregator.publish.html import render_index_page
from tests.browser.conftest import Browsing
from tests.browser.helpers import NOW
from tests.browser.helpers import Site
from tests.browser.helpers import members
from tests.browser.helpers import network
from tests.browser.helpers import solid_png
from tests.browser.helpers import stories

HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 800}


@pytest.fixture
def site() -> Iterator[Site]:
    """The network's site: "/" with three stories, "/empty" with none, and story images."""
    with Site() as running:
        origin = running.origin
        net = network(origin + "/")
        running.html("/", render_index_page(net, members(origin), stories(origin), now=NOW))
        running.html("/empty", render_index_page(net, members(origin), [], now=NOW))
        for n in range(3):
            running.png(f"/images/story-{n}.png", solid_png(320, 180, (40, 120, 60)))
        yield running


def open_page(browsing: Browsing, url: str, *, javascript: bool, viewport: dict[str, int]) -> Page:
    page = browsing.context(javascript=javascript, viewport=viewport).new_page()
    page.goto(url)
    return page


def test_stories_render_without_javascript(browsing: Browsing, site: Site, tmp_path: Path) -> None:
    page = open_page(browsing, site.url("/"), javascript=False, viewport=DESKTOP)

    titles = page.locator("main article h3 a")
    expect(titles).to_have_count(3)
    for n in range(3):
        expect(titles.nth(n)).to_be_visible()
        expect(titles.nth(n)).to_have_text(f"Story number {n}: farmworkers win new protections")
    expect(page.locator("main article time").first).to_have_text("24 November 2026")
    # The second story is in Spanish and keeps its own date format.
    expect(page.locator("main article").nth(1)).to_have_attribute("lang", "es")
    expect(page.locator("main article time").nth(1)).to_have_text("23 de noviembre de 2026")
    expect(page.locator("script")).to_have_count(0)
    expect(page.locator("ul.members > li")).to_have_count(2)
    expect(page.locator("section.subscribe code").first).to_have_text(site.url("/feed.atom"))

    screenshot = tmp_path / "index.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 1000
    first_title = browsing.pixels(titles.first.screenshot())
    # The title is drawn, in the link colour, not an empty box.
    assert first_title.ink > 100
    assert first_title.blue > 100
    with_stories = browsing.pixels(page.locator("main").screenshot())
    assert site.requests_to("/images/story-0.png"), "the first story's image was not loaded"

    page.goto(site.url("/empty"))
    expect(page.locator("main")).to_contain_text("No news yet.")
    without_stories = browsing.pixels(page.locator("main").screenshot())
    assert with_stories.ink > 5 * without_stories.ink


def test_feed_autodiscovery_links(browsing: Browsing, site: Site) -> None:
    page = open_page(browsing, site.url("/"), javascript=False, viewport=DESKTOP)

    alternates = page.locator('head link[rel="alternate"]')
    found = {
        alternates.nth(n).get_attribute("type"): alternates.nth(n).get_attribute("href")
        for n in range(alternates.count())
    }
    assert found == {
        "application/atom+xml": site.url("/feed.atom"),
        "application/rss+xml": site.url("/feed.rss"),
        "application/feed+json": site.url("/feed.json"),
    }


def test_one_column_on_a_phone_two_on_a_desktop(browsing: Browsing, site: Site) -> None:
    phone = open_page(browsing, site.url("/"), javascript=True, viewport=PHONE)

    main = phone.locator("main").bounding_box()
    aside = phone.locator("aside").bounding_box()
    assert main is not None
    assert aside is not None
    assert aside["y"] >= main["y"] + main["height"] - 1
    assert main["width"] > PHONE["width"] * 0.8
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    desktop = open_page(browsing, site.url("/"), javascript=True, viewport=DESKTOP)

    main = desktop.locator("main").bounding_box()
    aside = desktop.locator("aside").bounding_box()
    assert main is not None
    assert aside is not None
    assert aside["x"] >= main["x"] + main["width"]
    assert abs(aside["y"] - main["y"]) < 5


def test_skip_link_is_the_first_stop_and_visible_when_focused(
    browsing: Browsing, site: Site
) -> None:
    page = open_page(browsing, site.url("/"), javascript=False, viewport=DESKTOP)

    page.keyboard.press("Tab")

    skip = page.locator("a.skip")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["y"] >= 0
    outline = skip.evaluate("element => getComputedStyle(element).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    assert page.url.endswith("#news")


def test_hostile_title_is_shown_as_text(browsing: Browsing, site: Site) -> None:
    origin = site.origin
    hostile = [replace(stories(origin, 1)[0], title=HOSTILE_TITLE)]
    page_html = render_index_page(network(origin + "/"), members(origin), hostile, now=NOW)
    site.html("/hostile", page_html)

    # JavaScript on: had the title been markup, its handlers would run.
    page = open_page(browsing, site.url("/hostile"), javascript=True, viewport=DESKTOP)

    heading = page.locator("main article h3")
    expect(heading).to_have_text(HOSTILE_TITLE)
    expect(heading.locator("img")).to_have_count(0)
    page.wait_for_load_state("load")
    assert page.evaluate("window.__pwned") is None
    assert not site.requests_to("/x"), "the title's <img src=x> was loaded"
