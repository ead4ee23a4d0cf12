"""A small real HTTP server on 127.0.0.1 that serves fixture sites.

Used by the offline demo, the tests and the benchmarks, so that fetching is always
exercised over real sockets. It serves a directory of files with the headers real
member sites send (Content-Type, ETag, Last-Modified, gzip when asked, 304 for conditional
requests) and lets tests add routes that misbehave on demand (errors, redirects, slow or
huge bodies). It must only ever bind to the loopback interface.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from email.utils import formatdate
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

CONTENT_TYPES = {
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".rdf": "application/rdf+xml",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
# Files in which `fill_base` replaces "{base}"; byte-wise, so any ASCII-compatible encoding
# (the demo's ISO-8859-1 RSS 1.0 among them) stays as it was written.
TEXT_SUFFIXES = frozenset({".xml", ".rss", ".atom", ".rdf", ".json", ".html", ".css"})
BASE_PLACEHOLDER = b"{base}"


@dataclass
class Route:
    """A canned response for one path; tests change these while the server runs."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    conditional: bool = True  # answer 304 to a matching If-None-Match
    # Sent instead of the true length: a lying server (the body is still sent whole).
    content_length: int | None = None


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]


Responder = Callable[[BaseHTTPRequestHandler], None]


class FixtureServer:
    """Serve `root` (and any routes added) on 127.0.0.1; use as a context manager."""

    def __init__(self, root: Path | None = None, *, port: int = 0, fill_base: bool = False) -> None:
        """`fill_base`: every "{base}" in a served text file becomes this server's own address
        (http://127.0.0.1:PORT), so static sites can link to themselves whatever the port."""
        self.root = root
        self.fill_base = fill_base
        self.routes: dict[str, Route] = {}
        self.responders: dict[str, Responder] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib name)
                return  # tests and the demo read server.requests instead

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FixtureServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    # --- request handling (runs in the server's threads) ----------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        with self._lock:
            self.requests.append(
                RecordedRequest(path, {k.lower(): v for k, v in handler.headers.items()})
            )
        if path in self.responders:
            self.responders[path](handler)
            return
        route = self.routes.get(path) or self.file_route(path)
        if route is None:
            send(
                handler,
                Route(
                    status=404, body=b"<h1>Not found</h1>", headers={"Content-Type": "text/html"}
                ),
            )
            return
        if route.delay:
            time.sleep(route.delay)
        send(handler, route)

    def file_route(self, path: str) -> Route | None:
        """The response for `path` from the files under root (a folder gives its index.html)."""
        if self.root is None:
            return None
        relative = path.split("?", 1)[0].lstrip("/")
        target = (self.root / relative).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file() or not target.is_relative_to(self.root.resolve()):
            return None
        body = target.read_bytes()
        if self.fill_base and target.suffix in TEXT_SUFFIXES:
            body = body.replace(BASE_PLACEHOLDER, self.base_url.encode("ascii"))
        content_type = CONTENT_TYPES.get(target.suffix, "application/octet-stream")
        return Route(
            body=body,
            headers={
                "Content-Type": content_type,
                "Last-Modified": formatdate(target.stat().st_mtime, usegmt=True),
            },
        )


def entity_tag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'


def send(handler: BaseHTTPRequestHandler, route: Route) -> None:
    """Write `route` as the response, with ETag/304 and gzip as real servers do."""
    headers = dict(route.headers)
    body = route.body
    if route.status == 200 and route.conditional:
        headers.setdefault("ETag", entity_tag(body))
        if _not_modified(handler, headers):
            handler.send_response(304)
            for name in ("ETag", "Last-Modified"):
                if name in headers:
                    handler.send_header(name, headers[name])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
    if (
        "gzip" in handler.headers.get("Accept-Encoding", "")
        and body
        and ("Content-Encoding" not in headers)
    ):
        body = gzip.compress(body, mtime=0)
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
    handler.send_response(route.status)
    for name, value in headers.items():
        handler.send_header(name, value)
    declared = len(body) if route.content_length is None else route.content_length
    handler.send_header("Content-Length", str(declared))
    handler.end_headers()
    try:
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True  # the client gave up; nothing left to do


def _not_modified(handler: BaseHTTPRequestHandler, headers: dict[str, str]) -> bool:
    if_none_match = handler.headers.get("If-None-Match")
    if if_none_match is not None:
        return headers.get("ETag") in {tag.strip() for tag in if_none_match.split(",")}
    if_modified_since = handler.headers.get("If-Modified-Since")
    last_modified = headers.get("Last-Modified")
    if if_modified_since and last_modified:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
    return False


# --- misbehaving responders (tests and benchmarks: FixtureServer.responders[path] = …) ---


@dataclass
class Transfer:
    """What a streaming responder did, for a test to check after the client is done."""

    planned: int = 0  # body bytes it meant to send
    sent: int = 0  # body bytes the socket accepted
    closed_early: bool = False  # the client closed the connection before the end
    finished: threading.Event = field(default_factory=threading.Event)


def streaming(
    size: int,
    *,
    chunk_size: int = 64 * 1024,
    interval: float = 0.0,
    headers: dict[str, str] | None = None,
    declared_length: int | None = None,
    length_header: bool = True,
    filler: bytes = b"<!-- padding -->\n",
    transfer: Transfer | None = None,
) -> Responder:
    """A 200 whose body of `size` bytes is written `chunk_size` at a time, `interval` s apart.

    Covers a trickling server (chunk_size=1, interval=1.0) and a huge body that the client
    must abort while it streams (`transfer` tells how much went out before it hung up).
    The Content-Length is the true size unless `declared_length` is given; without
    `length_header` there is none and the body ends when the connection closes.
    """
    record = transfer if transfer is not None else Transfer()

    def respond(handler: BaseHTTPRequestHandler) -> None:
        record.planned = size
        handler.close_connection = True
        handler.send_response(200)
        for name, value in (headers or {"Content-Type": "application/rss+xml"}).items():
            handler.send_header(name, value)
        if length_header:
            declared = size if declared_length is None else declared_length
            handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        block = (filler * (chunk_size // len(filler) + 1))[:chunk_size]
        try:
            while record.sent < size:
                piece = block[: size - record.sent]
                handler.wfile.write(piece)
                handler.wfile.flush()
                record.sent += len(piece)
                if interval:
                    time.sleep(interval)
        except (BrokenPipeError, ConnectionResetError):
            record.closed_early = True
        finally:
            record.finished.set()

    return respond


def never_answer(limit: float = 120.0) -> Responder:
    """Accept the request and then say nothing, until the client hangs up (or `limit` s)."""

    def respond(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        handler.connection.settimeout(limit)
        try:
            while handler.rfile.read(1):
                pass
        except OSError:
            return

    return respond


def gzip_bomb(size: int, *, content_type: str = "application/rss+xml") -> Route:
    """A route whose `size` zero bytes travel gzip-compressed (about 1000:1) whatever the
    client asked for, as a hostile server would send them."""
    return Route(
        body=gzip.compress(b"\0" * size, compresslevel=9, mtime=0),
        headers={"Content-Type": content_type, "Content-Encoding": "gzip"},
        conditional=False,
    )
