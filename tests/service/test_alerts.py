"""Alerts: the pure decision over status rows, and delivery to a real webhook receiver and
a real SMTP server (aiosmtpd), both on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from aggregator.config import parse_config
from aggregator.demo.server import Route
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.models import AlertRecord
from aggregator.models import AlertSettings
from aggregator.models import Config
from aggregator.models import EmailSettings
from aggregator.service.alerts import AlertSender
from aggregator.service.alerts import check_alerts
from aggregator.service.alerts import plan_alerts
from aggregator.service.status import SourceStatus
from aggregator.store import Store
from tests.support.alerts import alerts_due
from tests.support.server import FixtureServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
URL = "https://dairy.example.org/feed/"


def row(**changes: Any) -> SourceStatus:
    healthy = SourceStatus(
        member_id="dairy",
        member_name="Dairy Workers",
        source_url=URL,
        kind="feed",
        state="ok",
        last_poll=NOW,
        last_success=NOW,
        items=12,
        newest_item=NOW - timedelta(days=3),
    )
    return replace(healthy, **changes)


def failing(hours: float) -> SourceStatus:
    return row(
        state="failing",
        consecutive_failures=4,
        last_error="HTTP 500 (server error)",
        last_success=NOW - timedelta(days=10),
        failing_since=NOW - timedelta(hours=hours),
    )


def standing(kind: str, subject: str, detail: str = "") -> dict[tuple[str, str], AlertRecord]:
    return {(kind, subject): AlertRecord(kind, subject, detail, NOW - timedelta(days=1))}


# --- the decision ---------------------------------------------------------------------


def test_a_source_failing_for_less_than_a_day_raises_nothing() -> None:
    assert alerts_due([failing(23)], {}, NOW) == []


def test_a_source_failing_for_a_day_raises_one_alert_in_plain_words() -> None:
    [alert] = alerts_due([failing(25)], {}, NOW)
    assert alert.kind == "failing"
    assert alert.title == "Dairy Workers: source failing for 25 hours"
    assert "HTTP 500 (server error)" in alert.message
    assert "What to do" in alert.message
    # Already sent: not again.
    assert alerts_due([failing(48)], standing("failing", URL), NOW) == []


def test_the_failing_threshold_is_configurable() -> None:
    settings = AlertSettings(failing_after=timedelta(hours=2))
    assert [a.kind for a in alerts_due([failing(3)], {}, NOW, settings)] == ["failing"]


def test_recovery_is_told_once() -> None:
    [alert] = alerts_due([row()], standing("failing", URL), NOW)
    assert alert.kind == "recovered"
    assert alert.key == ("failing", URL)
    assert alerts_due([row()], {}, NOW) == []


def test_a_move_is_told_once_per_target() -> None:
    moved = row(
        moved_to="https://dairy.example.org/new-feed/",
        feeds_yaml_change="in feeds.yaml, replace 'feed: A' with 'feed: B'",
    )
    [alert] = alerts_due([moved], {}, NOW)
    assert alert.kind == "moved"
    assert alert.detail == "https://dairy.example.org/new-feed/"
    assert "replace 'feed: A' with 'feed: B'" in alert.message
    assert alerts_due([moved], standing("moved", URL, alert.detail), NOW) == []
    elsewhere = replace(moved, moved_to="https://dairy.example.org/other/")
    assert [a.kind for a in alerts_due([elsewhere], standing("moved", URL, alert.detail), NOW)] == [
        "moved"
    ]


def test_a_quiet_member_is_told_once_and_forgotten_when_it_publishes_again() -> None:
    quiet = row(newest_item=NOW - timedelta(days=61))
    [alert] = alerts_due([quiet], {}, NOW)
    assert alert.kind == "quiet"
    assert alert.subject == "dairy"
    assert alert.title == "Dairy Workers: nothing published for 61 days"
    assert alerts_due([quiet], standing("quiet", "dairy"), NOW) == []
    plan = plan_alerts([row()], standing("quiet", "dairy"), NOW)
    assert plan.alerts == ()
    assert plan.forget == (("quiet", "dairy"),)
    # The member's newest item over all its sources counts.
    other = row(source_url="https://dairy.example.org/news/", newest_item=NOW)
    assert alerts_due([quiet, other], {}, NOW) == []


def test_standing_alerts_about_removed_sources_are_forgotten() -> None:
    plan = plan_alerts([row()], standing("failing", "https://removed.example.org/feed"), NOW)
    assert plan.alerts == ()
    assert plan.forget == (("failing", "https://removed.example.org/feed"),)


# --- delivery -------------------------------------------------------------------------


class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that records JSON POSTs."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.received.append(json.loads(self.rfile.read(length)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/hooks/alerts"


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.thread.start()
    yield receiver
    receiver.httpd.shutdown()
    receiver.httpd.server_close()


class MailBox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[MailBox, int]]:
    mailbox = MailBox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def email_settings(port: int) -> EmailSettings:
    return EmailSettings(
        to=("staff@wsr.example.org", "ops@wsr.example.org"),
        sender="aggregator@wsr.example.org",
        smtp_host="127.0.0.1",
        smtp_port=port,
    )


def test_sender_posts_json_and_emails_one_digest(
    webhook: WebhookReceiver, smtp: tuple[MailBox, int]
) -> None:
    mailbox, port = smtp
    settings = AlertSettings(webhook=webhook.url, email=email_settings(port))
    alerts = alerts_due([failing(30), row(member_id="x", source_url="u", moved_to="v")], {}, NOW)
    assert len(alerts) == 2
    sender = AlertSender(settings, "WSR Network")
    delivered = asyncio.run(sender.deliver(alerts, NOW))
    assert delivered == alerts
    assert [payload["kind"] for payload in webhook.received] == ["failing", "moved"]
    first = webhook.received[0]
    assert first["member"] == {"id": "dairy", "name": "Dairy Workers"}
    assert first["source"] == URL
    assert first["text"].startswith("[WSR Network] Dairy Workers: source failing")
    assert first["at"] == "2026-12-01T12:00:00Z"
    [(mail_from, recipients, content)] = mailbox.messages
    assert mail_from == "aggregator@wsr.example.org"
    assert recipients == ["staff@wsr.example.org", "ops@wsr.example.org"]
    message = message_from_bytes(content)
    assert message["Subject"] == "[WSR Network] 2 sources need attention"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert b"HTTP 500 (server error)" in body


def test_an_unreachable_channel_delivers_nothing_and_does_not_raise() -> None:
    settings = AlertSettings(
        webhook=f"http://127.0.0.1:{_free_port()}/nobody", email=email_settings(_free_port())
    )
    alerts = alerts_due([failing(30)], {}, NOW)
    assert asyncio.run(AlertSender(settings, "WSR").deliver(alerts, NOW)) == []


# --- end to end: polls, status, alerts, memory ----------------------------------------


def config_for(server: FixtureServer, webhook: WebhookReceiver, smtp_port: int) -> Config:
    return parse_config(
        f"""network:
  title: WSR Network
  url: https://wsr.example.org/
  feed_url: https://wsr.example.org/news
  alerts:
    webhook: {webhook.url}
    failing_after: 12h
    email:
      to: [staff@wsr.example.org]
      from: aggregator@wsr.example.org
      smtp_host: 127.0.0.1
      smtp_port: {smtp_port}
