"""The WebSub callback route bounds what a hub's verification can set.

`hub.lease_seconds=99999999999999` made the expiry date overflow and the callback answer
500. Through the real callback route under uvicorn, with a hub stand-in on 127.0.0.1, the
challenge is echoed and the lease stored is at most MAX_LEASE_SECONDS.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx

from aggregator.service.websub.rules import MAX_LEASE_SECONDS
from aggregator.service.websub.rules import SubscriptionState
from aggregator.service.websub.rules import callback_url
from aggregator.store import Store
from tests.service.test_websub import NOW
from tests.service.test_websub import Hub
from tests.service.test_websub import subscriber_setup
from tests.support.server import FixtureServer


def test_a_huge_lease_is_bounded_not_a_500(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'aggregator.db'}")
    try:
        with FixtureServer() as sites, Hub(answer=202) as hub:

            async def scenario() -> None:
                async with subscriber_setup(sites, hub, store, now=lambda: NOW) as setup:
                    record = store.websub_subscriptions()[0]
                    store.save_websub_state(record.callback_id, SubscriptionState.PENDING)
                    async with httpx.AsyncClient() as client:
                        answer = await client.get(
                            callback_url(setup.base, record.callback_id),
                            params={
                                "hub.mode": "subscribe",
                                "hub.topic": record.topic,
                                "hub.challenge": "c4ll3nge",
                                "hub.lease_seconds": "99999999999999",
                            },
                        )
                    assert (answer.status_code, answer.text) == (200, "c4ll3nge")

            asyncio.run(scenario())
        (row,) = store.websub_subscriptions()
        assert row.state == SubscriptionState.ACTIVE
        assert row.lease_expires_at == NOW + timedelta(seconds=MAX_LEASE_SECONDS)
    finally:
        store.close()
