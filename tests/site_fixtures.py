"""The saved member sites under tests/fixtures/sites/, served on 127.0.0.1 as their CMS would.

Publishing systems serve feeds at folder-like addresses (WordPress `/feed/`, Squarespace
`?format=rss`) with feed media types, and pages at addresses without `.html` (Wix). The
fixture server serves files by name, so those addresses are added here as routes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aggregator.demo.server import Route
from tests.support.server import FixtureServer

SITES = Path(__file__).parent / "fixtures" / "sites"

RSS = "application/rss+xml; charset=UTF-8"
ATOM = "application/atom+xml; charset=utf-8"
JSON_FEED = "application/feed+json"

# address -> (file under SITES, Content-Type)
CMS_ADDRESSES = {
    "/wordpress/feed/": ("wordpress/feed.rss", RSS),
    "/wordpress/comments/feed/": ("wordpress/comments-feed.rss", RSS),
    "/squarespace/blog?format=rss": ("squarespace/blog-format-rss.xml", "application/rss+xml"),
    "/drupal/rss.xml": ("drupal/rss.xml", RSS),
    "/jsonld/atom.xml": ("jsonld/atom.xml", ATOM),
    "/jsonld/feed.json": ("jsonld/feed.json", JSON_FEED),
    # The site tools (aggregator.ingest.parse.site_tools), each at its own feed address.
    "/wpdebris/?feed=rss2": ("wpdebris/feed.rss", RSS),
    "/wixblog/blog-feed.xml": ("wixblog/blog-feed.xml", "application/xml; charset=utf-8"),
    "/ghost/rss/": ("ghost/rss.xml", "application/rss+xml; charset=utf-8"),
    "/blogger/feeds/posts/default": ("blogger/feeds/posts/default", ATOM),
    "/drupal7/node/feed": ("drupal7/node-feed.rss", RSS),
    "/bilingual/es/feed/": ("bilingual/es-feed.rss", RSS),
    "/bilingual/en/feed/": ("bilingual/en-feed.rss", RSS),
}


def add_cms_routes(server: FixtureServer) -> None:
    for path, (name, content_type) in CMS_ADDRESSES.items():
        server.routes[path] = Route(
            body=(SITES / name).read_bytes(), headers={"Content-Type": content_type}
        )
    for page in SITES.glob("wix/post/*.html"):
        path = "/" + page.relative_to(SITES).with_suffix("").as_posix()
        server.routes[path] = Route(
            body=page.read_bytes(), headers={"Content-Type": "text/html; charset=utf-8"}
        )


@contextmanager
def serve_sites() -> Iterator[FixtureServer]:
    with FixtureServer(SITES) as server:
        add_cms_routes(server)
        yield server


# What the site tools leave in feeds (aggregator/ingest/site_debris.py): none of it may
# reach a published feed, page or widget.
SHORTCODE = re.compile(r"\[/?(?:caption|embed|video|audio|gallery|contact-form-7|et_pb_|vc_)")
DEBRIS = (
    "appeared first on",
    "This entry was posted in",
    "Share this:",
    "Like this:",
    "Loading...",
    "Related",
    "All rights reserved",
    "data:image",
    "placeholder.gif",
    "s.w.org",
    "[…]",
    "[&#8230;]",
    "Read More",
    "Continue reading",
    "Seguir leyendo",
    "Leer más",
)


def aggregator(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`aggregator ARGS` in a subprocess, as staff run it."""
    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
