"""The HTTP server the web app runs in: uvicorn with a bounded protocol, uvloop, the socket.

The server bounds what one connection may cost by itself, because the Docker image binds
0.0.0.0:8080 with no proxy in front: a request head (request line and headers) of at most
MAX_HEAD_BYTES, which must arrive complete within HEAD_TIMEOUT_SECONDS of its first byte,
and KEEP_ALIVE_SECONDS of idling between requests. It parses HTTP with uvicorn's httptools
protocol (C, faster than h11: bench/README.md), counting each head's bytes and timing it
before the parser sees them: uvicorn's own httptools protocol appends URL and header bytes
without any limit (one connection once sent 300 MiB of headers). uvloop's event loop is
used when it is installed (event_loop_factory).

This module must never route, render or read the database (aggregator.service.web does);
it must only bind where it is told (the CLI's default is 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from aggregator.errors import ListenError

MAX_HEAD_BYTES = 16 * 1024  # a request line and headers; browsers send well under 8 KB
HEAD_TIMEOUT_SECONDS = 10.0  # from a request's first byte to the end of its headers
KEEP_ALIVE_SECONDS = 5  # an idle connection between two requests


class _ServerLeavingSignals(uvicorn.Server):
    """uvicorn without its own SIGTERM/SIGINT handlers (service/app.py owns them), which
    calls `on_started` once it listens and answers."""

    on_started: Callable[[], None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service stops the scheduler and the server together on one signal.
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_started is not None:
            self.on_started()


class _BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (C parser), bounded: a head larger than MAX_HEAD_BYTES
    is answered 400 and the connection closed, and a head not complete within
    `head_timeout` seconds of its first byte (or of the connection's opening) closes the
    connection.

    uvicorn's own httptools protocol appends URL and header bytes without any limit (one
    connection sent 300 MiB of headers), and uvicorn arms no timer while a head arrives,
    only between requests (a client trickling one header byte at a time held its
    connection open for ever; 100 such connections were all still open after 25 s; h11,
    used before for its head cap, was slower: bench/README.md). The bytes received while
    a head is incomplete are
    counted here before the parser sees them; the count restarts when a message ends, so a
    pipelined head may run over the cap by at most the rest of the read that ended the
    previous message.
    """

    head_timeout: float = HEAD_TIMEOUT_SECONDS
    max_head_bytes: int = MAX_HEAD_BYTES
    _head_timer: asyncio.TimerHandle | None = None
    _in_head: bool = True  # waiting for, or receiving, a request head
    _head_bytes: int = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused or timed out: nothing more is read
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._cancel_head_timer()
                self.logger.info(
                    "refusing a request whose head is over %d bytes", self.max_head_bytes
                )
                self.send_400_response("Request head too large.")
                return
        super().data_received(data)
        if self._in_head and self._head_bytes and not self.transport.is_closing():
            # A head under way: the timer runs from its first byte and is not extended.
            # (A read that ended a request leaves the count at 0: the connection is idle,
            # which uvicorn's keep-alive timeout bounds.)
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self.logger.info("closing a connection whose request headers never completed")
            self.transport.close()


def make_server(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    log_level: str | None = None,
    access_log: bool = True,
    handle_signals: bool = True,
    head_timeout: float = HEAD_TIMEOUT_SECONDS,
    on_started: Callable[[], None] | None = None,
) -> uvicorn.Server:
    """A uvicorn server for `app`: `.run()` it, or `await .serve()` inside an event loop.

    `log_level` ("warning" for the demo) and `access_log` set what uvicorn prints;
    `handle_signals=False` leaves SIGTERM/SIGINT to the caller (service/app.py), and then
    `on_started` is called once the server listens; `head_timeout` is
    HEAD_TIMEOUT_SECONDS but in tests.
    """
    protocol = type("BoundedProtocol", (_BoundedHttpToolsProtocol,), {"head_timeout": head_timeout})
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        loop="auto",  # uvloop when installed, as event_loop_factory
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        proxy_headers=False,
        server_header=False,
        log_level=log_level,
        access_log=access_log,
    )
    if access_log:
        # Asked for, so shown even when log_level keeps uvicorn's own messages quiet (the
        # Config above has just set the access logger to that level).
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    if handle_signals:
        return uvicorn.Server(config)
    server = _ServerLeavingSignals(config)
    server.on_started = on_started
    return server


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed, else None (asyncio's own).

    uvicorn picks uvloop by itself for `server.run()` (loop="auto"); this is for the
    service's own asyncio.Runner (`run`), where the scheduler and the server share a loop.
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def listen(host: str, port: int) -> socket.socket:
    """The web server's socket, bound now: a port already taken is said in plain words
    (uvicorn would log an errno and exit the process), before anything else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a restart may reuse the port while old connections linger.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(f"port {port} is already in use; choose another with --port") from exc
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock
