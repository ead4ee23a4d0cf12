"""Connections that go exactly where the safety check said they may (DNS rebinding).

A check that looks a name up and a connection that looks it up again can get two different
answers: a hostile member's DNS says "public" to the check and "127.0.0.1" a second later
to the connection. So the fetcher's connections resolve each host once, through the
fetcher's resolver, check those very addresses (aggregator.ingest.safety) and connect to
them by IP; the URL, the Host header, TLS SNI and certificate verification all stay on the
host name, because httpcore still hands the name to start_tls.

Two pools: one for the host staff wrote in feeds.yaml (any address: staff vouched for
it), one for every other host (public addresses only). A connection opened for a trusted
host is never reused for a request that is not trusted, since pools never share them.

The poll's connections are aiohttp's (CheckedAiohttpTransport, an httpx transport: the
fetcher keeps httpx's client, its redirects by hand, its decoding and its exceptions), with
CheckedResolver as aiohttp's resolver and no DNS cache; aiohttp fetches unchanged feeds
several times faster than httpcore's pool (bench/transport.py, bench/README.md "Transport").
httpcore's pool (CheckedBackend, CheckedTransport) remains for callers that bring their own
connector (the DNS-rebinding tests map public addresses to 127.0.0.1 with one).

This module never decides what is safe (aggregator.ingest.safety does), never follows a
redirect, never keeps a cookie, never takes a proxy from the environment, and never reads or
parses response bodies (it only hands their bytes on).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator
from collections.abc import Iterable

import aiohttp
import httpcore
import httpx
from aiohttp.abc import AbstractResolver
from aiohttp.abc import ResolveResult
from yarl import URL

from aggregator.ingest.safety import Resolver
from aggregator.ingest.safety import UnsafeAddressError
from aggregator.ingest.safety import is_public_address
from aggregator.ingest.safety import lookup
from aggregator.ingest.safety import public_addresses

# Longest header line aiohttp accepts (its default is 8 KB; httpx's h11 took up to 100 KB,
# and real sites send long Content-Security-Policy and Link headers).
MAX_HEADER_LINE = 64 * 1024


class NameNotFoundError(httpcore.ConnectError):
    """A trusted host's name could not be looked up: the fetcher names it a DNS failure (and
    a round where every source fails so is seen as this machine being offline)."""


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once through `resolver`, checks, connects to the checked addresses.

    `public_only`: every address must be public (any host staff did not write). Otherwise
    any address is allowed, but still the one looked up: a name that cannot be looked up
    is a NameNotFoundError.
    `connector` opens the TCP connections (tests map a public address to a local server).
    """

    def __init__(
        self,
        resolver: Resolver,
        *,
        public_only: bool,
        connector: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolver = resolver
        self._public_only = public_only
        self._connector = connector or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._public_only:
            addresses = await public_addresses(host, port, self._resolver)
        else:
            found = await lookup(host, port, self._resolver)
            if found is None:
                raise NameNotFoundError(f"could not look up {host}")
            addresses = found
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._connector.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            # The next address may answer (a name with an IPv6 and an IPv4 address).
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        if failure is not None:
            raise failure
        raise httpcore.ConnectError(f"{host} has no address")

    async def sleep(self, seconds: float) -> None:
        await self._connector.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport with its connection pool on a CheckedBackend.

    httpx.AsyncHTTPTransport takes no network backend, but builds everything else a pool
    needs (request and response mapping, httpcore's exceptions turned into httpx's); only
    its pool is replaced, with the same settings, as httpx would build it without a proxy.
    """

    def __init__(
        self,
        backend: CheckedBackend,
        *,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # Loading the CA bundle costs tens of milliseconds: one context, not one per pool.
        context = ssl_context or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=context, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver: looks up through `resolver` once per connection and hands aiohttp
    only the checked addresses, which it then connects to by IP (the host name stays in the
    Host header, TLS SNI and certificate checks).

    `public_only`: every address must be public, else UnsafeAddressError (a name that cannot
    be looked up too). Otherwise a name that cannot be looked up is a socket.gaierror, which
    aiohttp reports as a DNS failure.
    """

    def __init__(self, resolver: Resolver, *, public_only: bool) -> None:
        self._resolver = resolver
        self._public_only = public_only

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._public_only:
            addresses = await public_addresses(host, port, self._resolver)
        else:
            found = await lookup(host, port, self._resolver)
            if found is None:
                raise socket.gaierror(socket.EAI_NONAME, f"could not look up {host}")
            addresses = found
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def _literal_address(host: str) -> str | None:
    """The IP address a host is written as, if it is one (aiohttp never resolves those)."""
    literal = host.strip("[]").split("%", 1)[0]
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        return None


def _httpx_error(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """aiohttp's exception as the httpx one httpcore would raise for the same fault, so the
    fetcher describes both the same way (aggregator.ingest.fetch.describe_exception)."""
    message = str(exc) or exc.__class__.__name__
    error: type[httpx.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        error = httpx.ConnectTimeout
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        error = httpx.ReadTimeout
    elif isinstance(exc, aiohttp.ClientConnectorError | aiohttp.InvalidUrlClientError):
        error = httpx.ConnectError
    elif isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        error = httpx.RemoteProtocolError
    elif isinstance(exc, aiohttp.ClientOSError):
        error = httpx.ReadError
    else:
        error = httpx.TransportError
    return error(message, request=request)


class _AiohttpBody(httpx.AsyncByteStream):
    """An aiohttp response's raw (still compressed) body for httpx, which decodes it: the
    fetcher's size cap counts the decoded bytes as they come, so a gzip bomb stops early."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request
        self._complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc, self._request) from exc
        self._complete = True

    async def aclose(self) -> None:
        # A body read to its end leaves the connection reusable (aiohttp already released
        # it when the body ended, as for a 304); one abandoned half-way (over the cap, an
        # error) must not be read on: closed.
        if self._complete:
            self._response.release()
        else:
            self._response.close()


class CheckedAiohttpTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose connections are aiohttp's, made through CheckedResolver.

    No redirects (httpx's client, and the fetcher, follow them by hand), no decompression
    (httpx does it), no cookies, no proxies from the environment. httpx's per-request
    timeouts map onto aiohttp's: `connect` to the TCP (and TLS) connect, `read` to every read,
    `pool` to waiting for a free connection; the fetcher adds its total deadline around.
    An IP address written in the URL is checked here, since aiohttp does not resolve those.

    A response aiohttp's parser refuses before its body (it is stricter than h11: a body
    longer than its Content-Length that arrives with the headers is read as a broken next
    response) is asked again through httpcore's pool on the same checks (CheckedTransport),
    so a sloppy server gets exactly the answer it got before aiohttp was used.
    """

    def __init__(
        self,
        resolver: Resolver,
        *,
        public_only: bool,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._resolver = CheckedResolver(resolver, public_only=public_only)
        self._public_only = public_only
        self._limits = limits
        self._ssl_context = ssl_context or httpx.create_ssl_context(trust_env=False)
        self._fallback = CheckedTransport(
            CheckedBackend(resolver, public_only=public_only),
            limits=limits,
            ssl_context=self._ssl_context,
        )
        # Made on first use: an aiohttp session belongs to the event loop it was made in.
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            resolver=self._resolver,
            # Every connection asks the resolver, so it connects only to what it checked.
            use_dns_cache=False,
            ssl=self._ssl_context,
            limit=self._limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=self._limits.keepalive_expiry or 0,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._public_only:
            literal = _literal_address(request.url.host)
            if literal is not None and not is_public_address(literal):
                raise UnsafeAddressError(
                    f"it leads to a private or local address ({request.url.host}); only the"
                    " host written in feeds.yaml may be one"
                )
        if self._session is None:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        try:
            response = await self._session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        except aiohttp.ClientResponseError:
            return await self._fallback.handle_async_request(request)
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc, request) from exc
        extensions: dict[str, object] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_AiohttpBody(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self._fallback.aclose()
