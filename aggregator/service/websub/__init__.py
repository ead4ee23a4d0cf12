"""WebSub (W3C Recommendation, https://www.w3.org/TR/websub/) in both directions.

* rules.py: subscription states and decisions, signatures (pure);
* subscriber.py: subscribing to the hubs member feeds advertise, and taking in what they
  deliver; callback.py: the routes the hubs call;
* publisher.py: pinging our own hub when our feeds change;
* here, `WebSubService`: the two wired into the running service (service/app.py registers
  its `on_report` and `set_config` on the scheduler's hooks).

This package must never change when sources are polled, and never subscribe in a process
that serves no callback (`--role worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import httpx
from starlette.applications import Starlette

from aggregator import USER_AGENT
from aggregator.clock import Clock
from aggregator.clock import utc_now
from aggregator.errors import AggregatorError
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.safety import Resolver
from aggregator.ingest.safety import system_resolver
from aggregator.models import Config
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.service.websub.callback import install_routes
from aggregator.service.websub.publisher import HubPinger
from aggregator.service.websub.publisher import member_tag_slugs
from aggregator.service.websub.rules import DEFAULT_SETTINGS
from aggregator.service.websub.rules import WebSubSettings
from aggregator.service.websub.rules import changed_feed_urls
from aggregator.service.websub.subscriber import WebSubSubscriber
from aggregator.store import Store
from aggregator.store import StoreWriter

logger = logging.getLogger(__name__)


class WebSubService:
    """The subscriber and the pinger wired into the running service.

    `install(app)` before serving; service/app.py appends `on_report` and `set_config` to
    the scheduler's hooks and calls `start` once the scheduler runs; `aclose` at the end.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        resolver: Resolver = system_resolver,
        now: Clock = utc_now,
        settings: WebSubSettings = DEFAULT_SETTINGS,
        subscribe: bool = True,
    ) -> None:
        self.store = store
        self.settings = settings
        self.subscribe = subscribe  # False: only ping our hub (a process serving no callback)
        self.client = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            timeout=settings.request_timeout,
            follow_redirects=False,  # a hub's redirect could lead anywhere; it is an error
        )
        self.subscriber = WebSubSubscriber(
            store,
            config,
            client=self.client,
            resolver=resolver,
            now=now,
            settings=settings,
            on_report=self.on_report,
        )
        self.pinger = HubPinger(self.client, lambda: self.config, settings=settings)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def config(self) -> Config:
        return self.subscriber.config

    def install(self, app: Starlette) -> None:
        install_routes(app, self.subscriber)

    def set_config(self, config: Config) -> None:
        self.subscriber.config = config
        self._wake.set()  # a source may have left: unsubscribe soon

    def on_report(self, report: PollReport) -> None:
        """After a poll or a delivery: ping for changed feeds, look for a new hub soon."""
        if report.outcome in (PollOutcome.NEW, PollOutcome.UPDATED):
            config = self.config
            if config.network.websub_hub is not None:
                member_id = report.source.member_id
                tags = member_tag_slugs(self.store, config, member_id)
                self.pinger.notice(changed_feed_urls(config.network, member_id, tags))
        if report.outcome is not PollOutcome.FAILED:
            self._wake.set()

    def start(
        self,
        fetcher: Fetcher | None = None,
        busy: Callable[[], bool] | None = None,
        writer: StoreWriter | None = None,
    ) -> None:
        """Start looking over subscriptions (at once, then every check_seconds, and soon
        after a poll or a reload). `fetcher`: the scheduler's, for deliveries to `follow:`
        sources; `busy`: whether polls are in flight, so that pings wait for the round;
        `writer`: the scheduler's, which stores deliveries with the polls."""
        if fetcher is not None:
            self.subscriber.fetcher = fetcher
        if writer is not None:
            self.subscriber.writer = writer
        if busy is not None:
            self.pinger.busy = busy
        if not self.subscribe:
            if self.config.network.websub_callback_base is not None:
                logger.warning(
                    "this process serves no WebSub callback (--role worker): "
                    "member feeds are polled only; run one process with --role all for WebSub"
                )
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="websub")

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.subscriber.reconcile()
            except AggregatorError as exc:
                logger.error("looking over WebSub subscriptions failed: %s", exc)
            except Exception:
                # The task lives as long as the service: any fault is logged, and the next
                # look (a poll, a reload or check_seconds later) tries again.
                logger.exception("looking over WebSub subscriptions failed unexpectedly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.check_seconds)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.wait_for(self.pinger.aclose(), self.settings.request_timeout)
        except TimeoutError:
            logger.warning("the WebSub hub did not answer the last ping in time")
        await self.client.aclose()
