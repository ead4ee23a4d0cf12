"""Fixtures for the real-browser tests: headless Chromium driven by Playwright.

The browser is the system's Chromium (Debian package `chromium`), never one downloaded by
`playwright install`. Every page is loaded from servers on 127.0.0.1, and each browser
context refuses any request elsewhere, so a test can never reach the Internet; requests
that were refused are kept in `offsite` for tests to assert on.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import Route
from playwright.sync_api import sync_playwright

from tests.browser.helpers import CHROMIUM_ARGS
from tests.browser.helpers import NO_CHROMIUM
from tests.browser.helpers import find_chromium

# Counts, in a screenshot, the pixels far from a background colour, and the clearly red or
# lime ones (the colours the hostile host page's CSS forces on everything it reaches).
_COUNT_PIXELS = """
async ([source, background]) => {
  const image = new Image();
  image.src = source;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0, red = 0, lime = 0, blue = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    const distance = Math.abs(r - background[0]) + Math.abs(g - background[1])
      + Math.abs(b - background[2]);
    if (distance > 96) ink++;
    if (r > 180 && g < 90 && b < 90) red++;
    if (g > 180 && r < 90 && b < 90) lime++;
    if (b > 120 && b > r + 60 && b > g + 30) blue++;
  }
  return {ink, red, lime, blue, total: data.length / 4};
}
"""


@dataclass(frozen=True)
class Pixels:
    ink: int
    red: int
    lime: int
    blue: int  # link colour
    total: int


@dataclass
class Browsing:
    """Opens browser contexts that can only reach 127.0.0.1, and reads screenshots."""

    browser: Browser
    offsite: list[str] = field(default_factory=list)
    _contexts: list[BrowserContext] = field(default_factory=list)

    def context(self, *, javascript: bool = True, **options: Any) -> BrowserContext:
        context = self.browser.new_context(java_script_enabled=javascript, **options)
        context.route("**/*", self._local_only)
        self._contexts.append(context)
        return context

    def pixels(self, png: bytes, background: tuple[int, int, int] = (255, 255, 255)) -> Pixels:
        """Colour counts of a PNG screenshot, read back through a canvas in the browser."""
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
        page = self.browser.new_page()
        try:
            source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            counts = page.evaluate(_COUNT_PIXELS, [source, list(background)])
        finally:
            page.close()
        return Pixels(**counts)

    def close(self) -> None:
        for context in self._contexts:
            context.close()

    def _local_only(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.offsite.append(route.request.url)
            route.abort("blockedbyclient")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        pytest.skip(NO_CHROMIUM)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def browsing(browser: Browser) -> Iterator[Browsing]:
    opened = Browsing(browser)
    yield opened
    opened.close()
    assert opened.offsite == [], "a page tried to reach beyond 127.0.0.1"
