"""A WordPress member's posts on the published page and in the widget, in a real Chromium.

The wpdebris fixture site (shortcodes, Divi and WPBakery soup, Yoast and Jetpack footers,
lazy images, emoji, "Read More" tails) is fetched and exported through the CLI, as staff
run it; the exported index.html and embed.js are then opened at desktop and phone widths.
The member's site is served on 127.0.0.1 with real images at its upload addresses, so a
thumbnail that loads is one the member really published, and a placeholder, emoji or
tracking image would either be seen in the page or be refused as an off-site request.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.browser.conftest import Browsing
from tests.browser.helpers import Response
from tests.browser.helpers import Site
from tests.browser.helpers import solid_png
from tests.site_fixtures import DEBRIS
from tests.site_fixtures import RSS
from tests.site_fixtures import SHORTCODE
from tests.site_fixtures import SITES
from tests.site_fixtures import aggregator

MEMBER_ORIGIN = "https://tomatopickers.example.org"
UPLOADS = "/wp-content/uploads/2025/03"
# Every image the member's posts show: each is served, so each can load.
REAL_IMAGES = ("march-bridge.jpg", "capitol-steps.jpg", "rally-1024x683.jpg", "shade-tent.jpg")
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 800}}
TITLES = (
    "Workers’ march reaches the state capitol & the governor listens",
    "[Statement] Heat rules now, not next summer",
    "Packing-house crews elect stewards",
    "Reunión de cuadrilleros en Immokalee",
)
CAPTION = "Marchers cross the Caloosahatchee bridge on day four."


@dataclass(frozen=True)
class Published:
    member: Site  # the member's WordPress site: its feed and its uploads
    network: Site  # the exported site: index.html, embed.js, api/items.json


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    workdir = tmp_path_factory.mktemp("wpdebris")
    with Site() as member, Site(cors=True) as network:
        # The saved feed, moved to 127.0.0.1 with everything it links and shows.
        feed = (SITES / "wpdebris" / "feed.rss").read_text(encoding="utf-8")
        member.responses["/feed/"] = Response(
            feed.replace(MEMBER_ORIGIN, member.origin).encode("utf-8"), RSS
        )
        for name in REAL_IMAGES:
            member.png(f"{UPLOADS}/{name}", solid_png(900, 600, (40, 120, 60)))
        config = workdir / "feeds.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                network:
                  title: Sample Network
                  url: {network.origin}/
                  feed_url: {network.origin}/
                  language: en
                members:
                  - id: ctp
                    name: Coalition of Tomato Pickers
                    url: {member.origin}/
                    sources:
                      - feed: {member.origin}/feed/
                """
            ),
            encoding="utf-8",
        )
        base = ["--config", str(config), "--database", f"sqlite:///{workdir / 'db.sqlite'}"]
        fetched = aggregator(*base, "fetch", cwd=workdir)
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        out = workdir / "out"
        exported = aggregator(*base, "export", str(out), cwd=workdir)
        assert exported.returncode == 0, exported.stdout + exported.stderr
        network.html("/", (out / "index.html").read_text(encoding="utf-8"))
        network.script("/embed.js", (out / "embed.js").read_text(encoding="utf-8"))
        network.responses["/api/items.json"] = Response(
            (out / "api" / "items.json").read_bytes(), "application/json; charset=utf-8"
        )
        yield Published(member, network)


def assert_clean(text: str) -> None:
    """No shortcode, plugin footer, placeholder or dead "Read more" text in what is shown."""
    assert not SHORTCODE.search(text), text
    for debris in DEBRIS:
        assert debris not in text, (debris, text)


def image_report(page: Page, selector: str) -> list[dict[str, object]]:
    report: list[dict[str, object]] = page.eval_on_selector_all(
        selector,
        """images => images.map(image => ({
            src: image.currentSrc || image.src,
            loaded: image.complete && image.naturalWidth > 0,
            right: image.getBoundingClientRect().right,
        }))""",
    )
    return report


@pytest.mark.parametrize("viewport", VIEWPORTS.values(), ids=list(VIEWPORTS))
def test_the_page_shows_clean_stories_with_their_real_images(
    browsing: Browsing, published: Published, viewport: dict[str, int]
) -> None:
    page = browsing.context(viewport=viewport).new_page()
    page.goto(published.network.url("/"))
    expect(page.locator("main article")).to_have_count(len(TITLES))
    titles = page.locator("main article h3 a")
    for n, title in enumerate(TITLES):
        expect(titles.nth(n)).to_have_text(title)
    main = page.locator("main").inner_text()
    assert_clean(main)
    assert CAPTION in main  # the caption's text is the start of the summary
    # The "Read More" links became the stories' links: no story is left without one.
    hrefs = [titles.nth(n).get_attribute("href") for n in range(len(TITLES))]
    assert all(href and href.startswith(published.member.origin + "/?p=") for href in hrefs)

    page.wait_for_load_state("load")
    for element in page.locator("main article img").all():
        element.scroll_into_view_if_needed()  # the page lazy-loads its thumbnails
    page.wait_for_function(
        "() => [...document.querySelectorAll('main article img')].every(i => i.complete)"
    )
    images = image_report(page, "main article img")
    # The march's largest real image and the Divi post's image are the two thumbnails.
    assert [image["src"] for image in images] == [
        published.member.url(f"{UPLOADS}/march-bridge.jpg"),
        published.member.url(f"{UPLOADS}/shade-tent.jpg"),
    ]
    for image in images:
        assert image["loaded"], image
        assert isinstance(image["right"], (int, float)) and image["right"] <= viewport["width"]


@pytest.mark.parametrize("viewport", VIEWPORTS.values(), ids=list(VIEWPORTS))
def test_the_widget_shows_clean_stories(
    browsing: Browsing, published: Published, viewport: dict[str, int]
) -> None:
    with Site() as host:
        host.html(
            "/page",
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width'><title>CTP</title></head>"
            "<body><h1>Coalition of Tomato Pickers</h1>"
            "<div id='widget' data-wsr-news data-limit='5'><a href='/news'>News</a></div>"
            f"<script src='{published.network.url('/embed.js')}' async></script></body></html>",
        )
        page = browsing.context(viewport=viewport).new_page()
        page.goto(host.url("/page"))
        items = page.locator("#widget li")
        expect(items).to_have_count(len(TITLES))
        for n, title in enumerate(TITLES):
            expect(items.nth(n).locator("a.t")).to_have_text(title)
        # The widget draws in a shadow root; Playwright's locators reach into it.
        shown = "\n".join(items.all_inner_texts())
        assert_clean(shown)
        assert CAPTION in shown
        assert page.locator("#widget img").count() == 0
