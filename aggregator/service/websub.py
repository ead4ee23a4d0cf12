"""WebSub (W3C Recommendation, https://www.w3.org/TR/websub/) in both directions.

Subscriber. A poll records the hub a member's feed advertises (poll.advertised_hub, kept
by the store). `aggregator run` then asks that hub to push the feed to
`{network.websub_callback_base}/websub/{callback id}`, with a random secret per
subscription, and renews before the lease ends. The hub's verification of intent (GET) is
confirmed only for a subscription we asked for, with the same topic; a delivery (POST) is
stored only when its X-Hub-Signature (HMAC of the raw body with that secret) verifies,
through poll.ingest_body, the same parse -> normalize -> filter -> store path as a poll, so
a member's new post is published within seconds. A bad or missing signature is answered
2xx and discarded, as the spec requires. Polling goes on unchanged as the fallback. When a
source leaves feeds.yaml its subscription is ended (hub.mode=unsubscribe).

Publisher. With `network.websub_hub` set, the published subscription feeds advertise that
hub (publish/site.py), and after a poll or a delivery that stored new or updated items the
hub is told which of our feeds changed (hub.mode=publish, one hub.url per feed): the
combined feeds, the member's and its topics', each once per burst of polls.

This module must never subscribe without `network.websub_callback_base` (without a public
address no hub can reach us), never contact a hub that a feed on a public address names on
a private one (aggregator.ingest.safety), never store a delivery whose signature does not verify,
and never change when sources are polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING
from typing import Literal
from urllib.parse import quote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.responses import Response

from aggregator import USER_AGENT
from aggregator.clock import Clock
from aggregator.clock import utc_now
from aggregator.errors import AggregatorError
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.fetch import describe_exception
from aggregator.ingest.fetch import describe_status
from aggregator.ingest.poll import ingest_body
from aggregator.ingest.poll import poll_settings
from aggregator.ingest.safety import Resolver
from aggregator.ingest.safety import UnsafeAddressError
from aggregator.ingest.safety import check_discovered_link
from aggregator.ingest.safety import system_resolver
from aggregator.models import GONE_STATUS
from aggregator.models import Config
from aggregator.models import NetworkConfig
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.models import SourceConfig
from aggregator.models import WebSubRecord
from aggregator.publish.site import FEED_FORMATS
from aggregator.publish.syndication import feed_self_url
from aggregator.store import Store
from aggregator.text import tag_slug

if TYPE_CHECKING:
    from aggregator.service.scheduler import PollScheduler

logger = logging.getLogger(__name__)

ReportCallback = Callable[[PollReport], None]
Action = Literal["subscribe", "unsubscribe", "forget"]

CALLBACK_PATH = "/websub/{callback_id}"
SIGNATURE_HEADER = "X-Hub-Signature"
# The spec's algorithms (section 8); sha1 only because hubs still send it.
SIGNATURE_ALGORITHMS: Mapping[str, Callable[[], hashlib._Hash]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
MAX_CHALLENGE = 1024  # longer is no hub's challenge: not echoed


class SubscriptionState(StrEnum):
    NEW = "new"  # the feed advertises a hub; nothing asked yet
    PENDING = "pending"  # subscribe sent, the hub has not verified it yet
    ACTIVE = "active"  # verified; deliveries are accepted until the lease ends
    UNSUBSCRIBING = "unsubscribing"  # the source left feeds.yaml; unsubscribe sent
    DENIED = "denied"  # the hub said no (hub.mode=denied)
    FAILED = "failed"  # the hub did not accept the request; tried again later
    REFUSED = "refused"  # the hub is on a private address named by a public feed: never


ACCEPTING = frozenset({SubscriptionState.PENDING, SubscriptionState.ACTIVE})


@dataclass(frozen=True)
class WebSubSettings:
    """Every number of the WebSub behaviour, written once."""

    lease_seconds: int = 10 * 24 * 3600  # asked for; the hub decides
    renew_before: timedelta = timedelta(days=1)  # renew when the lease ends sooner than this
    retry_after: timedelta = timedelta(hours=1)  # an unverified or failed request is re-sent
    denied_retry_after: timedelta = timedelta(days=1)
    unsubscribe_timeout: timedelta = timedelta(days=1)  # then the row is dropped anyway
    check_seconds: float = 60.0  # how often subscriptions are looked over
    request_timeout: float = 10.0  # for each request to a hub
    ping_debounce_seconds: float = 5.0  # changes within this make one ping per feed …
    ping_max_wait_seconds: float = 60.0  # … unless polls keep running longer than this


DEFAULT_SETTINGS = WebSubSettings()


# --- the rules (pure) -----------------------------------------------------------------


def callback_url(base: str, callback_id: str) -> str:
    """Where the hub reaches the subscription `callback_id` (base has no trailing "/")."""
    return f"{base.rstrip('/')}/websub/{callback_id}"


def next_action(
    record: WebSubRecord,
    *,
    now: datetime,
    in_config: bool,
    callback: str | None,
    settings: WebSubSettings = DEFAULT_SETTINGS,
) -> Action | None:
    """What to do about one subscription now; `callback` is None without a callback base."""
    state = record.state
    since = now - record.requested_at if record.requested_at is not None else None

    def waited(delay: timedelta) -> bool:
        return since is None or since >= delay

    if not in_config:
        if state in ACCEPTING and record.callback_url is not None:
            return "unsubscribe"
        if state == SubscriptionState.UNSUBSCRIBING:
            return "forget" if waited(settings.unsubscribe_timeout) else None
        return "forget"
    if callback is None or state == SubscriptionState.REFUSED:
        return None
    if state in (SubscriptionState.NEW, SubscriptionState.UNSUBSCRIBING):
        return "subscribe"
    if state in (SubscriptionState.PENDING, SubscriptionState.FAILED):
        return "subscribe" if waited(settings.retry_after) else None
    if state == SubscriptionState.DENIED:
        return "subscribe" if waited(settings.denied_retry_after) else None
    # Active: renew before the lease runs out, or at once when our address changed.
    if record.callback_url != callback:
        return "subscribe"
    expiring = (
        record.lease_expires_at is None or record.lease_expires_at - now <= settings.renew_before
    )
    return "subscribe" if expiring and waited(settings.retry_after) else None


def sign(secret: str, body: bytes, algorithm: str = "sha256") -> str:
    """The X-Hub-Signature value a hub sends for `body`: "sha256=<hex HMAC>"."""
    digest = hmac.new(secret.encode(), body, SIGNATURE_ALGORITHMS[algorithm]).hexdigest()
    return f"{algorithm}={digest}"


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Whether an X-Hub-Signature header is the HMAC of `body` with `secret`."""
    if not header:
        return False
    algorithm, _, given = header.strip().partition("=")
    algorithm = algorithm.strip().lower()
    if algorithm not in SIGNATURE_ALGORITHMS or not given:
        return False
    expected = hmac.new(secret.encode(), body, SIGNATURE_ALGORITHMS[algorithm]).hexdigest()
    # Constant time, so the answer's timing tells a forger nothing about the right HMAC.
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode())


