"""The WebSub subscriber: asks the hubs member feeds advertise to push them to us, renews
before the lease ends, unsubscribes when a source leaves feeds.yaml, and answers the hub's
verification of intent and deliveries (callback.py routes them here).

A poll records the hub a member's feed advertises (poll.advertised_hub, kept by the store).
The subscriber asks that hub to push the feed to
`{network.websub_callback_base}/websub/{callback id}`, with a random secret per
subscription. A verification (GET) is confirmed only for a subscription we asked for, with
the same topic; a delivery (POST) is stored only when its X-Hub-Signature (HMAC of the raw
body with that secret) verifies, through poll.ingest_body, the same parse -> normalize ->
filter -> store path as a poll. A bad or missing signature is answered 2xx and discarded,
as the spec requires. Polling goes on unchanged as the fallback.

This module must never subscribe without `network.websub_callback_base` (without a public
address no hub can reach us), never contact a hub that a feed on a public address names on
a private one (aggregator.ingest.safety), never store a delivery whose signature does not
verify, and never change when sources are polled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping
from datetime import timedelta

import httpx

from aggregator.clock import Clock
from aggregator.clock import utc_now
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
from aggregator.models import PollReport
from aggregator.models import SourceConfig
from aggregator.models import WebSubRecord
from aggregator.service.websub.rules import ACCEPTING
from aggregator.service.websub.rules import DEFAULT_SETTINGS
from aggregator.service.websub.rules import MAX_CHALLENGE
from aggregator.service.websub.rules import SubscriptionState
from aggregator.service.websub.rules import WebSubSettings
from aggregator.service.websub.rules import callback_url
from aggregator.service.websub.rules import lease_seconds
from aggregator.service.websub.rules import next_action
from aggregator.service.websub.rules import signature_valid
from aggregator.store import Store
from aggregator.store import StoreWriter

logger = logging.getLogger(__name__)


ReportCallback = Callable[[PollReport], None]


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
        # The scheduler's writer once the service runs (else each delivery is stored alone).
        self.writer: StoreWriter | None = None
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
            try:
                await self._reconcile_one(record, source, base)
            except Exception:
                # One member's hostile hub address (or a bug of ours it uncovers) must not
                # stop the others' subscriptions: logged, marked failed, retried later.
                logger.exception(
                    "member %s, source %s: looking over its WebSub subscription at %r failed",
                    source.member_id if source is not None else "(no longer listed)",
                    record.source_url,
                    record.hub,
                )
                self.store.save_websub_state(
                    record.callback_id,
                    SubscriptionState.FAILED,
                    error="an unexpected error while asking the hub; see the service log",
                    requested_at=self.now(),
                )

    async def _reconcile_one(
        self, record: WebSubRecord, source: SourceConfig | None, base: str | None
    ) -> None:
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
        # InvalidURL is no HTTPError: a hub address with a control character raises it.
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
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
            lease = lease_seconds(params.get("hub.lease_seconds"), self.settings.lease_seconds)
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
            writer=self.writer,
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
