"""Background tasks of `aggregator run` survive any one bad input and log it.

A JSON Feed whose WebSub hub address ends in U+0001 made httpx raise InvalidURL (no
httpx.HTTPError) inside the WebSub task, which caught only AggregatorError: the task died
for good and no other member got a subscription, even after a restart, since the bad record
came first again. Here the bad hub is found by a real poll, the task runs as the service
runs it, and a real hub stand-in on 127.0.0.1 must still verify the good member's
subscription, while the bad one is logged with its member and source.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.service import web
from aggregator.service.websub import WebSubService
from aggregator.service.websub.rules import SubscriptionState
from aggregator.store import Store
from tests.service.test_websub import QUICK
from tests.service.test_websub import RSS
from tests.service.test_websub import WORDPRESS
from tests.service.test_websub import Hub
from tests.service.test_websub import config_text
from tests.service.test_websub import feed_body
from tests.service.test_websub import serving
from tests.service.test_websub import wait_until
from tests.service.test_websub import with_network
from tests.support.server import FixtureServer


def json_feed_with_hub(feed_url: str, hub: str) -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Hostile member",
            "home_page_url": "https://hostile.example.org/",
            "feed_url": feed_url,
            "hubs": [{"type": "WebSub", "url": hub}],
            "items": [
                {
                    "id": "https://hostile.example.org/1",
                    "url": "https://hostile.example.org/1",
                    "title": "A post from the hostile member",
                    "content_text": "Text.",
                    "date_published": "2026-11-20T10:00:00Z",
                }
            ],
        }
    ).encode()


def test_a_hub_address_with_a_control_character_does_not_stop_the_websub_task(
    store_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with FixtureServer() as sites, Hub() as hub:
        bad_feed, good_feed = sites.url("/hostile.json"), sites.url("/feed/")
        sites.routes["/hostile.json"] = Route(
            body=json_feed_with_hub(bad_feed, hub.url + "\u0001"),
            headers={"Content-Type": "application/feed+json"},
        )
        sites.routes["/feed/"] = Route(
            body=feed_body(WORDPRESS, hub.url, good_feed), headers={"Content-Type": RSS}
        )
        # The hostile member is listed (and so looked over) first.
        config = parse_config(config_text(bad_feed, second_feed=good_feed))
        store = Store.open(store_path)
        try:
            store.sync_config(config)

            async def scenario() -> None:
                async with Fetcher() as fetcher:
                    await poll_all(config, store, fetcher)
                hubs = {record.source_url: record.hub for record in store.websub_subscriptions()}
                assert hubs == {bad_feed: hub.url + "\u0001", good_feed: hub.url}
                app = web.create_app(config, store)
                service = WebSubService(config, store, settings=QUICK)
                service.install(app)
                try:
                    async with serving(app) as base:
                        service.set_config(with_network(config, websub_callback_base=base))
                        service.start()
                        await wait_until(
                            lambda: len(hub.subscriptions) == 1, "the good member's subscription"
                        )
                        assert service._task is not None and not service._task.done()
                finally:
                    await service.aclose()

            with caplog.at_level(logging.WARNING, logger="aggregator.service.websub"):
                asyncio.run(scenario())
            (subscription,) = hub.subscriptions.values()
            assert subscription.topic == good_feed
            states = {record.source_url: record for record in store.websub_subscriptions()}
            assert states[good_feed].state == SubscriptionState.ACTIVE
            assert states[bad_feed].state == SubscriptionState.FAILED
            assert states[bad_feed].last_error is not None
            said = caplog.text
            assert bad_feed in said
        finally:
            store.close()


@pytest.fixture
def store_path(tmp_path: object) -> str:
    return f"sqlite:///{tmp_path}/aggregator.db"
