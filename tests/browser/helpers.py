"""What the browser tests share: finding Chromium, a small site server, pictures, sample data.

The server here differs from aggregator.demo.server in what these tests need: routes
match the path whatever the query string (the widget adds ?limit=&member=…), every request
is recorded with its query and headers (to see the Origin a cross-origin fetch sends), and
a slow route gives up its wait when the server stops, so a timeout test ends promptly.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import threading
import zlib
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from aggregator.models import Credit
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.models import PublishedStory
from aggregator.models import SourceConfig

# Playwright's default launch flags plus these; never `playwright install`: the browser is
# the distribution's package (`apt-get install chromium`, done by .ci/run).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
NO_CHROMIUM = (
    "no Chromium found (set CHROMIUM=/path/to/chromium, or `apt-get install chromium`, "
    "which .ci/run does)"
)


def find_chromium() -> str | None:
    """The Chromium to drive: $CHROMIUM, /usr/bin/chromium, or one on PATH."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


# --- a site on 127.0.0.1 --------------------------------------------------------------


@dataclass
class Response:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request as the server received it: the path with its query, and the headers."""

    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class Site:
    """Serve `responses` (by path, query ignored) on 127.0.0.1; use as a context manager.

    `cors` adds Access-Control-Allow-Origin: * to every response, as the API does.
    """

    def __init__(self, *, cors: bool = False) -> None:
        self.responses: dict[str, Response] = {}
        self.seen: list[Seen] = []
        self.cors = cors
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site._answer(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib name)
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.origin + path

    def html(self, path: str, text: str) -> None:
        self.responses[path] = Response(text.encode("utf-8"))

    def json(self, path: str, data: Any, *, delay: float = 0.0) -> None:
        body = json.dumps(data).encode("utf-8")
        self.responses[path] = Response(body, "application/json; charset=utf-8", delay=delay)

    def script(self, path: str, text: str) -> None:
        self.responses[path] = Response(text.encode("utf-8"), "text/javascript; charset=utf-8")

    def png(self, path: str, body: bytes) -> None:
        self.responses[path] = Response(body, "image/png")

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.seen if seen.path == path]

    def __enter__(self) -> Site:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        seen = Seen(handler.path, {k.lower(): v for k, v in handler.headers.items()})
        with self._lock:
            self.seen.append(seen)
        response = self.responses.get(seen.path)
        if response is None:
            response = Response(b"not found", "text/plain", status=404)
        if response.delay and self._stopping.wait(response.delay):
            return
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(response.body)))
            handler.send_header("Cache-Control", "no-store")
            if self.cors:
                handler.send_header("Access-Control-Allow-Origin", "*")
            for name, value in response.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            return  # the browser gave up (the widget's timeout): nothing left to tell it


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A PNG of one colour: story images served locally, so no test reaches the Internet."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


# --- sample network -------------------------------------------------------------------

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def network(feed_url: str) -> NetworkConfig:
    return NetworkConfig(
        title="WSR Network",
        url=feed_url,
        feed_url=feed_url,
        description="News from the Worker-driven Social Responsibility Network",
    )


def members(origin: str) -> list[MemberConfig]:
    return [
        MemberConfig(
            id="ciw",
            name="Coalition of Immokalee Workers",
            url=f"{origin}/ciw/",
            sources=(SourceConfig("ciw", "feed", f"{origin}/ciw/feed/"),),
        ),
        MemberConfig(
            id="ffp",
            name="Fair Food Program",
            url=f"{origin}/ffp/",
            sources=(SourceConfig("ffp", "page", f"{origin}/ffp/news/"),),
            language="es",
        ),
    ]


def stories(origin: str, count: int = 3) -> list[PublishedStory]:
    """`count` stories, newest first, alternating members, every other one in Spanish."""
    made = []
    for n in range(count):
        member = ("ciw", "Coalition of Immokalee Workers") if n % 2 == 0 else ("ffp", "FFP")
        day = datetime(2026, 11, 24 - n, 15, 0, tzinfo=UTC)
        made.append(
            PublishedStory(
                id=f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
                url=f"{origin}/{member[0]}/story-{n}/",
                title=f"Story number {n}: farmworkers win new protections",
                content_html=f"<p>Full text of story {n}.</p>",
                summary=f"<p>Summary of story {n}, with <em>emphasis</em>.</p>",
                published=day,
                updated=day,
                credits=(Credit(member[0], member[1], f"{origin}/{member[0]}/", None),),
                tags=("farmworkers",),
                image=f"{origin}/images/story-{n}.png",
                language="es" if n % 2 else None,
            )
        )
    return made


def api_item(
    n: int,
    origin: str,
    *,
    member: str = "ciw",
    tags: tuple[str, ...] = ("farmworkers",),
    language: str | None = "en",
    **overrides: Any,
) -> dict[str, Any]:
    """One item in the /api/items shape (the contract in notes/coordination.md)."""
    item: dict[str, Any] = {
        "id": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        "url": f"{origin}/{member}/story-{n}/",
        "title": f"Widget story {n}",
        "summary": f"<p>Summary {n}</p>",
        "summary_text": f"Summary {n}",
        "published": f"2026-11-{24 - n:02d}T15:00:00Z",
        "updated": f"2026-11-{24 - n:02d}T15:00:00Z",
        "image": None,
        "language": language,
        "tags": list(tags),
        "members": [
            {"id": member, "name": member.upper(), "url": f"{origin}/{member}/", "item_url": None}
        ],
    }
    item.update(overrides)
    return item
