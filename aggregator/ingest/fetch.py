"""Fetching: one HTTP poll of one source, as a FetchResult.

Owns the httpx client and its limits: a shared connection pool, a concurrency limit,
per-phase timeouts plus a total deadline (a server trickling a byte a second cannot hold
a poll forever), a cap on the decompressed body size enforced while streaming, redirects
followed by hand up to a limit with each target checked first (aggregator.ingest.safety: only
the host staff wrote may be private), connections made to the very addresses that were
checked (aggregator.ingest.connect: no DNS rebinding), conditional GET from stored validators.
The connections under the httpx client are aiohttp's (aggregator.ingest.connect explains why).

It never raises for a fault of the remote side: an HTTP error, a refused connection or a
timeout is a FetchResult with `error` set in words staff can act on, so one broken member
never stops the others. It never parses or stores anything.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import socket
import ssl
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urlsplit

import httpcore
import httpx

from aggregator import USER_AGENT
from aggregator.ingest.connect import CheckedAiohttpTransport
from aggregator.ingest.connect import CheckedBackend
from aggregator.ingest.connect import CheckedTransport
from aggregator.ingest.connect import NameNotFoundError
from aggregator.ingest.safety import Resolver
from aggregator.ingest.safety import UnsafeAddressError
from aggregator.ingest.safety import check_redirect
from aggregator.ingest.safety import system_resolver
from aggregator.ingest.safety import trusted_host
from aggregator.models import CacheValidators
from aggregator.models import FetchLimits
from aggregator.models import FetchResult
from aggregator.models import SourceConfig

ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.8, */*;q=0.5"
)

HTTP_REASONS = {
    400: "bad request",
    401: "the site asks for a password",
    403: "access forbidden",
    404: "not found",
    405: "method not allowed",
    408: "the server timed out",
    410: "gone: the site says this address was removed for good",
    429: "too many requests: the site asks us to slow down",
    500: "server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


# The causes that mean no server could be reached at all. When every source of a poll round
# fails with the same one, the fault is this machine's network, not the members' sites
# (schedule.offline_cause); they are named once here so that both sides agree.
DNS_FAILED = "could not find the server (DNS lookup failed)"
CONNECTION_REFUSED = "connection refused: the server is not accepting connections"
UNREACHABLE_CAUSES = frozenset({DNS_FAILED, CONNECTION_REFUSED})


class ResponseTooLargeError(Exception):
    """Raised inside the fetcher to abort a body over the cap; never leaves this module."""


def describe_status(status: int) -> str:
    reason = HTTP_REASONS.get(status)
    if reason is None:
        reason = "server error" if status >= 500 else "unexpected response"
    return f"HTTP {status} ({reason})"


def describe_exception(exc: BaseException, limits: FetchLimits) -> str:
    """The cause of a failed request in words a staff member can act on."""
    if isinstance(exc, ResponseTooLargeError):
        return f"response larger than {limits.max_bytes // (1024 * 1024)} MB: not read"
    if isinstance(exc, TimeoutError):
        return f"no complete answer within {limits.total_timeout:g} s"
    if isinstance(exc, httpx.TooManyRedirects):
        return f"too many redirects (more than {limits.max_redirects}), or a redirect loop"
    if isinstance(exc, UnsafeAddressError):
        return f"a redirect or found address was refused for safety: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke off the connection before sending the whole answer"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out waiting for the server"
    if isinstance(exc, httpx.ConnectError):
        causes = list(_exception_chain(exc))
        if any(isinstance(cause, ssl.SSLError) for cause in causes):
            return f"secure connection (TLS) failed: {exc}"
        if any(isinstance(cause, (socket.gaierror, NameNotFoundError)) for cause in causes):
            return DNS_FAILED
        if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
            return CONNECTION_REFUSED
        return f"could not connect: {exc}"
    if isinstance(exc, httpx.InvalidURL):
        return f"the address is malformed: {exc}"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return "only http and https addresses can be fetched"
    if isinstance(exc, httpx.DecodingError):
        return "the response was corrupt (bad compression)"
    if isinstance(exc, httpx.HTTPError):
        return f"the connection failed: {exc.__class__.__name__} {exc}".strip()
    return f"unexpected error: {exc.__class__.__name__}: {exc}"


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and, for exception groups, their members."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


def cache_max_age(headers: httpx.Headers) -> int | None:
    """Cache-Control max-age in seconds; None when absent, malformed or no-cache/no-store."""
    directives = [part.strip().lower() for part in headers.get_list("cache-control", True)]
    if "no-cache" in directives or "no-store" in directives:
        return None
    for directive in directives:
        name, _, value = directive.partition("=")
        if name.strip() == "max-age" and value.strip().strip('"').isdigit():
            return int(value.strip().strip('"'))
    return None


def retry_after(headers: httpx.Headers, now: datetime) -> datetime | None:
    """Retry-After as a moment: delay-seconds or an HTTP date (RFC 9110 10.2.3)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        try:
            return now + timedelta(seconds=int(value))
        except OverflowError:
            return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def host_key(url: str) -> str:
    """The host a request goes to, for the per-host limit (port included)."""
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return url


