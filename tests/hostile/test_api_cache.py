"""The web server's render cache is bounded by bytes, and unbounded keys are never cached.

`/api/items` kept up to 1,024 answers by count: anonymous requests varying the cursor grew
the server from 77 MB to 1 GB in 60 requests. Served by uvicorn over a real SQLite file,
many distinct cacheable requests must keep the cache's byte total under its cap, and
answers to `before`, `q` and `full=1` (and the page's ?q= and ?before=) must not be kept.
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import format_datetime

import httpx

from aggregator.demo.server import Route
from aggregator.service import web
from aggregator.store import Store
from tests.hostile.server import config_for
from tests.hostile.server import poll
from tests.service.test_websub import serving
from tests.support.server import FixtureServer

RSS_TYPE = {"Content-Type": "application/rss+xml; charset=utf-8"}
CAP = 40_000  # bytes: a few dozen answers, so that many requests must evict


def feed(count: int) -> bytes:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    items = "".join(
        f"<item><title>Story {n} about the harvest</title><link>https://m.example/{n}</link>"
        f"<description>{'Long summary text. ' * 20}</description>"
        f"<pubDate>{format_datetime(start + timedelta(hours=n))}</pubDate></item>"
        for n in range(count)
    )
    return f"<rss version='2.0'><channel><title>m</title>{items}</channel></rss>".encode()


def test_the_render_cache_stays_under_its_byte_cap(
    server: FixtureServer, sqlite_store: Store
) -> None:
    server.routes["/feed.xml"] = Route(body=feed(60), headers=RSS_TYPE)
    config = config_for({"grower": [server.url("/feed.xml")]})
    poll(config, sqlite_store)
    app = web.create_app(config, sqlite_store)
    state = web._state_of(app)
    state.max_cache_bytes = CAP
    cursor_holder: list[str] = []

    async def scenario() -> None:
        async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
            # Every limit and a run of made-up languages: distinct keys a visitor controls.
            for limit in range(1, 101):
                response = await client.get(f"/api/items?limit={limit}")
                assert response.status_code == 200
                if response.json()["next"]:
                    cursor_holder.append(response.json()["next"])
                assert state.cache_bytes <= CAP
            for n in range(100):
                lang = "x" + "".join(chr(ord("a") + int(d)) for d in f"{n:03d}")
                assert (await client.get(f"/api/items?lang={lang}")).status_code == 200
                assert state.cache_bytes <= CAP
            held = sum(len(rendered.document.body) for rendered in state.cache.values())
            assert held == state.cache_bytes
            assert len(state.cache) > 1  # it still caches
            # Keys a visitor can vary without end are answered but never kept.
            state.cache.clear()
            state.cache_bytes = 0
            for query in (
                f"/api/items?before={cursor_holder[0]}",
                "/api/items?q=harvest",
                "/api/items?full=1",
                f"/?before={cursor_holder[0]}",
                "/?q=harvest",
            ):
                response = await client.get(query)
                assert response.status_code == 200, query
            assert state.cache_bytes == 0
            assert not state.cache
            assert (await client.get("/api/items")).status_code == 200
            assert len(state.cache) == 1

    asyncio.run(scenario())
