"""The web server cuts a connection that sends too much head, or sends it too slowly.

With httptools, one connection sent 300 MiB of headers without being cut, and 100
connections trickling header bytes were all still open after 25 s. Over raw sockets to
the real server (server.make_server, as `aggregator run` builds it) on 127.0.0.1: a head
larger than MAX_HEAD_BYTES is answered 400 and the connection closed, and a trickling
connection is closed by the server once its (test-short) head timeout passes.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import suppress

from aggregator.service import server as server_module
from aggregator.service import web
from aggregator.store import Store
from tests.hostile.server import config_for

HEAD_TIMEOUT = 0.5  # seconds: short, so the test does not wait long for the cut
PATIENCE = 60.0  # seconds a test waits at most for the server to act: a hang, not a timing


@contextmanager
def running_server(store: Store, head_timeout: float = HEAD_TIMEOUT) -> Iterator[int]:
    """The service's web server on 127.0.0.1 in a thread; yields its port."""
    config = config_for({"quiet": ["http://127.0.0.1:9/feed.xml"]})
    store.sync_config(config)
    server = server_module.make_server(
        web.create_app(config, store),
        "127.0.0.1",
        0,
        access_log=False,
        handle_signals=False,
        head_timeout=head_timeout,
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + PATIENCE
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=PATIENCE)


def closed_by_server(connection: socket.socket) -> bytes | None:
    """What the server sent before closing, or None while the connection is still open."""
    received = b""
    while True:
        readable, _, _ = select.select([connection], [], [], 0)
        if not readable:
            return None
        try:
            chunk = connection.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def test_a_huge_header_block_is_refused_and_cut(sqlite_store: Store) -> None:
    with running_server(sqlite_store) as port:
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        sent = 0
        answer = None
        try:
            # Up to 64 MiB: the server must cut the connection long before.
            while sent < 64 * 1024 * 1024 and answer is None:
                connection.sendall(line * 64)
                sent += len(line) * 64
                answer = closed_by_server(connection)
        except (BrokenPipeError, ConnectionResetError):
            answer = b""
        deadline = time.monotonic() + PATIENCE
        while answer is None and time.monotonic() < deadline:
            answer = closed_by_server(connection)
            time.sleep(0.01)
        connection.close()
    assert answer is not None, "the server kept reading an endless header block"
    # (How much was sent before the cut shows is no measure: the kernel buffers megabytes.)
    assert sent < 64 * 1024 * 1024
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_a_trickling_head_is_cut_after_the_head_timeout(sqlite_store: Store) -> None:
    with running_server(sqlite_store) as port:
        trickling = socket.create_connection(("127.0.0.1", port))
        silent = socket.create_connection(("127.0.0.1", port))
        trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        states: dict[str, bytes | None] = {"trickling": None, "silent": None}
        deadline = time.monotonic() + PATIENCE
        while None in states.values() and time.monotonic() < deadline:
            if states["trickling"] is None:
                try:
                    trickling.sendall(b"a")  # one byte at a time, never the end of the head
                except (BrokenPipeError, ConnectionResetError):
                    states["trickling"] = b""
            for name, connection in (("trickling", trickling), ("silent", silent)):
                if states[name] is None:
                    states[name] = closed_by_server(connection)
            time.sleep(0.05)
        # A well-behaved request on a new connection is still answered.
        with socket.create_connection(("127.0.0.1", port)) as polite:
            polite.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := polite.recv(65536):
                reply += chunk
        trickling.close()
        silent.close()
    assert states["trickling"] is not None, "a trickling connection was never closed"
    assert states["silent"] is not None, "a connection that never sent a byte was never closed"
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]


def test_a_head_over_the_cap_is_answered_400_before_any_timeout(sqlite_store: Store) -> None:
    filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + filler * 20
    assert len(head) > server_module.MAX_HEAD_BYTES
    answer = b""
    # The head timeout far away: the byte cap alone must refuse this head.
    with (
        running_server(sqlite_store, head_timeout=PATIENCE) as port,
        socket.create_connection(("127.0.0.1", port)) as connection,
    ):
        connection.settimeout(PATIENCE)
        with suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(head)
        with suppress(ConnectionResetError):
            while chunk := connection.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
