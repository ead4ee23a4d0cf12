"""The ASGI web app (Starlette, served by uvicorn): routes only, calling publish/ and store/.

Every published document (feeds, archives, OPML, the HTML page, the embed script, the
static JSON) comes from aggregator.publish.site, the same code the static export uses, so
GET /<path> and the exported file at <path> carry the same bytes. Answers carry a strong
ETag (a hash of the body), Last-Modified (the newest story's update), Cache-Control and
`Access-Control-Allow-Origin: *`, and conditional requests get 304.

Rendered documents are cached in memory, keyed by path, the Config object in force and
the store's data_version (bumped by every write that changes what is published); the
version is read at most once a second, so a burst of requests costs one small query.
A GET or HEAD of a published path (no query) whose rendering is cached and current is
answered at the front of the app (WebApp.__call__), before Starlette's middleware and
router, with the headers the route built for that rendering, byte for byte (when the
version is due, one read of it runs in a thread: SQL never runs on the event loop);
everything else goes through the router. One document is rendered once at a time. The
cache is bounded by the bytes it holds (CACHE_BYTES), not by a count of entries, and
answers whose key a visitor can vary without end (`before`, `q`, `full=1`) are never
cached: anonymous requests varying a cursor once grew the server to a gigabyte.

Starlette rather than FastAPI: the app is a dozen GET routes whose answers are documents
rendered elsewhere, so FastAPI's request models and dependency injection would carry no
weight; Starlette's SchemaGenerator gives the OpenAPI document from the docstrings.

The HTTP server itself (its bounds, uvloop, the listening socket) is aggregator.service.server.

This module must never write to the database, poll sources or render a document itself;
it never binds a socket (aggregator.service.server does).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from email.utils import format_datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from typing import cast

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.responses import PlainTextResponse
from starlette.responses import Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

from aggregator import __version__
from aggregator.clock import Clock
from aggregator.clock import utc_now
from aggregator.config import load_config
from aggregator.errors import StorageError
from aggregator.models import Config
from aggregator.publish import api
from aggregator.publish import html as html_pages
from aggregator.publish import site
from aggregator.service.status import recent_merges
from aggregator.service.status import render_status_html
from aggregator.service.status import render_status_json
from aggregator.service.status import status_rows
from aggregator.store import Store

CACHE_CONTROL = "public, max-age=300"
VERSION_CHECK_SECONDS = 1.0  # how stale the render cache may be after a write
# The render cache's size: the bodies it holds, in bytes (the least recently used go first).
CACHE_BYTES = 32 * 1024 * 1024
# Request paths the front answers from the cache; the published paths are far fewer, so
# reaching this means something varies them (the map is then started afresh).
MAX_FAST_PATHS = 10_000
RENDER_LOCKS = 64  # documents that may be rendered at the same time, at most

RawHeaders = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class Rendered:
    """A document ready to send, with its validators, and what it was rendered from."""

    document: site.Document
    etag: str
    config: Config
    version: tuple[int, int]


@dataclass(frozen=True)
class Prepared:
    """A cached rendering's two answers as the route sends them (the front's copy):
    the 200's and the 304's header lines, which `_conditional` built."""

    rendered: Rendered
    key: Hashable  # its key in the render cache
    ok_headers: RawHeaders
    not_modified_headers: RawHeaders


@dataclass
class WebState:
    """What the routes share: replace `config` to switch configuration without a restart."""

    config: Config
    store: Store
    clock: Clock
    cache: OrderedDict[Hashable, Rendered] = field(default_factory=OrderedDict)
    cache_bytes: int = 0  # the bodies held in `cache`, kept at most max_cache_bytes
    max_cache_bytes: int = CACHE_BYTES
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Striped (by the key's hash), so that their number stays fixed whatever the keys.
    render_locks: tuple[threading.Lock, ...] = field(
        default_factory=lambda: tuple(threading.Lock() for _ in range(RENDER_LOCKS))
    )
    version: tuple[int, int] = (-1, -1)
    version_checked: float = float("-inf")
    # Request path -> the prepared answers of its cached rendering (see WebApp).
    fast_paths: dict[str, Prepared] = field(default_factory=dict)
    fast_answers: int = 0  # requests the front answered (tests read it)

    def current_version(self) -> tuple[int, int] | None:
        """The data version if it was read less than VERSION_CHECK_SECONDS ago, else None
        (without reading it: the caller may be on the event loop)."""
        if time.monotonic() - self.version_checked < VERSION_CHECK_SECONDS:
            return self.version
        return None

    def data_version(self) -> tuple[int, int]:
        now = time.monotonic()
        with self.lock:
            if now - self.version_checked < VERSION_CHECK_SECONDS:
                return self.version
        version = self.store.data_version()
        with self.lock:
            self.version, self.version_checked = version, now
        return version

    def cached(
        self, key: Hashable, render: Callable[[], site.Document], *, keep: bool = True
    ) -> Rendered:
        """The cached rendering for `key` if still current, else a fresh one, cached when
        `keep` (False for answers whose key a visitor can vary without end)."""
        config = self.config
        version = self.data_version()
        if not keep:
            return self._store(key, render, config, version, keep=False)
        hit = self._hit(key, config, version)
        if hit is not None:
            return hit
        # One rendering per key at a time: when the data changes under load (a poll storing
        # items), every request waiting for the same document would otherwise render it.
        with self.render_locks[hash(key) % len(self.render_locks)]:
            hit = self._hit(key, config, version)
            if hit is not None:
                return hit
            return self._store(key, render, config, version, keep=True)

    def _hit(self, key: Hashable, config: Config, version: tuple[int, int]) -> Rendered | None:
        with self.lock:
            hit = self.cache.get(key)
            if hit is not None and hit.config is config and hit.version == version:
                self.cache.move_to_end(key)
                return hit
        return None

    def _store(
        self,
        key: Hashable,
        render: Callable[[], site.Document],
        config: Config,
        version: tuple[int, int],
        *,
        keep: bool,
    ) -> Rendered:
        document = render()
        rendered = Rendered(document, strong_etag(document.body), config, version)
        size = len(document.body)
        if not keep or size > self.max_cache_bytes:
            return rendered
        with self.lock:
            replaced = self.cache.pop(key, None)
            if replaced is not None:
                self.cache_bytes -= len(replaced.document.body)
            self.cache[key] = rendered
            self.cache_bytes += size
            while self.cache_bytes > self.max_cache_bytes:
                _, evicted = self.cache.popitem(last=False)
                self.cache_bytes -= len(evicted.document.body)
        return rendered


class WebApp(Starlette):
    """Starlette, with cached published documents answered before its middleware and router.

    Only a GET or HEAD without a query, of a path the route has answered from the render
    cache, is answered here, and only while that rendering is still the cache's current
    one (same Config, same data version, version read less than VERSION_CHECK_SECONDS ago):
    the same headers and body the route would send, or its 304. Everything else goes
    through the router.

    When the version is due to be read again, the first request here reads it in a thread
    (it is SQL) and every request arriving meanwhile waits for that one read, instead of
    each going through the router to read it again; if the read fails, the router answers
    (and reports the failure as it always has).
    """

    _version_read: asyncio.Future[tuple[int, int]] | None = None
    # Its own thread: in asyncio's default pool the read would queue behind a poll's
    # parsing (`run --role all`), and every request waiting for it with it.
    _version_reader: ThreadPoolExecutor | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["query_string"]:
            state = self.state.web
            prepared = state.fast_paths.get(scope["path"])
            if prepared is not None and scope["method"] in ("GET", "HEAD"):
                if state.current_version() is None:
                    await self._read_version(state)
                if _is_current(state, prepared):
                    state.fast_answers += 1
                    await _send_prepared(scope, send, prepared)
                    return
        await super().__call__(scope, receive, send)

    async def _read_version(self, state: WebState) -> None:
        """One read of the data version in a thread, shared by all who wait for it."""
        reading = self._version_read
        if reading is None or reading.done():
            if self._version_reader is None:
                self._version_reader = ThreadPoolExecutor(1, thread_name_prefix="data-version")
            loop = asyncio.get_running_loop()
            reading = loop.run_in_executor(self._version_reader, state.data_version)
            self._version_read = reading
        # Waited for, never awaited: a failed read is the router's to report.
        await asyncio.wait([reading])
        if not reading.cancelled():
            reading.exception()  # retrieved, so that asyncio does not log it as lost


def _is_current(state: WebState, prepared: Prepared) -> bool:
    """Whether `prepared` is what the route would answer with now (see WebState.cached)."""
    rendered = prepared.rendered
    version = state.current_version()
    if version is None or rendered.version != version or rendered.config is not state.config:
        return False
    # The cache may have dropped or replaced it (byte cap, another rendering); a dict read
    # is atomic, so no lock is taken on the event loop.
    return state.cache.get(prepared.key) is rendered


async def _send_prepared(scope: Scope, send: Send, prepared: Prepared) -> None:
    if_none_match: str | None = None
    if_modified_since: str | None = None
    # The first of each header, as Starlette's request.headers.get reads it.
    for name, value in scope["headers"]:
        if name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
        elif name == b"if-modified-since" and if_modified_since is None:
            if_modified_since = value.decode("latin-1")
    rendered = prepared.rendered
    if (if_none_match is not None or if_modified_since is not None) and not_modified(
        if_none_match, if_modified_since, rendered.etag, rendered.document.last_modified
    ):
        await send(
            {"type": "http.response.start", "status": 304,
             "headers": prepared.not_modified_headers}
        )  # fmt: skip
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": prepared.ok_headers})
    await send({"type": "http.response.body", "body": rendered.document.body})


def create_app(
    config: Config | str | Path,
    store: Store,
    *,
    clock: Clock = utc_now,
) -> Starlette:
    """The web app over `store`; `config` is a Config or the path of a feeds.yaml.

    `clock` dates the HTML page's footer (tests pass a fixed one). To switch to a new
    configuration while serving, call set_config.
    """
    loaded = config if isinstance(config, Config) else load_config(str(config))
    routes = [
        Route("/", index_page),
        Route("/index.html", index_page),
        Route("/embed", site_document),
        Route("/embed.html", site_document),
        Route("/embed-help.html", site_document),
        Route("/embed.js", site_document),
        Route("/feed.{format}", feed_document),
        Route("/archive/{page}.atom", feed_document),
        Route("/members/{member}/feed.{format}", feed_document),
        Route("/members/{member}/archive/{page}.atom", feed_document),
        Route("/members/{member}/items.json", site_document),
        Route("/tags/{tag}/feed.{format}", feed_document),
        Route("/tags/{tag}/archive/{page}.atom", feed_document),
        Route("/members.opml", site_document),
        Route("/opml", site_document),
        Route("/api/items", api_items),
        Route("/api/items.json", site_document),
        Route("/api/openapi.json", openapi, include_in_schema=False),
        Route("/healthz", healthz),
        Route("/status", status),
        Route("/status.json", status),
    ]
    app = WebApp(
        routes=routes,
        exception_handlers={StorageError: _storage_unavailable, 404: _not_found_handler},
    )
    app.state.web = WebState(config=loaded, store=store, clock=clock)
    return app


def set_config(app: Starlette, config: Config) -> None:
    """Serve from `config` from now on (a reloaded feeds.yaml); cached renderings expire."""
    _state_of(app).config = config


# --- routes -------------------------------------------------------------------------


def feed_document(request: Request) -> Response:
    """A published feed: combined, one member's or one tag's, or an archive of one.

    ---
    summary: Atom, RSS 2.0 or JSON Feed 1.1 of the latest stories, newest first
    description: >-
      `format` is atom, rss or json. A tag is matched as a slug ("Fair Food" is fair-food)
      against the stories' own tags and their members' tags. Atom feeds link their history
      as RFC 5005 archives (rel="prev-archive"); archive pages hold network.items_per_feed
      stories each, in the order they were stored. Answers carry ETag and Last-Modified
      and honour If-None-Match / If-Modified-Since.
    parameters:
      - {name: lang, in: query, required: false, schema: {type: string},
         description: "only stories in this language, e.g. es (subscription feeds only)"}
    responses:
      "200": {description: the feed}
      "304": {description: not modified}
      "404": {description: no such member, tag, format or archive page}
    """
    language = request.query_params.get("lang") or None
    if language is not None:
        try:
            language = api.parse_language(language)
        except api.ApiQueryError as exc:
            return _api_error(exc)
    return _published(request, language=language)


def site_document(request: Request) -> Response:
    """A published document: the HTML page, the embed fragment and script, OPML or static JSON.

    ---
    summary: The documents the static export also writes, byte for byte
    responses:
      "200": {description: the document}
      "304": {description: not modified}
      "404": {description: no such member}
    """
    return _published(request, language=None)


def index_page(request: Request) -> Response:
    """The news page; `?q=` searches it and `?before=` pages back, without JavaScript.

    ---
    summary: The news page (HTML), optionally a search or an older page of it
    parameters:
      - {name: q, in: query, schema: {type: string, maxLength: 200},
         description: text to find in titles and summaries, case-insensitive}
      - {name: before, in: query, schema: {type: string},
         description: where the previous page ended (its "Older stories" link)}
    responses:
      "200": {description: the page}
      "304": {description: not modified}
      "400": {description: a search too long or a page address that was altered}
    """
    params = request.query_params
    if not params.get("q", "").strip() and not params.get("before"):
        return _published(request, language=None)
    state = _state(request)
    try:
        # The page takes the API's q and before, checked by the API's own rules.
        query = api.parse_items_query(
            {key: params[key] for key in ("q", "before") if key in params}, ()
        )
    except api.ApiQueryError as exc:
        return _html_error(state, 400, str(exc))

    def render() -> site.Document:
        return site.render_index(
            state.config, state.store, now=state.clock(), query=query.q, before=query.before
        )

    # Every search and older page is rendered afresh: a visitor can vary them without end.
    rendered = state.cached(("index", query.q, query.before), render, keep=False)
    return _conditional(request, rendered)


def api_items(request: Request) -> Response:
    """The latest stories as JSON, newest first, with a cursor for the next page.

    ---
    summary: Latest stories as JSON
    parameters:
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100, default: 20}}
      - {name: member, in: query, schema: {type: string}, description: a member id}
      - {name: tag, in: query, schema: {type: string},
         description: "a tag of the story or of its member, case-insensitive"}
      - {name: before, in: query, schema: {type: string},
         description: the `next` value of the previous page}
      - {name: q, in: query, schema: {type: string, maxLength: 200},
         description: text to find in titles and summaries, case-insensitive}
      - {name: lang, in: query, schema: {type: string}, description: "a language, e.g. es"}
      - {name: full, in: query, schema: {type: integer, enum: [0, 1]},
         description: "1 adds each story's content_html"}
    responses:
      "200":
        description: >-
          {"items": [{id, url, title, summary, summary_text, content_html (full=1 only),
          published, updated, image, language, tags, members: [{id, name, url, item_url}]}],
          "next": cursor or null}
      "400": {description: "a bad parameter: {\\"error\\": …, \\"parameter\\": …}"}
    """
    state = _state(request)
    config = state.config
    try:
        query = api.parse_items_query(
            request.query_params, {member.id for member in config.members}
        )
    except api.ApiQueryError as exc:
        return _api_error(exc)

    def render() -> site.Document:
        page = state.store.story_page(
            query.limit,
            member_id=query.member,
            tag=query.tag,
            query=query.q,
            language=query.lang,
            before=query.before,
        )
        body = api.items_document(page.stories, page.next_cursor, full=query.full)
        newest = max((story.updated for story in page.stories), default=None)
        return site.Document("api/items", site.MEDIA_TYPES["items"], body, newest)

    # Searches, older pages and full texts are rendered afresh: a visitor can vary the
    # first two without end, and full=1 answers are the largest.
    keep = query.before is None and query.q is None and not query.full
    return _conditional(request, state.cached(("api", query), render, keep=keep))


def healthz(request: Request) -> Response:
    """Whether the service can answer: 200 "ok" when the database does, else 503.

    ---
    summary: Liveness for process supervisors
    responses:
      "200": {description: ok}
      "503": {description: the database does not answer}
    """
    if _state(request).store.healthy():
        return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})
    return PlainTextResponse(
        "database unavailable\n", status_code=503, headers={"Cache-Control": "no-store"}
    )


def status(request: Request) -> Response:
    """Every member and source: last poll, last success, last error, failures, next poll;
    then the last automatic cross-member merges with their reason.

    ---
    summary: Source health, as HTML (/status) or JSON (/status.json)
    responses:
      "200": {description: the status table}
    """
    state = _state(request)
    now = state.clock()
    rows = status_rows(state.store, state.config, now)
    merges = recent_merges(state.store, now)
    headers = {"Cache-Control": "no-store"}
    if request.url.path.endswith(".json"):
        return Response(
            render_status_json(rows, now, merges),
            media_type="application/json; charset=utf-8",
            headers=headers,
        )
    return Response(
        render_status_html(rows, state.config.network, now, merges),
        media_type="text/html; charset=utf-8",
        headers=headers,
    )


class _SchemaFromDocstrings(SchemaGenerator):
    """Starlette's generator, reading the docstrings' YAML with ruamel.yaml (no PyYAML)."""

    def parse_docstring(self, func_or_method: Callable[..., Any]) -> dict[str, Any]:
        docstring = func_or_method.__doc__ or ""
        if "---" not in docstring:
            return {}
        try:
            parsed = YAML(typ="safe", pure=True).load(docstring.split("---")[-1])
        except YAMLError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


SCHEMAS = _SchemaFromDocstrings(
    {
        "openapi": "3.0.3",
        "info": {"title": "WSR Network news aggregator", "version": __version__},
    }
)


def openapi(request: Request) -> Response:
    return JSONResponse(
        SCHEMAS.get_schema(routes=request.app.routes),
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": CACHE_CONTROL},
    )


# --- answering ------------------------------------------------------------------------


def _published(request: Request, *, language: str | None) -> Response:
    state = _state(request)
    path = request.url.path.lstrip("/") or site.INDEX_PATH
    if path == "embed":
        path = site.EMBED_PATH
    if path == site.EMBED_PATH and "help" in request.query_params:
        path = site.EMBED_HELP_PATH

    def render() -> site.Document:
        return site.render_document(
            path, state.config, state.store, now=state.clock(), language=language
        )

    key = ("site", path, language)
    try:
        rendered = state.cached(key, render)
    except site.NotPublishedError:
        return _not_found(request)
    response = _conditional(request, rendered)
    if language is None and not request.scope["query_string"]:
        _remember_fast_path(state, request.scope["path"], rendered, key)
    return response


def _not_found(request: Request) -> Response:
    """404: an HTML page linking back to the news for browsers, plain text for programs."""
    if "text/html" in request.headers.get("accept", ""):
        return _html_error(_state(request), 404)
    return PlainTextResponse("Not Found\n", status_code=404)


async def _not_found_handler(request: Request, exc: Exception) -> Response:
    return _not_found(request)


def _html_error(state: WebState, status_code: int, message: str = "") -> Response:
    body = html_pages.render_not_found_page(state.config.network, message=message)
    return Response(
        body,
        status_code=status_code,
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store"},
    )


def _remember_fast_path(state: WebState, path: str, rendered: Rendered, key: Hashable) -> None:
    """Let the front answer `path` from `rendered` while it stays the cache's current one."""
    known = state.fast_paths.get(path)
    if known is not None and known.rendered is rendered:
        return
    with state.lock:
        if state.cache.get(key) is not rendered:
            return  # not kept (over the byte cap) or already replaced
        if len(state.fast_paths) >= MAX_FAST_PATHS:
            state.fast_paths.clear()
        state.fast_paths[path] = Prepared(
            rendered,
            key,
            tuple(_ok_response(rendered).raw_headers),
            tuple(_not_modified_response(rendered).raw_headers),
        )


