"""The offline demo's bundled sample sites, the server that serves them, and its configuration.

The sample sites (aggregator/demo/sites/) are fictional organizations. Their files carry a
"{base}" placeholder wherever a site links to itself; the demo server fills it with its own
address (http://127.0.0.1:PORT, chosen at run time), so every link in the sample feeds is
one a visitor can open. feeds.yaml also carries {published}, where the demo's own web site
is (or would be) served.

Each story the sample feeds and the news page list gets an article page, written here from
the story itself when the server starts, rather than kept as one HTML file per story: the
feed item is the article's only copy, so a story added to a sample feed has its page at
once, and a page can never disagree with its feed.

It must never serve anything but 127.0.0.1 (FixtureServer binds only there), and never
fetch: the pages come from the bundled files alone.
"""

from __future__ import annotations

from html import escape
from importlib import resources
from pathlib import Path
from urllib.parse import urljoin
from urllib.parse import urlsplit

from aggregator.config import parse_config
from aggregator.demo.server import FixtureServer
from aggregator.demo.server import Route
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.parse.pages import parse_page
from aggregator.models import Config
from aggregator.models import MemberConfig
from aggregator.models import ParsedEntry
from aggregator.models import SourceConfig
from aggregator.text import html_to_text

DEFAULT_PUBLISHED_URL = "http://127.0.0.1:8080/"


def demo_site_directory() -> Path:
    return Path(str(resources.files("aggregator.demo") / "sites"))


def demo_config_text(base_url: str, published_url: str = DEFAULT_PUBLISHED_URL) -> str:
    """feeds.yaml for the demo, with the sample sites served at `base_url`."""
    template = (demo_site_directory() / "feeds.yaml").read_text(encoding="utf-8")
    return template.replace("{base}", base_url.rstrip("/")).replace("{published}", published_url)


def sample_sites() -> FixtureServer:
    """The sample member sites on a free 127.0.0.1 port, not yet started (use `with`): their
    files with "{base}" filled in, and an article page for every story they list."""
    server = FixtureServer(demo_site_directory(), fill_base=True)
    config = parse_config(demo_config_text(server.base_url), "the demo's feeds.yaml")
    server.routes.update(story_routes(server, config))
    return server


def story_routes(server: FixtureServer, config: Config) -> dict[str, Route]:
    """An HTML article page for each story of each demo source, by its path on `server`."""
    routes: dict[str, Route] = {}
    for member in config.members:
        for source in member.sources:
            for url, entry in source_stories(server, source):
                address = urlsplit(url)
                # Only stories on the demo server itself; the path is what a browser asks for.
                if f"{address.scheme}://{address.netloc}" == server.base_url:
                    routes[address.path] = Route(
                        body=article_page(member, entry, config).encode("utf-8"),
                        headers={"Content-Type": "text/html; charset=utf-8"},
                    )
    return routes


def source_stories(server: FixtureServer, source: SourceConfig) -> list[tuple[str, ParsedEntry]]:
    """Each story of a demo source with its absolute address, read with the project's parsers."""
    route = server.file_route(urlsplit(source.url).path)
    if route is None:
        raise FileNotFoundError(f"the demo's source {source.url} has no file in demo_site/")
    content_type = route.headers.get("Content-Type")
    if source.kind == "page" and source.selectors is not None:
        parsed = parse_page(route.body, source.url, content_type, source.selectors)
    else:
        parsed = parse_feed(route.body, source.url, content_type)
    return [
        (urljoin(entry.base_url or source.url, entry.link), entry)
        for entry in parsed.entries
        if entry.link
    ]


def article_page(member: MemberConfig, entry: ParsedEntry, config: Config) -> str:
    """A member site's small article page for one story (the sample files are trusted: their
    HTML is written as it is in the feed)."""
    title_html = entry.title or "(untitled)"
    if not entry.title_is_html:
        title_html = escape(title_html)
    language = entry.language or member.language or config.network.language or "en"
    posted = entry.published or entry.updated
    meta = "Posted"
    if posted is not None:
        meta += (
            f' <time datetime="{posted.isoformat()}">'
            f"{posted:%B} {posted.day}, {posted.year}</time>"
        )
    if entry.authors:
        meta += f" by {escape(', '.join(entry.authors))}"
    body = entry.content_html or entry.summary_html or ""
    picture = ""
    if entry.image and entry.image not in body:
        picture = f'<p><img src="{escape(entry.image)}" alt=""></p>\n'
    home = urlsplit(member.url).path
    return f"""<!DOCTYPE html>
<html lang="{escape(language)}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{escape(html_to_text(title_html))} | {escape(member.name)}</title>
  <link rel="stylesheet" href="/style.css">
</head>
<body class="page-article">
  <header class="site-header">
    <a class="logo" href="{escape(home)}">{escape(member.name)}</a>
  </header>
  <main class="single">
    <article>
      <h1>{title_html}</h1>
      <p class="meta">{meta}</p>
      {picture}{body}
    </article>
    <p><a href="{escape(home)}">More from {escape(member.name)}</a></p>
  </main>
  <footer class="site-footer">
    <p>Part of the offline demo of the WSR Network aggregator. Every organization, person
    and post on this site is fictional.</p>
  </footer>
</body>
</html>
"""