logger = logging.getLogger(__name__)

# What a hostile or broken site can make a request raise, described in words by
# describe_exception; anything else is logged with its traceback too (it is a bug of ours).
EXPECTED_FAULTS = (
    httpx.HTTPError,
    httpx.InvalidURL,
    TimeoutError,
    ResponseTooLargeError,
    ssl.SSLError,
    UnsafeAddressError,
)


class NoCookies(http.cookiejar.CookieJar):
    """A cookie jar that keeps nothing.

    A feed poller has no use for cookies, and one shared jar lets a member's host set
    cookies for a public suffix (`.wordpress.com`, `.github.io`, `.org.uk`) that every other
    member's request then carries: enough of them and those servers answer 400.
    """

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: object, request: object) -> None:
        return None


class Fetcher:
    """Polls sources over one shared httpx.AsyncClient. Use as an async context manager."""

    def __init__(
        self,
        limits: FetchLimits | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        connector: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """`resolver` looks up every host, for the checks and the connections alike;
        `connector` opens the connections to the checked addresses (tests map a public
        address to a local server), on httpcore's pool instead of aiohttp's. A `transport`
        replaces both connection pools and their checks (tests that map host names);
        redirects are still checked first."""
        self.limits = limits or FetchLimits()
        self._resolver = resolver or system_resolver
        self._clock = clock or (lambda: datetime.now(UTC))
        self._semaphore = asyncio.Semaphore(self.limits.concurrency)
        self._host_semaphores: dict[str, asyncio.Semaphore] = {}
        pool_limits = httpx.Limits(
            max_connections=self.limits.concurrency,
            max_keepalive_connections=self.limits.concurrency,
        )

        # Loading the CA bundle costs tens of milliseconds: one context for both pools.
        ssl_context = httpx.create_ssl_context(trust_env=False)

        def checked_transport(public_only: bool) -> httpx.AsyncBaseTransport:
            if connector is None:
                return CheckedAiohttpTransport(
                    self._resolver,
                    public_only=public_only,
                    limits=pool_limits,
                    ssl_context=ssl_context,
                )
            backend = CheckedBackend(self._resolver, public_only=public_only, connector=connector)
            return CheckedTransport(backend, limits=pool_limits, ssl_context=ssl_context)

        def client(public_only: bool) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
                timeout=httpx.Timeout(
                    self.limits.read_timeout, connect=self.limits.connect_timeout
                ),
                # Followed by hand in _follow, so each target is checked before it is requested.
                follow_redirects=False,
                limits=pool_limits,
                transport=transport or checked_transport(public_only),
                cookies=httpx.Cookies(NoCookies()),
                # Proxies from the environment would route member sites (and the offline
                # demo on 127.0.0.1) through a machine-wide setting nobody chose for us.
                trust_env=False,
            )

        # Requests to the host staff wrote for the source, which may be private; requests
        # to any other host, which may reach public addresses only. Separate pools, so a
        # connection made to a trusted host's private address never serves anyone else.
        self._trusted_client = client(public_only=False)
        self._client = client(public_only=True) if transport is None else self._trusted_client

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._trusted_client is not self._client:
            await self._trusted_client.aclose()

    def now(self) -> datetime:
        """The fetcher's clock (tests pass their own): when a poll happened."""
        return self._clock()

    @property
    def resolver(self) -> Resolver:
        """How this fetcher looks up host names for its safety checks (aggregator.ingest.safety);
        autodiscovery and `follow:` check the links they find with the same one."""
        return self._resolver

    def _host_semaphore(self, url: str) -> asyncio.Semaphore:
        host = host_key(url)
        if host not in self._host_semaphores:
            self._host_semaphores[host] = asyncio.Semaphore(self.limits.per_host)
        return self._host_semaphores[host]

    async def fetch(
        self, source: SourceConfig, validators: CacheValidators, *, found_from: str | None = None
    ) -> FetchResult:
        """One GET of `source.url`, redirects followed; never raises (but for cancellation).

        `found_from`: the address staff wrote in feeds.yaml when `source.url` was found rather
        than written (a discovered or remembered feed, a story page): only that address's
        host may be private. By default `source.url` is the address staff wrote.
        """
        # The host slot is taken before the global one, so sources queued behind a busy
        # host never hold global slots that other hosts could use.
        async with self._host_semaphore(source.url), self._semaphore:
            fetched_at = self._clock()
            try:
                async with asyncio.timeout(self.limits.total_timeout):
                    trusted = trusted_host(found_from or source.url)
                    return await self._fetch(source, validators, fetched_at, trusted)
            # Any fault is this source's failure, never the round's: a hostile link must
            # not stop everyone else's news (httpx.InvalidURL is not an httpx.HTTPError).
            except Exception as exc:
                if not isinstance(exc, EXPECTED_FAULTS):
                    logger.warning("%s: unexpected fetch error", source.url, exc_info=exc)
                return FetchResult(
                    source=source,
                    fetched_at=fetched_at,
                    final_url=source.url,
                    status=None,
                    error=describe_exception(exc, self.limits),
                )

    async def _fetch(
        self,
        source: SourceConfig,
        validators: CacheValidators,
        fetched_at: datetime,
        trusted: str | None,
    ) -> FetchResult:
        headers = {}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        response, moved_to = await self._follow(source.url, headers, trusted)
        try:
            final_url = str(response.url)
            if response.status_code == 304:
                return FetchResult(
                    source=source,
                    fetched_at=fetched_at,
                    final_url=final_url,
                    status=304,
                    validators=validators,
                    permanent_redirect=moved_to,
                    cache_max_age=cache_max_age(response.headers),
                )
            if response.status_code >= 400 or response.status_code < 200:
                return FetchResult(
                    source=source,
                    fetched_at=fetched_at,
                    final_url=final_url,
                    status=response.status_code,
                    error=describe_status(response.status_code),
                    permanent_redirect=moved_to,
                    retry_after=retry_after(response.headers, fetched_at),
                )
            content = await self._read_capped(response)
            return FetchResult(
                source=source,
                fetched_at=fetched_at,
                final_url=final_url,
                status=response.status_code,
                content=content,
                content_type=response.headers.get("content-type"),
                validators=CacheValidators(
                    etag=response.headers.get("etag"),
                    last_modified=response.headers.get("last-modified"),
                ),
                permanent_redirect=moved_to,
                cache_max_age=cache_max_age(response.headers),
                retry_after=retry_after(response.headers, fetched_at),
            )
        finally:
            await response.aclose()

    async def _follow(
        self, url: str, headers: dict[str, str], trusted: str | None
    ) -> tuple[httpx.Response, str | None]:
        """GET `url`, following up to max_redirects redirects; the open final response and
        where the source moved for good (the address after the leading 301/308 hops: a
        temporary hop before it means the configured address must stay).

        Each address is checked (aggregator.ingest.safety) before it is requested, the first
        one too (it may be a remembered one), so a hacked public site cannot send us to
        127.0.0.1, the office network or a metadata service: only the `trusted` host may be
        private, whatever the other hosts resolve to. The connection checks again what it
        connects to (aggregator.ingest.connect).
        """
        moved_to: str | None = None
        permanent = True
        for _ in range(self.limits.max_redirects + 1):
            await check_redirect(url, self._resolver, trusted=trusted)
            on_trusted_host = trusted is not None and trusted_host(url) == trusted
            client = self._trusted_client if on_trusted_host else self._client
            request = client.build_request("GET", url, headers=headers)
            response = await client.send(request, stream=True)
            location = response.headers.get("location")
            if not response.is_redirect or location is None:
                return response, moved_to
            await response.aclose()
            try:
                target = str(response.url.join(location))
            except httpx.InvalidURL as exc:
                raise UnsafeAddressError(f"it leads to a malformed address ({exc})") from exc
            if permanent and response.status_code in (301, 308):
                moved_to = target
            else:
                permanent = False
            url = target
        raise httpx.TooManyRedirects(
            f"more than {self.limits.max_redirects} redirects", request=request
        )

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise ResponseTooLargeError
        chunks: list[bytes] = []
        size = 0
        # aiter_bytes yields decompressed data, so the cap also defuses a gzip bomb.
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise ResponseTooLargeError
            chunks.append(chunk)
        return b"".join(chunks)
