"""/embed.js and /embed in a real headless Chromium, inside host pages on another origin.

The host page is served from one port and the API (with embed.js) from another, so every
widget fetch is cross-origin, as on the network's real CMS. The host page's own CSS is
hostile: it forces red, 40px text and lime borders on everything and hides every div but
the widget's, which is how careless CMS themes look to a widget.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from aggregator.publish.embed import embed_script
from aggregator.publish.html import render_embed_fragment
from tests.browser.conftest import Browsing
from tests.browser.helpers import Site
from tests.browser.helpers import api_item
from tests.browser.helpers import closed_port
from tests.browser.helpers import network
from tests.browser.helpers import stories

FALLBACK_TEXT = "News from the WSR Network"
HOSTILE_CSS = """
* { color: red !important; font-size: 40px; font-family: serif; text-transform: uppercase;
    letter-spacing: 4px; text-shadow: 3px 3px 0 red; text-align: center; }
div { display: none; }
div[data-wsr-news] { display: block; }
ul, li { list-style: square; margin: 30px; border: 5px solid lime; }
a { text-decoration: none; }
"""
# The host page's own elements, and the style properties that a leak would change.
HOST_ELEMENTS = ["body", "#host-title", "#host-text", "#host-list li", "#host-link", "#host-hidden"]
HOST_PROPERTIES = [
    "color",
    "font-size",
    "font-family",
    "display",
    "list-style-type",
    "margin-top",
    "border-bottom-color",
    "border-bottom-width",
    "text-decoration-line",
    "outline-style",
]
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1">Title'
HOSTILE_SUMMARY = "<script>window.__pwned=2</script>"


def host_page(script_src: str | None, widgets: str, extra: str = "") -> str:
    script = f'<script src="{script_src}" async></script>' if script_src else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Host CMS</title>
<style>{HOSTILE_CSS}</style></head>
<body>
<h1 id="host-title">A member organisation's site</h1>
<p id="host-text">The host page's own text.</p>
<ul id="host-list"><li><a id="host-link" href="/elsewhere">A host link</a></li></ul>
<div id="host-hidden">Hidden by the host's own CSS</div>
{widgets}
{extra}
{script}
</body></html>
"""


def widget(attributes: str, element_id: str = "widget") -> str:
    return (
        f'<div id="{element_id}" data-wsr-news {attributes}>'
        '<a href="/news">News (shown until the widget renders)</a></div>'
    )


@pytest.fixture
def host() -> Iterator[Site]:
    """The host site: the CMS page that embeds the widget."""
    with Site() as running:
        yield running


@pytest.fixture
def api() -> Iterator[Site]:
    """The network's service on another port: /embed.js, /api/items (CORS), /embed."""
    with Site(cors=True) as running:
        origin = running.origin
        running.script("/embed.js", embed_script(origin + "/api/items", origin + "/"))
        running.json("/api/items", {"items": [api_item(n, origin) for n in range(3)]})
        fragment = render_embed_fragment(network(origin + "/"), stories(origin, 6), limit=4)
        running.html("/embed", fragment)
        yield running


def load(browsing: Browsing, url: str) -> Page:
    page = browsing.context(viewport={"width": 1000, "height": 1400}).new_page()
    page.goto(url)
    return page


def host_styles(page: Page) -> dict[str, dict[str, str]]:
    styles: dict[str, dict[str, str]] = page.evaluate(
        """([selectors, properties]) => Object.fromEntries(selectors.map((selector) => {
            const style = getComputedStyle(document.querySelector(selector));
            return [selector, Object.fromEntries(
                properties.map((name) => [name, style.getPropertyValue(name)]))];
        }))""",
        [HOST_ELEMENTS, HOST_PROPERTIES],
    )
    return styles


def shadow(page: Page, script: str, element_id: str = "widget") -> Any:
    """Evaluate `script` (a function of the shadow root) in the widget's shadow root."""
    return page.evaluate(
        f"""(id) => {{
            const root = document.getElementById(id).shadowRoot;
            return root ? ({script})(root) : "no shadow root";
        }}""",
        element_id,
    )


