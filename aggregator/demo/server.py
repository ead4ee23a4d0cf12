"""A small real HTTP server on 127.0.0.1 that serves fixture sites.

Used by the offline demo, the tests and the benchmarks, so that fetching is always
exercised over real sockets. It serves a directory of files with the headers real
member sites send (Content-Type, ETag, Last-Modified, gzip when asked, 304 for conditional
requests), plus canned routes. Request recording and the misbehaving modes (trickling,
never answering, gzip bombs) are test tooling and live in tests/support/, outside the
package. It must only ever bind to the loopback interface.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from email.utils import formatdate
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self

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


class FixtureServer:
    """Serve `root` (and any routes added) on 127.0.0.1; use as a context manager."""

    def __init__(self, root: Path | None = None, *, port: int = 0, fill_base: bool = False) -> None:
        """`fill_base`: every "{base}" in a served text file becomes this server's own address
        (http://127.0.0.1:PORT), so static sites can link to themselves whatever the port."""
        self.root = root
        self.fill_base = fill_base
        self.routes: dict[str, Route] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.handle(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib name)
                return  # no access log on the terminal; tests record requests themselves

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- request handling (runs in the server's threads) ----------------------------

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        """Answer one GET: an added route, else a file under root, else 404."""
        path = handler.path
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
