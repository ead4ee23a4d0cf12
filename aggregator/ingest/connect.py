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

This module never decides what is safe (aggregator.ingest.safety does) and never reads or
parses responses.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import httpcore
import httpx

from aggregator.ingest.safety import Resolver
from aggregator.ingest.safety import lookup
from aggregator.ingest.safety import public_addresses


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
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )
