"""The published site: which paths exist and the bytes of each, for the server and the export.

This is the one place that maps a path ("feed.atom", "members/ciw/feed.rss",
"tags/dairy/archive/2.atom", "api/items.json", …) to the stories it shows and the renderer
that writes it. The web app (aggregator.service.web) answers GET /<path> with render_document, and
`aggregator export DIR` writes render_document for every path of site_paths, so the
server and a static copy can never disagree (except embed.js, whose data address differs:
the live API on the server, the static api/items.json in an export, and the front page,
whose search form and "Older stories" link only the server can answer).

Feed history follows RFC 5005 archived feeds, which work on a static host: stories are
cut, in the order they were first stored, into archive documents of network.items_per_feed
stories; only full ones are published, so an archive never changes once a reader has it.
Each subscription feed (Atom) links its newest archive with rel="prev-archive".

This module reads the store through its query methods and never writes to it; it never
reads the clock (`now` is passed in), the network or files.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import quote

from aggregator.errors import AggregatorError
from aggregator.models import Config
from aggregator.models import NetworkConfig
from aggregator.models import PublishedStory
from aggregator.models import StoryCursor
from aggregator.publish import api
from aggregator.publish import html
from aggregator.publish.embed import EMBED_SCRIPT_PATH
from aggregator.publish.embed import embed_script
from aggregator.publish.jsonfeed import render_json_feed
from aggregator.publish.opml import MEMBERS_OPML_PATH
from aggregator.publish.opml import OPML_PATH
from aggregator.publish.opml import members_opml
from aggregator.publish.opml import published_opml
from aggregator.publish.syndication import feed_self_url
from aggregator.publish.syndication import feed_updated
from aggregator.publish.syndication import render_atom
from aggregator.publish.syndication import render_rss
from aggregator.store import Store
from aggregator.text import tag_slug

FeedFormat = Literal["atom", "rss", "json"]
FEED_FORMATS: tuple[FeedFormat, ...] = ("atom", "rss", "json")

MEDIA_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
    "items": "application/json; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
}

INDEX_PATH = "index.html"
EMBED_PATH = "embed.html"
EMBED_HELP_PATH = "embed-help.html"
ITEMS_PATH = "api/items.json"
LIVE_API_PATH = "api/items"
EMBED_STORIES = 5

_FEED = re.compile(r"^(?:(?P<kind>members|tags)/(?P<name>[^/]+)/)?feed\.(?P<format>atom|rss|json)$")
_ARCHIVE = re.compile(
    r"^(?:(?P<kind>members|tags)/(?P<name>[^/]+)/)?archive/(?P<page>[1-9]\d{0,8})\.atom$"
)
_MEMBER_ITEMS = re.compile(r"^members/(?P<name>[^/]+)/items\.json$")


class NotPublishedError(AggregatorError):
    """A path that is not part of the published site (an HTTP 404)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"nothing is published at {path!r}")


@dataclass(frozen=True)
class Document:
    """One published file: its bytes, its Content-Type, and when its content last changed."""

    path: str
    media_type: str
    body: bytes
    last_modified: datetime | None = None


@dataclass(frozen=True)
class FeedScope:
    """Which stories a feed shows: all, one member's, or one tag's (a tag_slug)."""

    member_id: str | None = None
    tag: str | None = None

    @property
    def prefix(self) -> str:
        if self.member_id is not None:
            return f"members/{self.member_id}/"
        if self.tag is not None:
            return f"tags/{self.tag}/"
        return ""


def site_paths(
    config: Config, store: Store, tag_slugs: Collection[str] | None = None
) -> list[str]:
    """Every path of the published site that needs no query, in a stable order."""
    paths = [
        INDEX_PATH,
        EMBED_PATH,
        EMBED_HELP_PATH,
        EMBED_SCRIPT_PATH,
        MEMBERS_OPML_PATH,
        OPML_PATH,
        ITEMS_PATH,
    ]
    scopes = [FeedScope()]
    scopes += [FeedScope(member_id=member.id) for member in config.members]
    tags = tag_slugs if tag_slugs is not None else store.tag_slugs()
    scopes += [FeedScope(tag=tag) for tag in tags]
    per_page = config.network.items_per_feed
    for scope in scopes:
        paths += [f"{scope.prefix}feed.{extension}" for extension in FEED_FORMATS]
        archives = _archive_count(store, scope, per_page)
        paths += [f"{scope.prefix}archive/{page}.atom" for page in range(1, archives + 1)]
        if scope.member_id is not None:
            paths.append(f"{scope.prefix}items.json")
    return paths


