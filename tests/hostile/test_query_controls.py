"""A control character in an API parameter is a 400 naming it, on both databases.

`/api/items?q=%00` answered 500 with a traceback on every request under PostgreSQL (NUL is
not valid in PostgreSQL text). Served by uvicorn as in production, over a real SQLite file
and the test PostgreSQL database, the answer must be the same 400.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from aggregator.service import web
from aggregator.store import Store
from tests.hostile.server import config_for
from tests.service.test_websub import serving


@pytest.mark.parametrize(
    "query",
    ["q=%00", "q=heat%00standard", "q=%1b%5d0%3bpwned%07", "tag=farm%00", "member=a%00"],
)
def test_control_characters_in_parameters_are_a_400(store: Store, query: str) -> None:
    config = config_for({"good": ["http://127.0.0.1:9/feed.xml"]})
    store.sync_config(config)
    app = web.create_app(config, store)

    async def scenario() -> list[httpx.Response]:
        async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
            return [await client.get(f"/api/items?{query}") for _ in range(2)]

    for response in asyncio.run(scenario()):
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["parameter"] == query.split("=")[0]
        assert "control characters" in body["error"]