def changed_feed_urls(network: NetworkConfig, member_id: str, tags: Iterable[str]) -> list[str]:
    """The self URLs of our subscription feeds that change when `member_id` has a new or
    updated story carrying these tag slugs: combined, the member's and those tags'."""
    prefixes = ["", f"members/{member_id}/"]
    prefixes += [f"tags/{tag}/" for tag in sorted(set(tags))]
    return [
        feed_self_url(network, quote(f"{prefix}feed.{extension}", safe="/"))
        for prefix in prefixes
        for extension in FEED_FORMATS
    ]


# --- the subscriber -------------------------------------------------------------------


class WebSubSubscriber:
    """Subscribes to the hubs member feeds advertise and takes in what they deliver.

    `config` may be replaced at any time (a reloaded feeds.yaml). `reconcile` does every
    (un)subscription that is due; `verify_intent` and `receive` answer the hub's requests
    to our callback (install_routes mounts them on the web app).
    """

    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        client: httpx.AsyncClient,
        resolver: Resolver = system_resolver,
        now: Clock = utc_now,
        settings: WebSubSettings = DEFAULT_SETTINGS,
        fetcher: Fetcher | None = None,
        on_report: ReportCallback | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.client = client
        self.resolver = resolver
        self.now = now
        self.settings = settings
        self.fetcher = fetcher  # for `follow: true` sources; one is made per delivery if None
        self.on_report = on_report
        self._told_polling_only = False

    # --- asking hubs ---

    async def reconcile(self) -> None:
        """Subscribe, renew, unsubscribe or forget every subscription that is due."""
        config = self.config
        base = config.network.websub_callback_base
        records = self.store.websub_subscriptions()
        sources = {source.url: source for member in config.members for source in member.sources}
        if base is None and not self._told_polling_only:
            self._told_polling_only = True
            hubs = sum(record.source_url in sources for record in records)
            logger.warning(
                "network.websub_callback_base is not set in feeds.yaml: WebSub is off and "
                "every source is polled only (%d feed(s) advertise a hub so far). Set it to "
                "the public https address of this service to get new posts within seconds.",
                hubs,
            )
        for record in records:
            source = sources.get(record.source_url)
            callback = callback_url(base, record.callback_id) if base is not None else None
            action = next_action(
                record,
                now=self.now(),
                in_config=source is not None,
                callback=callback,
                settings=self.settings,
            )
            if action == "subscribe" and source is not None and callback is not None:
                await self._subscribe(record, source, callback)
            elif action == "unsubscribe":
                await self._unsubscribe(record)
            elif action == "forget":
                self.store.forget_websub_subscription(record.callback_id)

    async def _subscribe(self, record: WebSubRecord, source: SourceConfig, callback: str) -> None:
        now = self.now()
        try:
            await check_discovered_link(source.url, record.hub, self.resolver)
        except UnsafeAddressError as exc:
            message = f"the WebSub hub {record.hub} was not contacted: {exc}"
            logger.warning("%s: %s; polling only", source.url, message)
            self.store.save_websub_state(
                record.callback_id, SubscriptionState.REFUSED, error=message, requested_at=now
            )
            return
        renewing = record.state == SubscriptionState.ACTIVE
        kept = SubscriptionState.ACTIVE if renewing else SubscriptionState.PENDING
        # Marked before asking: a hub may send its verification before it answers us.
        self.store.save_websub_state(
            record.callback_id, kept, requested_at=now, callback_url=callback
        )
        error = await self._ask_hub(
            record.hub,
            {
                "hub.mode": "subscribe",
                "hub.topic": record.topic,
                "hub.callback": callback,
                "hub.secret": record.secret,
                "hub.lease_seconds": str(self.settings.lease_seconds),
            },
        )
        if error is None:
            logger.info(
                "%s: asked the WebSub hub %s to push %s (%s)",
                source.url,
                record.hub,
                record.topic,
                "renewal" if renewing else "waiting for its verification",
            )
            return
        logger.warning("%s: WebSub subscription to %s failed: %s", source.url, record.hub, error)
        failed = SubscriptionState.ACTIVE if renewing else SubscriptionState.FAILED
        self.store.save_websub_state(record.callback_id, failed, error=error)

    async def _unsubscribe(self, record: WebSubRecord) -> None:
        assert record.callback_url is not None
        self.store.save_websub_state(
            record.callback_id, SubscriptionState.UNSUBSCRIBING, requested_at=self.now()
        )
        error = await self._ask_hub(
            record.hub,
            {
                "hub.mode": "unsubscribe",
                "hub.topic": record.topic,
                "hub.callback": record.callback_url,
            },
        )
        if error is not None:
            # Forgotten anyway: the hub's next delivery gets 410 Gone and ends it there.
            logger.warning(
                "%s left feeds.yaml; unsubscribing at %s failed (%s): forgotten",
                record.source_url,
                record.hub,
                error,
            )
            self.store.forget_websub_subscription(record.callback_id)
        else:
            logger.info("%s left feeds.yaml: unsubscribing at %s", record.source_url, record.hub)

    async def _ask_hub(self, hub: str, form: Mapping[str, str]) -> str | None:
        """POST a form to a hub; None when it accepted (2xx), else why not in plain words."""
        try:
            response = await self.client.post(hub, data=dict(form))
        except httpx.HTTPError as exc:
            return describe_exception(exc, self.config.network.limits)
        if response.is_success:
            return None
        said = " ".join(response.text.split())[:200]
        return describe_status(response.status_code) + (f": {said}" if said else "")

    # --- answering hubs ---

    def verify_intent(self, callback_id: str, params: Mapping[str, str]) -> str | None:
        """The body to answer a hub's GET with (the challenge), or None for 404.

        Confirmed: a subscribe for a pending or active subscription, an unsubscribe we sent,
        each for the topic we asked about. A denial is noted (and answered with "").
        """
        record = self.store.websub_subscription(callback_id)
        mode = params.get("hub.mode")
        if record is None or params.get("hub.topic") != record.topic:
            return None
        if mode == "denied":
            reason = params.get("hub.reason") or "no reason given"
            logger.warning(
                "%s: the WebSub hub %s refused: %s", record.source_url, record.hub, reason
            )
            self.store.save_websub_state(
                callback_id, SubscriptionState.DENIED, error=f"the hub refused: {reason}"
            )
            return ""
        challenge = params.get("hub.challenge")
        if not challenge or len(challenge) > MAX_CHALLENGE:
            return None
        if mode == "subscribe" and record.state in ACCEPTING:
            lease = _lease_seconds(params.get("hub.lease_seconds"), self.settings.lease_seconds)
            expires = self.now() + timedelta(seconds=lease)
            self.store.save_websub_state(
                callback_id, SubscriptionState.ACTIVE, lease_expires_at=expires
            )
            logger.info(
                "%s: WebSub subscription at %s confirmed until %s",
                record.source_url,
                record.hub,
                expires.isoformat(timespec="seconds"),
            )
            return challenge
        if mode == "unsubscribe" and record.state == SubscriptionState.UNSUBSCRIBING:
            self.store.forget_websub_subscription(callback_id)
            return challenge
        return None

    async def receive(
        self,
        callback_id: str,
        body: bytes,
        content_type: str | None,
        signature: str | None,
    ) -> int:
        """Take in a hub's delivery; returns the HTTP status to answer with.

        410 when there is no such active subscription (the hub may then drop it); 200 both
        for a stored delivery and for one discarded for its signature (the spec says a bad
        signature is acknowledged and ignored, which also tells a forger nothing).
        """
        record = self.store.websub_subscription(callback_id)
        config = self.config
        source = next(
            (
                source
                for member in config.members
                for source in member.sources
                if record is not None and source.url == record.source_url
            ),
            None,
        )
        if record is None or source is None or record.state != SubscriptionState.ACTIVE:
            return GONE_STATUS
        if not signature_valid(record.secret, body, signature):
            logger.warning(
                "%s: a WebSub delivery from %s was discarded: %s",
                source.url,
                record.hub,
                "its signature does not match" if signature else "it is not signed",
            )
            return 200
        settings = poll_settings(config, source)
        report = await ingest_body(
            source,
            body,
            content_type,
            url=record.topic,
            store=self.store,
            now=self.now(),
            language=settings.language,
            fetcher=self.fetcher,
            retention=settings.retention,
        )
        logger.info(
            "%s: pushed by its WebSub hub: %s (%d new, %d updated)%s",
            source.url,
            report.outcome.value,
            report.new,
            report.updated,
            f"; {report.error}" if report.error else "",
        )
        if self.on_report is not None:
            self.on_report(report)
        return 200


