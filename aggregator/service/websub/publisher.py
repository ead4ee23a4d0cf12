"""The WebSub publisher: with `network.websub_hub` set, tells that hub which of our feeds
changed (hub.mode=publish, one hub.url per feed) after a poll or a delivery stored new or
updated items: the combined feeds, the member's and its topics', each once per burst.
The published subscription feeds advertise that hub (publish/site.py).

This module must never ping for a feed that did not change, never ping more than once per
feed per burst of polls, and never subscribe to anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from collections.abc import Iterable

import httpx

from aggregator.ingest.fetch import describe_exception
from aggregator.ingest.fetch import describe_status
from aggregator.models import Config
from aggregator.service.websub.rules import DEFAULT_SETTINGS
from aggregator.service.websub.rules import WebSubSettings
from aggregator.store import Store
from aggregator.text import tag_slug

logger = logging.getLogger(__name__)


class HubPinger:
    """Tells the network's hub (`network.websub_hub`) which of our feeds changed.

    Changes are collected and sent once the burst is over (no change for
    ping_debounce_seconds and no poll in flight, at most ping_max_wait_seconds), so a round
    of polls in which many sources had news pings each feed once.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: Callable[[], Config],
        *,
        settings: WebSubSettings = DEFAULT_SETTINGS,
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self.client = client
        self.config = config
        self.settings = settings
        self.busy = busy  # e.g. "polls are in flight": wait for the round to end
        self.pending: set[str] = set()
        self._flush: asyncio.Task[list[str]] | None = None

    def notice(self, urls: Iterable[str]) -> None:
        """Remember these feeds changed; the ping goes out when the burst is over."""
        if self.config().network.websub_hub is None:
            return
        self.pending.update(urls)
        if self.pending and (self._flush is None or self._flush.done()):
            self._flush = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> list[str]:
        delay = self.settings.ping_debounce_seconds
        accepted: list[str] = []
        # Feeds noticed while a flush is sending wait for the next turn of this loop.
        while self.pending:
            waited = 0.0
            await asyncio.sleep(delay)
            while self.busy() and waited < self.settings.ping_max_wait_seconds:
                await asyncio.sleep(delay)
                waited += delay
            accepted += await self.flush()
        return accepted

    async def flush(self) -> list[str]:
        """Ping the hub now for every feed noticed; returns the feeds it accepted."""
        urls = sorted(self.pending)
        self.pending.clear()
        hub = self.config().network.websub_hub
        if hub is None:
            return []
        accepted = []
        for url in urls:
            try:
                response = await self.client.post(hub, data={"hub.mode": "publish", "hub.url": url})
            except httpx.HTTPError as exc:
                cause = describe_exception(exc, self.config().network.limits)
                logger.warning("pinging the WebSub hub %s about %s failed: %s", hub, url, cause)
                continue
            if response.is_success:
                accepted.append(url)
            else:
                logger.warning(
                    "the WebSub hub %s answered %s to the ping about %s",
                    hub,
                    describe_status(response.status_code),
                    url,
                )
        if accepted:
            logger.info("told the WebSub hub %s about %d changed feed(s)", hub, len(accepted))
        return accepted

    async def aclose(self) -> None:
        """Send what is waiting now rather than lose it."""
        if self._flush is not None and not self._flush.done():
            self._flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush
        if self.pending:
            await self.flush()


def member_tag_slugs(store: Store, config: Config, member_id: str) -> set[str]:
    """The published tag feeds a member's news can change: its own tags in feeds.yaml and
    those of its latest stories."""
    member = config.member(member_id)
    tags = {tag_slug(tag) for tag in member.tags}
    stories = store.latest_stories(config.network.items_per_feed, member_id=member_id)
    tags.update(tag_slug(tag) for story in stories for tag in story.tags)
    return tags & set(store.tag_slugs())
