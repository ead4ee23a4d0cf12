"""The fixture server as the tests use it: the demo's static server, plus request
recording and misbehaving responders (tests/support/misbehaving.py).

Test tooling, not shipped in the wheel; bench/ may import it. It must only ever bind to
the loopback interface (the demo server it extends does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from aggregator.demo import server as demo_server

Responder = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]


class FixtureServer(demo_server.FixtureServer):
    """The demo's server that also records every request and lets a test put a responder
    (a function writing the whole answer itself) on a path."""

    def __init__(self, root: Path | None = None, *, port: int = 0, fill_base: bool = False) -> None:
        super().__init__(root, port=port, fill_base=fill_base)
        self.responders: dict[str, Responder] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        with self._lock:
            self.requests.append(
                RecordedRequest(path, {k.lower(): v for k, v in handler.headers.items()})
            )
        if path in self.responders:
            self.responders[path](handler)
            return
        super().handle(handler)
