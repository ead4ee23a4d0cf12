"""A replayed signed WebSub delivery never makes an item older.

An attacker who captured a genuine signed push can send it again later: its signature
still verifies. Through the real callback route under uvicorn, with the hub stand-in of
tests/service/test_websub.py signing each body with the subscription's secret: v1 is
delivered, the member's correction v2 (later `updated`) is delivered, then v1 is replayed.
The stored and published headline stays v2's, and a genuine later v3 is still applied. An
undated item is never changed by a push; the next poll (the member's own feed) applies it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import feedparser
import httpx
import pytest

from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.service import web
from aggregator.store import Store
from tests.service.test_websub import RSS
from tests.service.test_websub import Hub
from tests.service.test_websub import subscribe
from tests.service.test_websub import subscriber_setup
from tests.service.test_websub import titles
from tests.support.server import FixtureServer

ORIGINAL = "Growers agree to heat breaks"
CORRECTED = "Growers agree to heat breaks after strike vote"
LATER = "Growers agree to heat breaks and shade after strike vote"
# Real dates in the past, so that none is set aside as implausible.
WRITTEN = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


@pytest.fixture
def sites() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


@pytest.fixture
def hub() -> Iterator[Hub]:
    with Hub() as running:
        yield running


def rss_date(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S +0000")


def version(title: str, updated: datetime | None, *, hub: str = "", self_url: str = "") -> bytes:
    """The member's feed with one post; `updated` None: a feed that dates nothing. With
    `hub`, it advertises it (as a feed the service polls must, to keep its subscription)."""
    dates = (
        f"<pubDate>{rss_date(WRITTEN)}</pubDate><atom:updated>{updated.isoformat()}</atom:updated>"
        if updated is not None
        else ""
    )
    links = (
        f'<atom:link rel="hub" href="{hub}"/><atom:link rel="self" href="{self_url}"/>'
        if hub
        else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        "<title>Immokalee Workers News</title><link>https://news.example.org/</link>"
        "<description>News from the fields</description>"
        f"{links}<item><title>{title}</title>"
        "<link>https://news.example.org/2026/heat-breaks/</link>"
        '<guid isPermaLink="false">https://news.example.org/?p=5001</guid>'
        f"{dates}<description>Crews win rest in the shade.</description></item>"
        "</channel></rss>"
    ).encode()


async def published_titles(base: str) -> set[str]:
    async with httpx.AsyncClient(base_url=base) as client:
        answer = await client.get("/feed.atom")
    assert answer.status_code == 200
    return {entry.title for entry in feedparser.parse(answer.content).entries}


async def deliver(hub: Hub, body: bytes) -> None:
    response = await asyncio.to_thread(hub.deliver, body)
    assert response.status_code == 200


def test_a_replayed_old_delivery_does_not_restore_the_old_headline(
    sites: FixtureServer, hub: Hub, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The published feed is read right after each write: no render cache grace period.
    monkeypatch.setattr(web, "VERSION_CHECK_SECONDS", 0.0)
    v1 = version(ORIGINAL, WRITTEN)

    async def scenario() -> None:
        async with subscriber_setup(sites, hub, store) as setup:
            await subscribe(setup, hub, store)
            await deliver(hub, v1)
            await deliver(hub, version(CORRECTED, WRITTEN + timedelta(hours=1)))
            assert CORRECTED in titles(store)

            await deliver(hub, v1)  # the replay: the very bytes, validly signed

            assert CORRECTED in titles(store) and ORIGINAL not in titles(store)
            shown = await published_titles(setup.base)
            assert CORRECTED in shown and ORIGINAL not in shown

            await deliver(hub, version(LATER, WRITTEN + timedelta(hours=2)))
            assert LATER in titles(store) and CORRECTED not in titles(store)
            assert LATER in await published_titles(setup.base)

    asyncio.run(scenario())


def test_an_undated_item_is_changed_by_the_next_poll_not_by_a_push(
    sites: FixtureServer, hub: Hub, store: Store
) -> None:
    async def scenario() -> None:
        async with subscriber_setup(sites, hub, store) as setup:
            await subscribe(setup, hub, store)
            await deliver(hub, version(ORIGINAL, None))
            # Undated, a push cannot be told from a replay of an older one: left alone.
            await deliver(hub, version(CORRECTED, None))
            assert ORIGINAL in titles(store) and CORRECTED not in titles(store)

            # The member's own feed, read by a poll, is what an undated correction needs.
            sites.routes["/feed/"] = Route(
                body=version(CORRECTED, None, hub=hub.url, self_url=setup.feed_url),
                headers={"Content-Type": RSS},
            )
            async with Fetcher() as fetcher:
                (report,) = await poll_all(setup.config, store, fetcher)
            assert report.updated == 1
            assert CORRECTED in titles(store) and ORIGINAL not in titles(store)
            await deliver(hub, version(ORIGINAL, None))  # a replay of the first push
            assert CORRECTED in titles(store) and ORIGINAL not in titles(store)

    asyncio.run(scenario())