def _lease_seconds(text: str | None, default: int) -> int:
    if text is not None and text.strip().isdigit() and int(text) > 0:
        return int(text)
    return default


def install_routes(app: Starlette, subscriber: WebSubSubscriber) -> None:
    """Answer the hubs at GET and POST /websub/{callback_id} on `app`."""

    async def websub_callback(request: Request) -> Response:
        callback_id = request.path_params["callback_id"]
        headers = {"Cache-Control": "no-store"}
        if request.method == "GET":
            challenge = subscriber.verify_intent(callback_id, request.query_params)
            if challenge is None:
                return PlainTextResponse("Not Found\n", status_code=404, headers=headers)
            return PlainTextResponse(challenge, headers=headers)
        body = await _capped_body(request, subscriber.config.network.limits.max_bytes)
        if body is None:
            return PlainTextResponse("Payload Too Large\n", status_code=413, headers=headers)
        status = await subscriber.receive(
            callback_id,
            body,
            request.headers.get("content-type"),
            request.headers.get(SIGNATURE_HEADER),
        )
        text = "Gone\n" if status == GONE_STATUS else "ok\n"
        return PlainTextResponse(text, status_code=status, headers=headers)

    app.router.add_route(
        CALLBACK_PATH, websub_callback, methods=["GET", "POST"], include_in_schema=False
    )


