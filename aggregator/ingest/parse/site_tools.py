"""Which site tool a member's web page was made with, and where that tool puts its feeds.

Small organizations' sites run on WordPress or a hosted builder (Wix, Squarespace, Ghost,
Blogger, Drupal); each leaves marks in its pages (a generator meta tag, its asset paths)
and serves its feeds at its own addresses. Discovery uses the verdict to try the right
addresses first, and `aggregator preview` prints it with the reason, so staff know why a
feed was chosen.

Pure: reads bytes already fetched, never fetches, never raises for a page it cannot read
(no verdict is a verdict: None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from bs4 import BeautifulSoup

from aggregator.ingest.parse.pages import decode_page


@dataclass(frozen=True)
class SiteTool:
    """A verdict: the tool's name and, in plain words, the mark it was recognised by."""

    name: str
    reason: str


# (tool, what its generator meta tag starts with)
_GENERATORS = (
    ("WordPress", "wordpress"),
    ("Wix", "wix.com"),
    ("Squarespace", "squarespace"),
    ("Ghost", "ghost"),
    ("Blogger", "blogger"),
    ("Drupal", "drupal"),
)
# (tool, text found in the page, how staff would describe it), checked when no generator
# tag says; asset addresses are what these tools cannot avoid writing into every page.
_MARKS = (
    ("WordPress", "/wp-content/", "wp-content paths"),
    ("WordPress", "/wp-includes/", "wp-includes paths"),
    ("Wix", "static.wixstatic.com", "images served from static.wixstatic.com"),
    ("Wix", "static.parastorage.com", "scripts served from static.parastorage.com"),
    ("Squarespace", "static1.squarespace.com", "assets served from static1.squarespace.com"),
    ("Squarespace", "<!-- This is Squarespace. -->", "its 'This is Squarespace.' comment"),
    ("Ghost", "/ghost/api/", "the Ghost content API"),
    ("Blogger", "www.blogger.com/static", "scripts served from www.blogger.com"),
    ("Blogger", ".blogspot.com", "blogspot.com addresses"),
    ("Drupal", "drupal-settings-json", "its drupal-settings-json block"),
    ("Drupal", "/sites/default/files/", "sites/default/files paths"),
)

# Where each tool serves its posts feed, relative to the site (or section) root; the first
# entries of discover.COMMON_PATHS are tried after these.
TOOL_PATHS: dict[str, tuple[str, ...]] = {
    "WordPress": ("feed/", "?feed=rss2"),
    "Wix": ("blog-feed.xml",),
    "Squarespace": ("?format=rss",),
    "Ghost": ("rss/",),
    "Blogger": ("feeds/posts/default",),
    "Drupal": ("rss.xml", "node/feed"),
}
# Path segments naming a language section of a bilingual site (/es/, /en/, /pt-br/).
_LANGUAGE_SEGMENT = re.compile(r"[a-z]{2}(?:[-_][a-z]{2})?", re.IGNORECASE)
_LANGUAGES = frozenset(
    {"en", "es", "fr", "pt", "de", "it", "ht", "zh", "ko", "vi", "tl", "ar", "ru", "pl"}
)


def detect_site_tool(content: bytes, content_type: str | None = None) -> SiteTool | None:
    """The tool a page was made with, from its generator tag or its asset addresses."""
    text = decode_page(content, content_type)
    soup = BeautifulSoup(text, "lxml")
    for meta in soup.find_all("meta"):
        name = meta.get("name")
        value = meta.get("content")
        if not (isinstance(name, str) and name.lower() == "generator"):
            continue
        if not isinstance(value, str):
            continue
        generator = " ".join(value.split())
        for tool, prefix in _GENERATORS:
            if generator.lower().startswith(prefix):
                return SiteTool(tool, f'generator meta tag "{generator}"')
    for tool, mark, described in _MARKS:
        if mark in text:
            return SiteTool(tool, described)
    return None


def tool_locations(url: str, tool: SiteTool | None) -> list[str]:
    """The addresses where `tool` puts a feed, for the page at `url`, most specific first.

    A page inside a language section (/es/…) or a WordPress category (/category/news/…)
    has that section's own feed, tried before the site's.
    """
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    folder = parts.path if parts.path.endswith("/") else parts.path.rsplit("/", 1)[0] + "/"
    bases: list[str] = []
    if "category" in segments[:-1] and (tool is None or tool.name == "WordPress"):
        index = segments.index("category")
        bases.append("/" + "/".join(segments[: index + 2]) + "/")
    for index, segment in enumerate(segments):
        if _LANGUAGE_SEGMENT.fullmatch(segment) and segment[:2].lower() in _LANGUAGES:
            bases.append("/" + "/".join(segments[: index + 1]) + "/")
            break
    bases.append(folder)
    paths = TOOL_PATHS.get(tool.name, ()) if tool is not None else ()
    if tool is None or tool.name == "WordPress":
        # A language section or category has a feed whatever the tool; without a verdict
        # only WordPress's spelling of it is guessed.
        paths = paths or ("feed/",)
    found: list[str] = []
    for base in bases:
        for path in paths:
            address, _, query = (base + path).partition("?")
            found.append(urlunsplit((parts.scheme, parts.netloc, address, query, "")))
    if tool is None:
        # Without a verdict, only the section feeds are new; the folder's are guessed as ever.
        found = [address for address in found if not address.endswith(folder + "feed/")]
    return list(dict.fromkeys(found))