def test_widget_shows_items_in_a_hostile_host_page(
    browsing: Browsing, host: Site, api: Site, tmp_path: Path
) -> None:
    host.html("/page", host_page(api.url("/embed.js"), widget('data-limit="3" data-member="ciw"')))
    host.html("/control", host_page(None, widget('data-limit="3" data-member="ciw"')))

    page = load(browsing, host.url("/page"))

    items = page.locator("#widget li")  # Playwright's CSS goes through open shadow roots
    expect(items).to_have_count(3)
    assert shadow(page, "root => root.querySelectorAll('li').length") == 3
    expect(items.first.locator("a.t")).to_have_text("Widget story 0")
    expect(items.first.locator("a.t")).to_have_attribute("href", api.url("/ciw/story-0/"))
    expect(items.first.locator(".m")).to_have_text("CIW · November 24, 2026")
    expect(items.first.locator(".s")).to_have_text("Summary 0")
    container = page.locator("#widget").bounding_box()
    assert container is not None
    for n in range(3):
        box = items.nth(n).bounding_box()
        assert box is not None
        assert box["width"] > 100
        assert box["height"] > 20
        assert container["y"] <= box["y"] <= container["y"] + container["height"]

    # The host's CSS did not restyle the widget's items...
    item_style = shadow(
        page,
        """root => {
            const li = getComputedStyle(root.querySelector("li"));
            const title = getComputedStyle(root.querySelector(".t"));
            return [title.color, title.fontSize, title.fontFamily, title.textTransform,
                    title.letterSpacing, title.textShadow, li.listStyleType, li.marginTop,
                    li.borderBottomColor, li.display];
        }""",
    )
    assert item_style[0] == "rgb(6, 69, 173)"
    assert item_style[1] == "16px"
    assert "serif" not in item_style[2].replace("sans-serif", "")
    # Inherited properties cross a shadow boundary; the widget resets them (all: initial).
    assert item_style[3:6] == ["none", "normal", "none"]
    assert item_style[6:] == ["none", "0px", "rgb(214, 214, 214)", "block"]
    screenshot = tmp_path / "widget.png"
    page.locator("#widget").screenshot(path=screenshot)
    drawn = browsing.pixels(screenshot.read_bytes())
    assert drawn.ink > 1000
    assert drawn.blue > 300  # the titles, in the widget's link colour
    assert drawn.red == 0
    assert drawn.lime == 0
    page.screenshot(path=tmp_path / "host.png", full_page=True)

    # ...and the widget's CSS did not restyle the host page.
    control = load(browsing, host.url("/control"))
    assert host_styles(page) == host_styles(control)
    assert host_styles(page)["#host-text"]["color"] == "rgb(255, 0, 0)"

    # A real cross-origin request, with the widget's attributes as query parameters.
    [request] = api.requests_to("/api/items")
    assert request.headers.get("origin") == host.origin
    assert "limit=3" in request.target
    assert "member=ciw" in request.target


def test_hostile_item_content_stays_text(browsing: Browsing, host: Site, api: Site) -> None:
    origin = api.origin
    hostile = api_item(
        0,
        origin,
        title=HOSTILE_TITLE,
        summary=HOSTILE_SUMMARY,
        summary_text=HOSTILE_SUMMARY,
        url="javascript:window.__pwned=3",
        members=[{"id": "ciw", "name": "<b onclick=x>CIW</b>", "url": "javascript:1"}],
    )
    api.json("/api/items", {"items": [hostile, api_item(1, origin, url="data:text/html,x")]})
    host.html("/page", host_page(api.url("/embed.js"), widget("")))

    page = load(browsing, host.url("/page"))

    items = page.locator("#widget li")
    expect(items).to_have_count(2)
    title = items.first.locator(".t")
    expect(title).to_have_text(HOSTILE_TITLE)
    expect(items.first.locator(".s")).to_have_text(HOSTILE_SUMMARY)
    expect(items.first.locator(".m")).to_contain_text("<b onclick=x>CIW</b>")
    # Not http(s): the titles are plain text, not links.
    assert shadow(page, "root => root.querySelectorAll('li a').length") == 0
    assert shadow(page, "root => root.querySelectorAll('img, script, b').length") == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert not host.requests_to("/x")
    assert not api.requests_to("/x")


def test_unreachable_api_shows_the_fallback_link(browsing: Browsing, host: Site, api: Site) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/api/items"
    api.script("/embed.js", embed_script(dead, api.url("/")))
    host.html("/page", host_page(api.url("/embed.js"), widget('data-limit="3"')))

    page = load(browsing, host.url("/page"))

    fallback = page.locator("#widget a.fallback")
    expect(fallback).to_have_text(FALLBACK_TEXT)
    expect(fallback).to_have_attribute("href", api.url("/"))
    expect(fallback).to_be_visible()
    assert shadow(page, "root => root.querySelectorAll('li').length") == 0


def test_slow_api_times_out_to_the_fallback_link(browsing: Browsing, host: Site, api: Site) -> None:
    api.json("/api/items", {"items": [api_item(0, api.origin)]}, delay=12)
    host.html("/page", host_page(api.url("/embed.js"), widget("")))
    started = time.monotonic()

    page = load(browsing, host.url("/page"))

    # The API answers after 12 s: the fallback must come before that, from the widget's own
    # 5 s timer (never earlier than it). No upper bound on a busy machine's clock.
    expect(page.locator("#widget a.fallback")).to_have_text(FALLBACK_TEXT, timeout=11_000)
    waited = time.monotonic() - started
    assert waited >= 4.5, f"fell back after {waited:.1f} s, before the widget's 5 s timer"
    assert shadow(page, "root => root.querySelectorAll('li').length") == 0