def _conditional(request: Request, rendered: Rendered) -> Response:
    """200 with the body, or 304 when the request's validators still match (RFC 9110 13)."""
    if not_modified(
        request.headers.get("if-none-match"),
        request.headers.get("if-modified-since"),
        rendered.etag,
        rendered.document.last_modified,
    ):
        return _not_modified_response(rendered)
    return _ok_response(rendered)


def _validator_headers(rendered: Rendered) -> dict[str, str]:
    headers = {
        "ETag": rendered.etag,
        "Cache-Control": CACHE_CONTROL,
        "Access-Control-Allow-Origin": "*",
    }
    if rendered.document.last_modified is not None:
        headers["Last-Modified"] = http_date(rendered.document.last_modified)
    return headers


def _ok_response(rendered: Rendered) -> Response:
    document = rendered.document
    return Response(
        document.body, media_type=document.media_type, headers=_validator_headers(rendered)
    )


def _not_modified_response(rendered: Rendered) -> Response:
    return Response(status_code=304, headers=_validator_headers(rendered))


def not_modified(
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str,
    last_modified: datetime | None,
) -> bool:
    """Whether a GET with these request headers gets 304 (If-None-Match wins when present)."""
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if if_modified_since is None or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= since


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _api_error(error: api.ApiQueryError) -> Response:
    return Response(
        api.error_document(error),
        status_code=400,
        media_type="application/json; charset=utf-8",
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"},
    )


def _storage_unavailable(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"database unavailable: {exc}\n", status_code=503)


def _state(request: Request) -> WebState:
    return _state_of(cast(Starlette, request.app))


def _state_of(app: Starlette) -> WebState:
    state = app.state.web
    assert isinstance(state, WebState)
    return state
