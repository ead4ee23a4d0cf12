"""WebSub both ways, against a hub stand-in on 127.0.0.1 that behaves like a real hub.

The hub (written here on http.server) takes subscribe/unsubscribe requests, answers 202,
then verifies intent with a GET to the callback on the real web app under uvicorn, and
delivers feed bodies signed with the subscription's secret. The same hub receives the
publisher's pings. Nothing leaves 127.0.0.1: the WordPress fixture's own hub addresses are
replaced by the stand-in's before it is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import feedparser
import httpx
import pytest

from aggregator.config import load_config
from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.errors import ConfigError
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.poll import advertised_hub
from aggregator.ingest.poll import poll_all
from aggregator.models import Config
from aggregator.models import FetchLimits
from aggregator.models import WebSubRecord
from aggregator.publish.site import render_document
from aggregator.service import server as server_module
from aggregator.service import web
from aggregator.service.app import run_service
from aggregator.service.hooks import Hook
from aggregator.service.hooks import SchedulerHooks
from aggregator.service.scheduler import PollScheduler
from aggregator.service.settings import SchedulerSettings
from aggregator.service.websub import WebSubService
from aggregator.service.websub.rules import SubscriptionState
from aggregator.service.websub.rules import WebSubSettings
from aggregator.service.websub.rules import callback_url
from aggregator.service.websub.rules import next_action
from aggregator.service.websub.rules import signature_valid
from aggregator.store import Store
from tests.conftest import FIXTURES
from tests.support.scheduling import drain
from tests.support.scheduling import run_due_polls
from tests.support.server import FixtureServer

WORDPRESS = FIXTURES / "websub_wordpress_rss_with_hub.xml"
PUSHED = FIXTURES / "websub_wordpress_rss_pushed.xml"
FIXTURE_HUB = "https://pubsubhubbub.appspot.com"
FIXTURE_SELF = "https://news.example.org/feed/"
NEW_TITLE = "Workers win back pay after wage theft complaint"
RSS = "application/rss+xml; charset=UTF-8"
QUICK = WebSubSettings(ping_debounce_seconds=0.05, check_seconds=0.2, request_timeout=5.0)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


# --- the hub stand-in -----------------------------------------------------------------


@dataclass(frozen=True)
class HubSubscription:
    callback: str
    topic: str
    secret: str


@dataclass(frozen=True)
class Verification:
    mode: str
    status: int
    echoed: bool


class Hub:
    """A WebSub hub on 127.0.0.1: verifies intent like a real hub, delivers on demand."""

    def __init__(self, *, answer: int = 202, lease_seconds: int = 5 * 24 * 3600) -> None:
        self.answer = answer
        self.lease_seconds = lease_seconds
        self.requests: list[dict[str, str]] = []
        self.pings: list[str] = []
        self.verifications: list[Verification] = []
        self.subscriptions: dict[str, HubSubscription] = {}
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                with hub.lock:
                    hub.requests.append(form)
                if form.get("hub.mode") == "publish":
                    with hub.lock:
                        hub.pings.append(form["hub.url"])
                    status = 204
                else:
                    status = hub.answer
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if status == 202:
                    # Like real hubs: answer first, verify intent afterwards.
                    threading.Thread(target=hub.verify, args=(form,), daemon=True).start()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> Hub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def verify(self, form: dict[str, str]) -> None:
        mode = form["hub.mode"]
        challenge = secrets.token_urlsafe(16)
        params = {"hub.mode": mode, "hub.topic": form["hub.topic"], "hub.challenge": challenge}
        if mode == "subscribe":
            params["hub.lease_seconds"] = str(self.lease_seconds)
        response = httpx.get(form["hub.callback"], params=params, timeout=10)
        echoed = response.status_code == 200 and response.text == challenge
        with self.lock:
            self.verifications.append(Verification(mode, response.status_code, echoed))
            if echoed and mode == "subscribe":
                self.subscriptions[form["hub.callback"]] = HubSubscription(
                    form["hub.callback"], form["hub.topic"], form["hub.secret"]
                )
            elif echoed and mode == "unsubscribe":
                self.subscriptions.pop(form["hub.callback"], None)

    def deliver(
        self,
        body: bytes,
        *,
        callback: str | None = None,
        signature: str | None = "sign",
        algorithm: str = "sha256",
    ) -> httpx.Response:
        """POST `body` to a verified subscriber, signed with its secret unless told otherwise."""
        with self.lock:
            subscription = (
                self.subscriptions[callback]
                if callback is not None
                else next(iter(self.subscriptions.values()))
            )
        headers = {"Content-Type": RSS, "Link": f'<{subscription.topic}>; rel="self"'}
        if signature == "sign":
            digest = hmac.new(subscription.secret.encode(), body, algorithm).hexdigest()
            headers["X-Hub-Signature"] = f"{algorithm}={digest}"
        elif signature is not None:
            headers["X-Hub-Signature"] = signature
        return httpx.post(subscription.callback, content=body, headers=headers, timeout=10)


# --- helpers --------------------------------------------------------------------------


def feed_body(path: Path, hub: str, self_url: str) -> bytes:
    return (
        path.read_bytes()
        .replace(FIXTURE_HUB.encode(), hub.encode())
        .replace(FIXTURE_SELF.encode(), self_url.encode())
    )


def config_text(
    feed_url: str,
    *,
    callback_base: str | None = None,
    hub: str | None = None,
    second_feed: str | None = None,
) -> str:
    network = [
        "network:",
        "  title: WSR Network News",
        "  url: https://wsr-network.example.org/",
        "  feed_url: https://wsr-network.example.org/news/",
        "  language: en",
    ]
    if callback_base is not None:
        network.append(f"  websub_callback_base: {callback_base}")
    if hub is not None:
        network.append(f"  websub_hub: {hub}")
    members = [
        "members:",
        "  - id: ciw",
        "    name: Coalition of Immokalee Workers",
        "    url: https://news.example.org/",
        "    tags: [Farmworkers]",
        "    sources:",
        f"      - feed: {feed_url}",
    ]
    if second_feed is not None:
        members += [
            "  - id: dairy",
            "    name: Migrant Justice",
            "    url: https://dairy.example.org/",
            "    sources:",
            f"      - feed: {second_feed}",
        ]
    return "\n".join(network + members) + "\n"


def with_network(config: Config, **changes: object) -> Config:
    return replace(config, network=replace(config.network, **changes))  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting: {what}"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def serving(app: object) -> AsyncIterator[str]:
    """`app` under uvicorn on 127.0.0.1 in this event loop (as `aggregator run` serves it)."""
    server = server_module.make_server(app, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started, "uvicorn to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def titles(store: Store) -> set[str]:
    return {story.title for story in store.latest_stories(100)}


@pytest.fixture
def sites() -> Iterator[FixtureServer]:
    with FixtureServer() as server:
        yield server


@pytest.fixture
def hub() -> Iterator[Hub]:
    with Hub() as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'aggregator.db'}")
    yield opened
    opened.close()


@dataclass
class Subscribed:
    """A store that polled the member feed once, and the web app with WebSub, served."""

    config: Config
    service: WebSubService
    base: str
    feed_url: str


@contextlib.asynccontextmanager
async def subscriber_setup(
    sites: FixtureServer,
    hub: Hub,
    store: Store,
    *,
    callback: bool = True,
    now: Callable[[], datetime] | None = None,
    limits: FetchLimits | None = None,
) -> AsyncIterator[Subscribed]:
    feed_url = sites.url("/feed/")
    sites.routes["/feed/"] = Route(
        body=feed_body(WORDPRESS, hub.url, feed_url), headers={"Content-Type": RSS}
    )
    config = parse_config(config_text(feed_url))
    if limits is not None:
        config = with_network(config, limits=limits)
    store.sync_config(config)
    async with Fetcher() as fetcher:
        reports = await poll_all(config, store, fetcher)
    assert [report.new for report in reports] == [2]
    app = web.create_app(config, store)
    options = {"now": now} if now is not None else {}
    service = WebSubService(config, store, settings=QUICK, **options)  # type: ignore[arg-type]
    service.install(app)
    try:
        async with serving(app) as base:
            if callback:
                config = with_network(config, websub_callback_base=base)
                service.set_config(config)
                web.set_config(app, config)
            yield Subscribed(config=config, service=service, base=base, feed_url=feed_url)
    finally:
        await service.aclose()


async def subscribe(setup: Subscribed, hub: Hub, store: Store) -> WebSubRecord:
    await setup.service.subscriber.reconcile()
    await wait_until(lambda: len(hub.subscriptions) == 1, "the hub to verify the subscription")
    (record,) = store.websub_subscriptions()
    return record


# --- reading what feeds advertise -----------------------------------------------------


def test_rss_feed_advertises_its_hub_and_self_address() -> None:
    parsed = parse_feed(WORDPRESS.read_bytes(), FIXTURE_SELF, RSS)
    # WordPress lists several hubs; the first is used.
    assert parsed.hub_url == FIXTURE_HUB
    assert parsed.self_url == FIXTURE_SELF
    assert advertised_hub(parsed) == (FIXTURE_HUB, FIXTURE_SELF)


def test_json_feed_websub_hub_is_picked_among_its_hubs() -> None:
    body = (FIXTURES / "websub_jsonfeed_hubs.json").read_bytes()
    parsed = parse_feed(body, "https://dairy.example.org/feed.json", "application/feed+json")
    assert parsed.hub_url == "https://websub.example.net/"
    assert parsed.self_url == "https://dairy.example.org/feed.json"


def test_relative_hub_and_self_links_are_made_absolute() -> None:
    body = (FIXTURES / "websub_atom_hub_relative.xml").read_bytes()
    url = "https://campo.example.org/noticias/feed.atom"
    parsed = parse_feed(body, url, "application/atom+xml")
    assert advertised_hub(parsed) == ("https://campo.example.org/websub/hub", url)


def test_a_feed_without_a_hub_advertises_none() -> None:
    parsed = parse_feed(
        (FIXTURES / "wordpress_content_encoded.xml").read_bytes(), FIXTURE_SELF, RSS
    )
    assert parsed.hub_url is None
    assert advertised_hub(parsed) == (None, None)


# --- signatures and decisions (pure) --------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha384", "sha512"])
def test_signature_of_each_algorithm_the_spec_names(algorithm: str) -> None:
    secret, body = "s3cret", b"<rss>...</rss>"
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    assert signature_valid(secret, body, f"{algorithm}={digest}")
    assert signature_valid(secret, body, f"{algorithm}={digest.upper()}")
    assert not signature_valid(secret, body + b" ", f"{algorithm}={digest}")
    assert not signature_valid("other", body, f"{algorithm}={digest}")


@pytest.mark.parametrize("header", [None, "", "sha256=", "md5=abcdef", "sha256", "nonsense"])
def test_missing_or_malformed_signatures_do_not_verify(header: str | None) -> None:
    assert not signature_valid("s3cret", b"body", header)


def record(state: SubscriptionState, **changes: object) -> WebSubRecord:
    base = WebSubRecord(
        source_url="https://news.example.org/feed/",
        callback_id="abc",
        hub="https://hub.example.net/",
        topic="https://news.example.org/feed/",
        secret="s",
        state=state,
        callback_url="https://agg.example.org/websub/abc",
        requested_at=NOW - timedelta(minutes=5),
        lease_expires_at=NOW + timedelta(days=5),
        last_error=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


CALLBACK = "https://agg.example.org/websub/abc"


@pytest.mark.parametrize(
    ("current", "in_config", "callback", "expected"),
    [
        (record(SubscriptionState.NEW), True, CALLBACK, "subscribe"),
        (record(SubscriptionState.NEW), True, None, None),  # no callback base: never
        (record(SubscriptionState.PENDING), True, CALLBACK, None),  # just asked
        (
            record(SubscriptionState.PENDING, requested_at=NOW - timedelta(hours=2)),
            True,
            CALLBACK,
            "subscribe",
        ),
        (record(SubscriptionState.ACTIVE), True, CALLBACK, None),
        (
            record(
                SubscriptionState.ACTIVE,
                requested_at=NOW - timedelta(days=9),
                lease_expires_at=NOW + timedelta(hours=20),
            ),
            True,
            CALLBACK,
            "subscribe",  # renewal before the lease ends
        ),
        (
            record(SubscriptionState.ACTIVE),
            True,
            "https://moved.example.org/websub/abc",
            "subscribe",
        ),
        (record(SubscriptionState.REFUSED), True, CALLBACK, None),
        (record(SubscriptionState.ACTIVE), False, CALLBACK, "unsubscribe"),
        (record(SubscriptionState.UNSUBSCRIBING), False, CALLBACK, None),
        (
            record(SubscriptionState.UNSUBSCRIBING, requested_at=NOW - timedelta(days=2)),
            False,
            CALLBACK,
            "forget",
        ),
        (record(SubscriptionState.NEW), False, CALLBACK, "forget"),
    ],
)
def test_next_action(
    current: WebSubRecord, in_config: bool, callback: str | None, expected: str | None
) -> None:
    assert next_action(current, now=NOW, in_config=in_config, callback=callback) == expected


# --- configuration --------------------------------------------------------------------


def test_config_reads_both_websub_keys() -> None:
    text = config_text(
        "https://news.example.org/feed/",
        callback_base="https://news-aggregator.example.org/",
        hub="https://hub.example.net/",
    )
    network = parse_config(text).network
    assert network.websub_hub == "https://hub.example.net/"
    assert network.websub_callback_base == "https://news-aggregator.example.org"
    assert callback_url(network.websub_callback_base, "xyz") == (
        "https://news-aggregator.example.org/websub/xyz"
    )
    defaults = parse_config(config_text("https://news.example.org/feed/")).network
    assert defaults.websub_hub is None and defaults.websub_callback_base is None


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("  websub_hubb: https://hub.example.net/", "did you mean 'websub_hub'?"),
        ("  websub_callback: https://a.example.org/", "did you mean 'websub_callback_base'?"),
        ("  websub_hub: ftp://hub.example.net/", "only http and https"),
        ("  websub_callback_base: https://a.example.org/?x=1", "without '?' or '#'"),
    ],
)
def test_config_rejects_bad_websub_keys(line: str, complaint: str) -> None:
    text = config_text("https://news.example.org/feed/").replace(
        "  language: en\n", f"  language: en\n{line}\n"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    assert complaint in str(raised.value)


# --- the subscriber -------------------------------------------------------------------


def test_run_subscribes_verifies_and_stores_a_signed_delivery_without_polling(
    tmp_path: Path, sites: FixtureServer, hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    """`aggregator run` end to end: poll, find the hub, subscribe, verify, receive, ping."""
    caplog.set_level(logging.INFO)
    feed_url = sites.url("/feed/")
    sites.routes["/feed/"] = Route(
        body=feed_body(WORDPRESS, hub.url, feed_url), headers={"Content-Type": RSS}
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text(config_text(feed_url, callback_base=base, hub=hub.url))
    config = load_config(config_path)
    database = f"sqlite:///{tmp_path / 'aggregator.db'}"
    store = Store.open(database)
    store.sync_config(config)
    app = web.create_app(config, store)

    async def scenario() -> None:
        stop = asyncio.Event()
        websub = WebSubService(config, store, settings=QUICK)
        websub.install(app)
        service = asyncio.create_task(
            run_service(
                config,
                store,
                app=app,
                port=port,
                stop=stop,
                settings=SchedulerSettings(tick_seconds=0.2, reload_seconds=60),
                hooks=SchedulerHooks(
                    after_reload=Hook(
                        "after_reload", [lambda reloaded: web.set_config(app, reloaded)]
                    )
                ),
                websub=websub,
            )
        )
        try:
            await wait_until(lambda: len(hub.subscriptions) == 1, "subscription verified", 20)
            polls = len(sites.requests_for("/feed/"))
            assert polls == 1
            (subscription,) = hub.subscriptions.values()
            assert subscription.topic == feed_url
            assert subscription.callback.startswith(f"{base}/websub/")
            (request,) = [r for r in hub.requests if r.get("hub.mode") == "subscribe"]
            assert int(request["hub.lease_seconds"]) > 0 and len(request["hub.secret"]) >= 32
            (row,) = store.websub_subscriptions()
            assert row.state == SubscriptionState.ACTIVE and row.lease_expires_at is not None
            await wait_until(lambda: bool(hub.pings), "the ping after the first poll")
            pings_before = Counter(hub.pings)

            response = await asyncio.to_thread(hub.deliver, feed_body(PUSHED, hub.url, feed_url))
            assert response.status_code == 200
            assert NEW_TITLE in titles(store)
            async with httpx.AsyncClient(base_url=base) as client:
                published = await client.get("/feed.atom")
            assert NEW_TITLE in published.text
            assert len(sites.requests_for("/feed/")) == polls  # no poll brought it
            member_feed = "https://wsr-network.example.org/news/members/ciw/feed.atom"
            await wait_until(
                lambda: Counter(hub.pings)[member_feed] == pings_before[member_feed] + 1,
                "the ping after the delivery",
            )
        finally:
            stop.set()
            await service

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    assert "pushed by its WebSub hub: new (1 new, 0 updated)" in caplog.text


def test_delivery_with_a_wrong_or_missing_signature_is_acknowledged_and_discarded(
    sites: FixtureServer, hub: Hub, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with subscriber_setup(sites, hub, store) as setup:
            await subscribe(setup, hub, store)
            body = feed_body(PUSHED, hub.url, setup.feed_url)
            forged = "sha256=" + hmac.new(b"not the secret", body, "sha256").hexdigest()
            for signature in (forged, None, "sha256=" + "0" * 64):
                response = await asyncio.to_thread(hub.deliver, body, signature=signature)
                assert response.status_code == 200  # the spec: acknowledge, then ignore
            assert NEW_TITLE not in titles(store)
            # The same body, signed right (here with sha512), is taken.
            response = await asyncio.to_thread(hub.deliver, body, algorithm="sha512")
            assert response.status_code == 200
            assert NEW_TITLE in titles(store)

    asyncio.run(scenario())
    assert "its signature does not match" in caplog.text
    assert "it is not signed" in caplog.text


def test_verification_for_another_topic_or_unknown_callback_is_404(
    sites: FixtureServer, hub: Hub, store: Store
) -> None:
    async def scenario() -> None:
        async with subscriber_setup(sites, hub, store) as setup:
            record = await subscribe(setup, hub, store)
            callback = callback_url(setup.base, record.callback_id)
            async with httpx.AsyncClient() as client:

                async def verify(url: str, **params: str) -> httpx.Response:
                    query = {"hub.challenge": "c4ll3nge", "hub.lease_seconds": "60", **params}
                    return await client.get(url, params=query)

                right = await verify(
                    callback, **{"hub.mode": "subscribe", "hub.topic": record.topic}
                )
                assert (right.status_code, right.text) == (200, "c4ll3nge")
                wrong_topic = await verify(
                    callback, **{"hub.mode": "subscribe", "hub.topic": "https://evil.example/"}
                )
                assert wrong_topic.status_code == 404 and "c4ll3nge" not in wrong_topic.text
                unknown = await verify(
                    callback_url(setup.base, "no-such-id"),
                    **{"hub.mode": "subscribe", "hub.topic": record.topic},
                )
                assert unknown.status_code == 404
                # An unsubscribe we never asked for is not confirmed either.
                unasked = await verify(
                    callback, **{"hub.mode": "unsubscribe", "hub.topic": record.topic}
                )
                assert unasked.status_code == 404
                gone = await client.post(callback_url(setup.base, "no-such-id"), content=b"x")
                assert gone.status_code == 410
            assert store.websub_subscriptions()[0].state == SubscriptionState.ACTIVE

    asyncio.run(scenario())


def test_without_a_callback_base_nothing_is_subscribed_and_the_log_says_so_once(
    sites: FixtureServer, hub: Hub, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with subscriber_setup(sites, hub, store, callback=False) as setup:
            assert setup.config.network.websub_callback_base is None
            (row,) = store.websub_subscriptions()  # the hub is known …
            assert (row.hub, row.topic) == (hub.url, setup.feed_url)
            for _ in range(3):
                await setup.service.subscriber.reconcile()
            await asyncio.sleep(0.1)
        assert hub.requests == []  # … but never contacted
        assert store.websub_subscriptions()[0].state == SubscriptionState.NEW

    caplog.set_level(logging.WARNING, logger="aggregator.service.websub")
    asyncio.run(scenario())
    said = [r for r in caplog.records if "websub_callback_base is not set" in r.getMessage()]
    assert len(said) == 1
    assert "1 feed(s) advertise a hub" in said[0].getMessage()


def test_a_hub_on_a_private_address_named_by_a_public_feed_is_refused(
    hub: Hub, store: Store
) -> None:
    public_feed = "https://news.example.org/feed/"
    config = parse_config(
        config_text(public_feed, callback_base="https://news-aggregator.example.org")
    )
    store.sync_config(config)
    store.remember_websub_hub(public_feed, hub.url, public_feed)

    async def public_dns(host: str, port: int) -> list[str]:
        assert host == "news.example.org"
        return ["93.184.216.34"]

    async def scenario() -> None:
        service = WebSubService(config, store, resolver=public_dns, settings=QUICK)
        try:
            await service.subscriber.reconcile()
            await service.subscriber.reconcile()  # refused for good: not retried
        finally:
            await service.aclose()

    asyncio.run(scenario())
    assert hub.requests == []
    (row,) = store.websub_subscriptions()
    assert row.state == SubscriptionState.REFUSED
    assert row.last_error is not None and "private or local address" in row.last_error


def test_leaving_feeds_yaml_unsubscribes(sites: FixtureServer, hub: Hub, store: Store) -> None:
    async def scenario() -> None:
        async with subscriber_setup(sites, hub, store) as setup:
            record = await subscribe(setup, hub, store)
            other = parse_config(
                config_text("https://other.example.org/feed/", callback_base=setup.base)
            )
            setup.service.set_config(other)
            await setup.service.subscriber.reconcile()
            await wait_until(lambda: not hub.subscriptions, "the hub to verify the unsubscribe")
            (request,) = [r for r in hub.requests if r["hub.mode"] == "unsubscribe"]
            assert request["hub.topic"] == record.topic
            assert request["hub.callback"] == callback_url(setup.base, record.callback_id)
            assert hub.verifications[-1] == Verification("unsubscribe", 200, True)
            assert store.websub_subscriptions() == []
            # The hub's deliveries for it now find nothing; 410 lets it drop them.
            async with httpx.AsyncClient() as client:
                late = await client.post(request["hub.callback"], content=b"<rss/>")
            assert late.status_code == 410

    asyncio.run(scenario())


def test_a_subscription_is_renewed_before_its_lease_ends(
    sites: FixtureServer, hub: Hub, store: Store
) -> None:
    clock = {"now": datetime.now(UTC)}

    async def scenario() -> None:
        async with subscriber_setup(sites, hub, store, now=lambda: clock["now"]) as setup:
            first = await subscribe(setup, hub, store)
            assert first.lease_expires_at is not None
            await setup.service.subscriber.reconcile()  # lease has long to run: nothing
            assert len([r for r in hub.requests if r["hub.mode"] == "subscribe"]) == 1
            clock["now"] = first.lease_expires_at - timedelta(hours=2)
            await setup.service.subscriber.reconcile()
            await wait_until(lambda: len(hub.verifications) == 2, "the renewal's verification")
            renewals = [r for r in hub.requests if r["hub.mode"] == "subscribe"]
            assert len(renewals) == 2
            assert renewals[1]["hub.secret"] == renewals[0]["hub.secret"]
            (renewed,) = store.websub_subscriptions()
            assert renewed.state == SubscriptionState.ACTIVE
            assert renewed.lease_expires_at is not None
            assert renewed.lease_expires_at > first.lease_expires_at

    asyncio.run(scenario())


def test_a_denial_from_the_hub_is_recorded(sites: FixtureServer, hub: Hub, store: Store) -> None:
    async def scenario() -> None:
        async with subscriber_setup(sites, hub, store) as setup:
            record = await subscribe(setup, hub, store)
            params = {"hub.mode": "denied", "hub.topic": record.topic, "hub.reason": "quota"}
            async with httpx.AsyncClient() as client:
                answer = await client.get(
                    callback_url(setup.base, record.callback_id), params=params
                )
            assert answer.status_code == 200
            (row,) = store.websub_subscriptions()
            assert row.state == SubscriptionState.DENIED
            assert row.last_error == "the hub refused: quota"

    asyncio.run(scenario())


def test_an_oversized_delivery_is_refused_unread(
    sites: FixtureServer, hub: Hub, store: Store
) -> None:
    async def scenario() -> None:
        limits = FetchLimits(max_bytes=4096)
        async with subscriber_setup(sites, hub, store, limits=limits) as setup:
            await subscribe(setup, hub, store)
            body = feed_body(PUSHED, hub.url, setup.feed_url) + b"<!--" + b"x" * 8192 + b"-->"
            response = await asyncio.to_thread(hub.deliver, body)
            assert response.status_code == 413
            assert NEW_TITLE not in titles(store)

    asyncio.run(scenario())


def test_a_hub_that_refuses_the_subscription_leaves_it_failed(
    sites: FixtureServer, store: Store
) -> None:
    async def scenario() -> None:
        with Hub(answer=400) as refusing:
            async with subscriber_setup(sites, refusing, store) as setup:
                await setup.service.subscriber.reconcile()
                (row,) = store.websub_subscriptions()
                assert row.state == SubscriptionState.FAILED
                assert row.last_error is not None and "HTTP 400" in row.last_error
                await setup.service.subscriber.reconcile()  # not again within retry_after
                assert len(refusing.requests) == 1

    asyncio.run(scenario())


# --- the publisher --------------------------------------------------------------------

NETWORK_FEEDS = "https://wsr-network.example.org/news/"


def test_published_feeds_advertise_the_hub(sites: FixtureServer, store: Store) -> None:
    feed_url = sites.url("/feed/")
    sites.routes["/feed/"] = Route(
        body=feed_body(WORDPRESS, "https://hub.example.net/", feed_url),
        headers={"Content-Type": RSS},
    )
    config = parse_config(config_text(feed_url, hub="https://hub.example.net/"))
    store.sync_config(config)

    async def poll() -> None:
        async with Fetcher() as fetcher:
            await poll_all(config, store, fetcher)

    asyncio.run(poll())
    for path in [
        "feed.atom",
        "feed.rss",
        "members/ciw/feed.atom",
        "members/ciw/feed.rss",
        "tags/fair-food/feed.atom",
        "tags/farmworkers/feed.rss",
    ]:
        parsed = feedparser.parse(render_document(path, config, store, now=NOW).body)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        hubs = [link["href"] for link in parsed.feed.links if link.get("rel") == "hub"]
        assert hubs == ["https://hub.example.net/"], path
        selves = [link["href"] for link in parsed.feed.links if link.get("rel") == "self"]
        assert selves == [NETWORK_FEEDS + path], path
    for path in ["feed.json", "members/ciw/feed.json"]:
        document = json.loads(render_document(path, config, store, now=NOW).body)
        assert document["hubs"] == [{"type": "WebSub", "url": "https://hub.example.net/"}]
    # A language variant is never pinged, so it does not send readers to the hub.
    spanish = render_document("feed.atom", config, store, now=NOW, language="es").body
    assert b'rel="hub"' not in spanish
    # Without network.websub_hub nothing is advertised.
    plain = with_network(config, websub_hub=None)
    assert b'rel="hub"' not in render_document("feed.rss", plain, store, now=NOW).body
    assert "hubs" not in json.loads(render_document("feed.json", plain, store, now=NOW).body)


def test_a_round_with_news_pings_each_changed_feed_once_and_an_unchanged_round_none(
    sites: FixtureServer, hub: Hub, store: Store
) -> None:
    sites.routes["/ciw/feed/"] = Route(
        body=feed_body(WORDPRESS, "https://hub.example.net/", sites.url("/ciw/feed/")),
        headers={"Content-Type": RSS},
    )
    sites.routes["/ciw/more/"] = Route(
        body=(FIXTURES / "wordpress_content_encoded.xml").read_bytes(),
        headers={"Content-Type": RSS},
    )
    sites.routes["/dairy/feed.json"] = Route(
        body=(FIXTURES / "websub_jsonfeed_hubs.json").read_bytes(),
        headers={"Content-Type": "application/feed+json"},
    )
    text = config_text(
        sites.url("/ciw/feed/"), hub=hub.url, second_feed=sites.url("/dairy/feed.json")
    ).replace(
        f"      - feed: {sites.url('/ciw/feed/')}\n",
        f"      - feed: {sites.url('/ciw/feed/')}\n      - feed: {sites.url('/ciw/more/')}\n",
    )
    config = parse_config(text)
    sources = [source.url for member in config.members for source in member.sources]
    assert len(sources) == 3

    async def scenario() -> None:
        async with Fetcher() as fetcher:
            scheduler = PollScheduler(config, store, fetcher)
            service = WebSubService(config, store, settings=QUICK, subscribe=False)
            try:
                scheduler.hooks.after_poll.append(service.on_report)
                scheduler.hooks.after_reload.append(service.set_config)
                service.start(fetcher=scheduler.fetcher, busy=scheduler.busy)
                reports = await run_due_polls(scheduler)
                assert all(report.new > 0 for report in reports), reports
                await drain(service.pinger)
                first = Counter(hub.pings)
                hub.pings.clear()
                for url in sources:
                    store.set_next_poll(url, None)
                unchanged = await run_due_polls(scheduler)
                assert [report.new + report.updated for report in unchanged] == [0, 0, 0]
                await asyncio.sleep(0.2)
                await drain(service.pinger)
            finally:
                await service.aclose()
        assert all(count == 1 for count in first.values()), first
        expected = {
            NETWORK_FEEDS + f"{prefix}feed.{extension}"
            for prefix in ["", "members/ciw/", "members/dairy/", "tags/farmworkers/"]
            for extension in ("atom", "rss", "json")
        }
        assert expected <= set(first)
        assert {url.rsplit("/", 2)[0] + "/" for url in set(first) - expected} <= {
            NETWORK_FEEDS + "tags/"
        }
        assert hub.pings == []

    asyncio.run(scenario())