def test_api_without_cors_is_refused_by_the_browser(browsing: Browsing, host: Site) -> None:
    # Proves the widget's fetch really is cross-origin: without the API's CORS header the
    # browser withholds the answer, although the request reached the server.
    with Site(cors=False) as closed_api:
        origin = closed_api.origin
        closed_api.script("/embed.js", embed_script(origin + "/api/items", origin + "/"))
        closed_api.json("/api/items", {"items": [api_item(0, origin)]})
        host.html("/page", host_page(closed_api.url("/embed.js"), widget("")))

        page = load(browsing, host.url("/page"))

        expect(page.locator("#widget a.fallback")).to_have_text(FALLBACK_TEXT)
        assert closed_api.requests_to("/api/items")


def test_static_export_json_and_data_source(browsing: Browsing, host: Site) -> None:
    with Site(cors=True) as static:
        origin = static.origin
        everything = [
            api_item(0, origin, member="ciw", language="en", title="CIW English"),
            api_item(
                1, origin, member="ffp", language="es", title="FFP uno", tags=("Salarios Justos",)
            ),
            api_item(2, origin, member="ciw", language="es-MX", title="CIW español"),
            api_item(3, origin, member="ffp", language="es", title="FFP dos"),
            api_item(4, origin, member="ffp", language="en", title="FFP three"),
        ]
        # Exported relative to itself, as `aggregator export` writes it.
        static.script("/export/embed.js", embed_script("api/items.json", "index.html"))
        static.json("/export/api/items.json", {"items": everything, "next": None})
        ffp = [item for item in everything if item["members"][0]["id"] == "ffp"]
        static.json("/export/members/ffp/items.json", {"items": ffp, "next": None})
        static.json("/elsewhere/picked.json", {"items": [api_item(9, origin, title="Picked")]})
        widgets = "\n".join(
            [
                widget('data-member="ffp" data-limit="2"', "by-member"),
                widget('data-lang="es" data-limit="5"', "by-language"),
                widget('data-tag="salarios-justos"', "by-tag"),
                widget(f'data-source="{static.url("/elsewhere/picked.json")}"', "by-source"),
            ]
        )
        host.html("/page", host_page(static.url("/export/embed.js"), widgets))

        page = load(browsing, host.url("/page"))

        def titles(element_id: str) -> list[str]:
            texts: list[str] = shadow(
                page,
                "root => [...root.querySelectorAll('.t')].map((node) => node.textContent)",
                element_id,
            )
            return texts

        expect(page.locator("#by-source li")).to_have_count(1)
        expect(page.locator("#by-member li")).to_have_count(2)
        expect(page.locator("#by-language li")).to_have_count(3)
        expect(page.locator("#by-tag li")).to_have_count(1)
        assert titles("by-member") == ["FFP uno", "FFP dos"]
        assert titles("by-language") == ["FFP uno", "CIW español", "FFP dos"]
        assert titles("by-tag") == ["FFP uno"]
        assert titles("by-source") == ["Picked"]
        expect(page.locator("#by-language .m").first).to_have_text("FFP · 23 de noviembre de 2026")
        expect(page.locator("#by-member a.more")).to_have_attribute(
            "href", static.url("/export/index.html")
        )
        assert static.requests_to("/export/members/ffp/items.json")
        assert all("?" not in seen.target for seen in static.seen)


def test_widget_renders_once_when_the_script_is_included_twice(
    browsing: Browsing, host: Site, api: Site
) -> None:
    script = api.url("/embed.js")
    host.html(
        "/page",
        host_page(script, widget('data-limit="2"'), extra=f'<script src="{script}"></script>'),
    )

    page = load(browsing, host.url("/page"))

    expect(page.locator("#widget li")).to_have_count(2)
    page.wait_for_timeout(300)
    assert len(api.requests_to("/api/items")) == 1
    expect(page.locator("#widget li")).to_have_count(2)


def test_iframe_fragment(browsing: Browsing, host: Site, api: Site, tmp_path: Path) -> None:
    iframe = (
        f'<iframe src="{api.url("/embed")}" title="WSR Network news" width="600" height="500"'
        ' style="display:block;border:0"></iframe>'
    )
    host.html("/page", host_page(None, "", extra=iframe))

    page = load(browsing, host.url("/page"))

    frame = page.frame_locator("iframe")
    titles = frame.locator("li a.t")
    expect(titles).to_have_count(4)
    expect(titles.first).to_have_text("Story number 0: farmworkers win new protections")
    for n in range(4):
        expect(titles.nth(n)).to_have_attribute("target", "_blank")
        expect(titles.nth(n)).to_have_attribute("rel", "noopener")
    assert frame.locator("script").count() == 0
    shot = page.locator("iframe").screenshot(path=tmp_path / "iframe.png")
    drawn = browsing.pixels(shot)
    assert drawn.blue > 300
    assert drawn.red == 0