def render_document(
    path: str,
    config: Config,
    store: Store,
    *,
    now: datetime,
    static: bool = False,
    language: str | None = None,
    tag_slugs: Collection[str] | None = None,
) -> Document:
    """The document published at `path` (relative, no leading "/"); NotPublishedError if none.

    `static` is set by the exporter: only embed.js depends on it. `language` (a validated
    language tag) narrows a subscription feed to stories in that language, for
    `/feed.atom?lang=es`; it is never part of an exported path. `tag_slugs` is
    store.tag_slugs() when the caller has it already (the exporter reads it once, not once
    per tag: per tag, that made an export quadratic in the number of tags).
    """
    network = config.network
    if match := _FEED.match(path):
        scope = _scope(path, config, store, match.group("kind"), match.group("name"), tag_slugs)
        return _feed(path, config, store, scope, match.group("format"), language)
    if match := _ARCHIVE.match(path):
        scope = _scope(path, config, store, match.group("kind"), match.group("name"), tag_slugs)
        return _archive(path, config, store, scope, int(match.group("page")))
    if match := _MEMBER_ITEMS.match(path):
        scope = _scope(path, config, store, "members", match.group("name"), tag_slugs)
        stories = store.latest_stories(network.items_per_feed, member_id=scope.member_id)
        return _items(path, stories)
    if path == ITEMS_PATH:
        return _items(path, store.latest_stories(network.items_per_feed))
    if path == INDEX_PATH:
        return render_index(config, store, now=now, static=static)
    if path == EMBED_HELP_PATH:
        return Document(path, MEDIA_TYPES["html"], html.render_embed_help(network).encode())
    if path == EMBED_PATH:
        stories = store.latest_stories(EMBED_STORIES)
        fragment = html.render_embed_fragment(network, stories, limit=EMBED_STORIES)
        return Document(path, MEDIA_TYPES["html"], fragment.encode(), _last_modified(stories))
    if path == EMBED_SCRIPT_PATH:
        # Relative to the script's own address, so a copied export works wherever it is.
        script = embed_script(ITEMS_PATH if static else LIVE_API_PATH, network.feed_url)
        return Document(path, MEDIA_TYPES["js"], script.encode())
    if path == MEMBERS_OPML_PATH:
        return Document(path, MEDIA_TYPES["opml"], members_opml(network, config.members))
    if path == OPML_PATH:
        body = published_opml(network, config.members, store.tag_slugs())
        return Document(path, MEDIA_TYPES["opml"], body)
    raise NotPublishedError(path)


def render_index(
    config: Config,
    store: Store,
    *,
    now: datetime,
    static: bool = False,
    query: str | None = None,
    before: StoryCursor | None = None,
) -> Document:
    """The front page: the latest stories, or those matching `query`, from `before` on.

    The live page (not `static`) has a search form and an "Older stories" link, both plain
    GET requests the server answers here, so neither needs JavaScript; a static export has
    neither, since a static host cannot answer ?q= or ?before=.
    """
    network = config.network
    page = store.story_page(network.items_per_feed, query=query, before=before)
    older = None if static or page.next_cursor is None else api.encode_cursor(page.next_cursor)
    body = html.render_index_page(
        network,
        config.members,
        page.stories,
        now=now,
        search=not static,
        query=query or "",
        older=older,
        paged=before is not None,
    )
    return Document(INDEX_PATH, MEDIA_TYPES["html"], body.encode(), _last_modified(page.stories))


def _scope(
    path: str,
    config: Config,
    store: Store,
    kind: str | None,
    name: str | None,
    tag_slugs: Collection[str] | None = None,
) -> FeedScope:
    if kind is None or name is None:
        return FeedScope()
    if kind == "members":
        if name not in {member.id for member in config.members}:
            raise NotPublishedError(path)
        return FeedScope(member_id=name)
    # Only slugs in use are published: any other name would be an empty feed, and the web
    # server must not render (and cache) one for every name a crawler makes up.
    in_use = tag_slugs if tag_slugs is not None else store.tag_slugs()
    if name != tag_slug(name) or name not in in_use:
        raise NotPublishedError(path)
    return FeedScope(tag=name)


