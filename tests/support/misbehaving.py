"""Misbehaving responders for the tests and benchmarks: FixtureServer.responders[path] = ….

A trickling or huge streamed body, a server that never answers, a gzip bomb. Test tooling,
not shipped in the wheel. They must only ever be served on the loopback interface.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler

from aggregator.demo.server import Route
from tests.support.server import Responder


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