members:
  - id: dairy
    name: Dairy Workers
    url: https://dairy.example.org/
    sources:
      - feed: {server.url("/dairy.xml")}
"""
    )


def poll(config: Config, store: Store, at: datetime) -> None:
    async def run() -> None:
        async with Fetcher(clock=lambda: at) as fetcher:
            await poll_all(config, store, fetcher)

    asyncio.run(run())


def test_failing_then_recovered_is_told_once_each(
    server: FixtureServer, store: Store, webhook: WebhookReceiver, smtp: tuple[MailBox, int]
) -> None:
    mailbox, port = smtp
    config = config_for(server, webhook, port)
    store.sync_config(config)
    server.routes["/dairy.xml"] = Route(status=503, body=b"down for maintenance")
    poll(config, store, NOW)
    poll(config, store, NOW + timedelta(hours=6))
    assert asyncio.run(check_alerts(store, config, NOW + timedelta(hours=6))) == []

    poll(config, store, NOW + timedelta(hours=13))
    sent = asyncio.run(check_alerts(store, config, NOW + timedelta(hours=13)))
    assert [alert.kind for alert in sent] == ["failing"]
    assert "HTTP 503 (service unavailable)" in sent[0].message
    assert asyncio.run(check_alerts(store, config, NOW + timedelta(hours=14))) == []
    assert len(webhook.received) == 1
    assert len(mailbox.messages) == 1

    server.routes["/dairy.xml"] = Route(
        body=b"""<?xml version="1.0"?><rss version="2.0"><channel><title>D</title>
<item><title>Back</title><guid>back-1</guid><pubDate>Tue, 01 Dec 2026 13:00:00 GMT</pubDate>
</item></channel></rss>"""
    )
    poll(config, store, NOW + timedelta(hours=15))
    recovered = asyncio.run(check_alerts(store, config, NOW + timedelta(hours=15)))
    assert [alert.kind for alert in recovered] == ["recovered"]
    assert asyncio.run(check_alerts(store, config, NOW + timedelta(hours=16))) == []
    assert [payload["kind"] for payload in webhook.received] == ["failing", "recovered"]
    assert store.alert_records() == {}


def test_an_undelivered_alert_is_tried_again(
    server: FixtureServer, store: Store, smtp: tuple[MailBox, int]
) -> None:
    mailbox, port = smtp
    down = WebhookReceiver(status=500)
    down.thread.start()
    try:
        config = config_for(server, down, port)
        config = replace(
            config,
            network=replace(config.network, alerts=replace(config.network.alerts, email=None)),
        )
        store.sync_config(config)
        server.routes["/dairy.xml"] = Route(status=500)
        poll(config, store, NOW)
        later = NOW + timedelta(hours=13)
        assert asyncio.run(check_alerts(store, config, later)) == []
        assert store.alert_records() == {}
        down.status = 200
        assert [a.kind for a in asyncio.run(check_alerts(store, config, later))] == ["failing"]
        assert len(down.received) == 2
    finally:
        down.httpd.shutdown()
        down.httpd.server_close()
    assert mailbox.messages == []