async def _capped_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to be longer than `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


# --- the publisher --------------------------------------------------------------------


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

    async def drain(self) -> None:
        """Wait for a ping that is waiting to go out (tests, shutdown)."""
        if self._flush is not None and not self._flush.done():
            await asyncio.shield(self._flush)

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


# --- both, for `aggregator run` ------------------------------------------------------


class WebSubService:
    """The subscriber and the pinger wired into the running service.

    `install(app)` before serving; `attach` is run_service's on_started hook: it follows the
    scheduler's reports and feeds.yaml reloads and starts looking over subscriptions (at
    once, then every check_seconds, and soon after a poll or a reload). `aclose` at the end.
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

    def attach(self, scheduler: PollScheduler) -> None:
        """Follow `scheduler` (run_service's on_started) and start the subscription loop."""
        reported = scheduler.on_report
        configured = scheduler.on_config

        def on_report(report: PollReport) -> None:
            if reported is not None:
                reported(report)
            self.on_report(report)

        def on_config(config: Config) -> None:
            if configured is not None:
                configured(config)
            self.set_config(config)

        scheduler.on_report = on_report
        scheduler.on_config = on_config
        self.subscriber.fetcher = scheduler.fetcher
        self.pinger.busy = lambda: bool(scheduler.in_flight)
        self.start()

    def start(self) -> None:
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.check_seconds)

    async def serving(self, service: Awaitable[None]) -> None:
        """Await `service` (run_service), then close."""
        try:
            await service
        finally:
            await self.aclose()

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
