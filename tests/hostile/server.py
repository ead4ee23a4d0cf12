"""Test-only helpers for the hostile-input suite: what aggregator.demo.server cannot do.

A transport that sends a made-up public host name to the fixture server on 127.0.0.1 (with
a resolver that claims the name is public), a TLS server with a throwaway self-signed
certificate, and a runner for the whole pipeline (config -> fetch -> store -> export).
Nothing here ever sends traffic off the machine: an unmapped host is an error.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from aggregator.config import parse_config
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.ingest.safety import Resolver
from aggregator.models import CacheValidators
from aggregator.models import Config
from aggregator.models import FetchLimits
from aggregator.models import FetchResult
from aggregator.models import PollReport
from aggregator.models import SourceConfig
from aggregator.publish.export import export_files
from aggregator.publish.site import render_document
from aggregator.store import Store

# A global unicast address that is never connected to: HostMapTransport reroutes it.
PUBLIC_ADDRESS = "93.184.216.34"
PUBLIC_HOST = "news.member.example"
FEED_URL = "https://network.example.org/feeds/"


class HostMapTransport(httpx.AsyncBaseTransport):
    """Sends requests for the mapped host names to 127.0.0.1:port; refuses any other name
    that is not 127.0.0.1 itself, so a test can never reach the internet by mistake."""

    def __init__(self, hosts: Mapping[str, int]) -> None:
        self._hosts = dict(hosts)
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self._hosts:
            request.url = request.url.copy_with(host="127.0.0.1", port=self._hosts[host])
        elif host not in ("127.0.0.1", "localhost"):
            raise httpx.ConnectError(f"test transport: {host} is not mapped", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def fake_resolver(addresses: Mapping[str, str]) -> Resolver:
    """A resolver that knows only `addresses` (name -> IP) and localhost."""

    async def resolve(host: str, port: int) -> list[str]:
        if host == "localhost":
            return ["127.0.0.1", "::1"]
        if host not in addresses:
            raise OSError(f"test resolver: unknown host {host}")
        return [addresses[host]]

    return resolve


def fetch_once(
    url: str,
    *,
    limits: FetchLimits | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
) -> FetchResult:
    source = SourceConfig(member_id="hostile", kind="feed", url=url)

    async def run() -> FetchResult:
        async with Fetcher(limits, transport=transport, resolver=resolver) as fetcher:
            return await fetcher.fetch(source, CacheValidators())

    return asyncio.run(run())


def config_for(sources: Mapping[str, list[str]]) -> Config:
    """A feeds.yaml with one member per key, each polling its list of feed addresses."""
    lines = [
        "network:",
        "  title: Hostile test network",
        "  url: https://network.example.org/",
        f"  feed_url: {FEED_URL}",
        "members:",
    ]
    for member_id, urls in sources.items():
        lines += [
            f"  - id: {member_id}",
            f"    name: Member {member_id}",
            f"    url: https://{member_id}.example.org/",
            "    sources:",
            *(f'      - feed: "{url}"' for url in urls),
        ]
    return parse_config("\n".join(lines) + "\n", "hostile-feeds.yaml")


def poll(
    config: Config,
    store: Store,
    limits: FetchLimits | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
) -> list[PollReport]:
    store.sync_config(config)

    async def run() -> list[PollReport]:
        async with Fetcher(limits, clock=clock) as fetcher:
            return await poll_all(config, store, fetcher)

    return asyncio.run(run())


def export(config: Config, store: Store, directory: Path) -> dict[str, bytes]:
    """Write the combined feeds as `aggregator export` does; their bytes by file name."""
    # The combined feed in every format, rendered by site.py (the one path -> renderer map).
    now = datetime.now(UTC)
    files = {
        path: render_document(path, config, store, now=now).body
        for path in ("feed.atom", "feed.rss", "feed.json")
    }
    written = export_files(directory, files)
    return {path.name: path.read_bytes() for path in written}


# --- TLS ----------------------------------------------------------------------------------


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


class _FeedHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<rss version='2.0'><channel><title>t</title></channel></rss>"
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib name)
        return


@contextmanager
def tls_server(directory: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate; yields its base URL."""
    cert, key = self_signed_certificate(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FeedHandler)
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