def _title(config: Config, scope: FeedScope) -> str | None:
    if scope.member_id is not None:
        return f"{config.network.title}: {config.member(scope.member_id).name}"
    if scope.tag is not None:
        return f"{config.network.title}: {scope.tag}"
    return None


def _feed(
    path: str,
    config: Config,
    store: Store,
    scope: FeedScope,
    extension: str,
    language: str | None,
) -> Document:
    network = config.network
    per_page = network.items_per_feed
    stories = store.latest_stories(
        per_page, member_id=scope.member_id, tag=scope.tag, language=language
    )
    feed_path = quote(path if language is None else f"{path}?lang={language}", safe="/?=&")
    title = _title(config, scope)
    # The WebSub hub is pinged for the subscription feeds only (aggregator.service.websub), so a
    # `?lang=` variant, which it never hears about, does not advertise it.
    hub = network.websub_hub if language is None else None
    if extension == "rss":
        body = render_rss(network, stories, feed_path=feed_path, title=title, hub=hub)
    elif extension == "json":
        body = render_json_feed(network, stories, feed_path=feed_path, title=title, hub=hub)
    else:
        links: list[tuple[str, str]] = []
        archives = 0 if language is not None else _archive_count(store, scope, per_page)
        if archives:
            archive_path = f"{scope.prefix}archive/{archives}.atom"
            links.append(("prev-archive", _url(network, archive_path)))
        body = render_atom(network, stories, feed_path=feed_path, title=title, links=links, hub=hub)
    return Document(path, MEDIA_TYPES[extension], body, _last_modified(stories))


def _archive(path: str, config: Config, store: Store, scope: FeedScope, page: int) -> Document:
    network = config.network
    per_page = network.items_per_feed
    archives = _archive_count(store, scope, per_page)
    if page > archives:
        raise NotPublishedError(path)
    stored = store.story_page(
        per_page,
        member_id=scope.member_id,
        tag=scope.tag,
        offset=(page - 1) * per_page,
        stored_order=True,
    ).stories
    # Newest first inside the document, like every other feed; the page's membership is
    # what stays fixed, not the order stories are listed in.
    stories = sorted(stored, key=lambda story: story.published, reverse=True)
    current = f"{scope.prefix}feed.atom"
    links = [("current", _url(network, current))]
    if page > 1:
        links.append(("prev-archive", _url(network, f"{scope.prefix}archive/{page - 1}.atom")))
    if page < archives:
        links.append(("next-archive", _url(network, f"{scope.prefix}archive/{page + 1}.atom")))
    body = render_atom(
        network,
        stories,
        feed_path=quote(path, safe="/"),
        title=_title(config, scope),
        links=links,
        archive=True,
        feed_id=_url(network, current),
    )
    return Document(path, MEDIA_TYPES["atom"], body, _last_modified(stories))


def _items(path: str, stories: Sequence[PublishedStory]) -> Document:
    # A static host cannot answer `?before=`, so the static documents end without a cursor.
    body = api.items_document(stories, None)
    return Document(path, MEDIA_TYPES["items"], body, _last_modified(stories))


def _archive_count(store: Store, scope: FeedScope, per_page: int) -> int:
    """How many full archive documents the scope has (a partial one is not published)."""
    return store.count_stories(member_id=scope.member_id, tag=scope.tag) // per_page


def _url(network: NetworkConfig, path: str) -> str:
    """The address of `path`: a tag slug may hold non-ASCII letters, which URLs escape."""
    return feed_self_url(network, quote(path, safe="/?=&"))


def _last_modified(stories: Sequence[PublishedStory]) -> datetime | None:
    return feed_updated(stories, None) if stories else None


def site_files(
    config: Config, store: Store, *, now: datetime, static: bool = True
) -> dict[str, bytes]:
    """Every query-less path's bytes, for `aggregator export DIR`."""
    slugs = store.tag_slugs()  # sorted, for a stable order of paths
    tags = frozenset(slugs)
    return {
        path: render_document(path, config, store, now=now, static=static, tag_slugs=tags).body
        for path in site_paths(config, store, slugs)
    }
