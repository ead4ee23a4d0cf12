"""Telling staff when a source needs a person: failing, moved, quiet, and recovered again.

`plan_alerts` is a pure function of the status rows, the
alerts already sent and `now`: it says which alerts to send and which standing ones to
forget. `AlertSender` delivers them by webhook (a JSON POST, with a "text" field so Slack-
and Mattermost-style incoming webhooks show it as is) and/or email (stdlib smtplib, run in
a worker thread). `check_alerts` strings the two together and remembers what was
delivered in the database, so an alert is sent once and its recovery once.

Settings come from feeds.yaml `network.alerts` (defaults in models.AlertSettings: failing
for 24 h, quiet for 60 days). An SMTP login, when the server needs one, is read from the
AGGREGATOR_SMTP_USER and AGGREGATOR_SMTP_PASSWORD environment variables, never from
feeds.yaml.

This module must never poll, never change a source's state, and never let a failing
channel raise into the scheduler: a delivery failure is logged and retried next round.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Literal

import httpx

from aggregator import USER_AGENT
from aggregator.models import AlertRecord
from aggregator.models import AlertSettings
from aggregator.models import Config
from aggregator.models import EmailSettings
from aggregator.service.status import SourceStatus
from aggregator.service.status import status_rows
from aggregator.store import Store

logger = logging.getLogger(__name__)

AlertKind = Literal["failing", "recovered", "moved", "quiet"]
AlertKey = tuple[str, str]  # (kind, subject) of a standing alert
WEBHOOK_TIMEOUT = 10.0
SMTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Alert:
    """One thing to tell staff, in words they can act on."""

    kind: AlertKind
    subject: str  # the source URL, or the member id for "quiet"
    member_id: str
    member_name: str
    source_url: str | None
    title: str  # one line, e.g. for an email subject
    message: str  # what happened and what to do
    detail: str = ""  # e.g. the address a moved source now has

    @property
    def key(self) -> AlertKey:
        # A recovery answers the standing "failing" alert about the same source.
        return ("failing" if self.kind == "recovered" else self.kind, self.subject)


@dataclass(frozen=True)
class AlertPlan:
    alerts: tuple[Alert, ...]
    forget: tuple[AlertKey, ...]  # standing alerts that no longer apply, dropped silently


def _days_or_hours(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{int(seconds // 86400)} days"
    return f"{max(int(seconds // 3600), 1)} hours"


def plan_alerts(
    rows: Sequence[SourceStatus],
    previous: Mapping[AlertKey, AlertRecord],
    now: datetime,
    settings: AlertSettings = AlertSettings(),  # noqa: B008 - frozen, so sharing it is safe
) -> AlertPlan:
    """Which alerts are due given the sources' status and the alerts already standing."""
    alerts: list[Alert] = []
    forget: list[AlertKey] = []
    current_sources = {row.source_url for row in rows}
    current_members = {row.member_id for row in rows}
    for row in rows:
        url = row.source_url
        since = row.failing_since or row.last_success
        failing_long = since is not None and now - since >= settings.failing_after
        if row.consecutive_failures > 0:
            if failing_long and ("failing", url) not in previous:
                assert since is not None
                how_long = _days_or_hours((now - since).total_seconds())
                what = (
                    "the site says this address was removed for good (410 Gone); ask "
                    "the member for its new feed and update feeds.yaml"
                    if row.gone
                    else "check the address in a browser and contact the member if it stays broken"
                )
                alerts.append(
                    Alert(
                        kind="failing",
                        subject=url,
                        member_id=row.member_id,
                        member_name=row.member_name,
                        source_url=url,
                        title=f"{row.member_name}: source failing for {how_long}",
                        message=(
                            f"{url} has failed {row.consecutive_failures} time(s) in a "
                            f"row for {how_long}. Last error: {row.last_error or 'unknown'}."
                            f" What to do: {what}."
                        ),
                    )
                )
        elif ("failing", url) in previous and row.last_success is not None:
            alerts.append(
                Alert(
                    kind="recovered",
                    subject=url,
                    member_id=row.member_id,
                    member_name=row.member_name,
                    source_url=url,
                    title=f"{row.member_name}: source working again",
                    message=f"{url} answered normally again; nothing to do.",
                )
            )
        standing_move = previous.get(("moved", url))
        if row.moved_to:
            if standing_move is None or standing_move.detail != row.moved_to:
                alerts.append(
                    Alert(
                        kind="moved",
                        subject=url,
                        member_id=row.member_id,
                        member_name=row.member_name,
                        source_url=url,
                        title=f"{row.member_name}: source moved permanently",
                        message=(
                            f"{url} redirects permanently (301/308) to {row.moved_to}. "
                            f"What to do: {row.feeds_yaml_change or 'update feeds.yaml'}."
                        ),
                        detail=row.moved_to,
                    )
                )
        elif standing_move is not None:
            forget.append(("moved", url))

    by_member: dict[str, list[SourceStatus]] = {}
    for row in rows:
        by_member.setdefault(row.member_id, []).append(row)
    for member_id, member_rows in by_member.items():
        newest = max(
            (row.newest_item for row in member_rows if row.newest_item is not None), default=None
        )
        if newest is None:
            # Nothing stored yet: the "failing" alert covers a member we cannot read.
            continue
        quiet = now - newest >= settings.quiet_after
        if quiet and ("quiet", member_id) not in previous:
            name = member_rows[0].member_name
            alerts.append(
                Alert(
                    kind="quiet",
                    subject=member_id,
                    member_id=member_id,
                    member_name=name,
                    source_url=None,
                    title=f"{name}: nothing published for "
                    f"{_days_or_hours((now - newest).total_seconds())}",
                    message=(
                        f"The newest item from {name} is dated {newest.date().isoformat()}. "
                        "What to do: check that its feeds in feeds.yaml are still the ones it "
                        "publishes to (a new website often means a new feed address)."
                    ),
                )
            )
        elif not quiet and ("quiet", member_id) in previous:
            forget.append(("quiet", member_id))

    for kind, subject in previous:
        gone = subject not in (current_members if kind == "quiet" else current_sources)
        if gone and (kind, subject) not in forget:
            forget.append((kind, subject))
    return AlertPlan(alerts=tuple(alerts), forget=tuple(forget))


# --- delivery -------------------------------------------------------------------------


def webhook_payload(alert: Alert, network_title: str, now: datetime) -> dict[str, object]:
    return {
        "text": f"[{network_title}] {alert.title}\n{alert.message}",
        "kind": alert.kind,
        "title": alert.title,
        "message": alert.message,
        "member": {"id": alert.member_id, "name": alert.member_name},
        "source": alert.source_url,
        "detail": alert.detail or None,
        "network": network_title,
        "at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def email_message(
    alerts: Sequence[Alert], settings: EmailSettings, network_title: str
) -> EmailMessage:
    """One email for a round's alerts, so an outage of many sources is one message."""
    message = EmailMessage()
    subject = alerts[0].title if len(alerts) == 1 else f"{len(alerts)} sources need attention"
    message["Subject"] = f"[{network_title}] {subject}"
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.to)
    message["Auto-Submitted"] = "auto-generated"
    body = "\n\n".join(f"{alert.title}\n{alert.message}" for alert in alerts)
    message.set_content(
        body + "\n\n-- \nThe news aggregator's alerts (network.alerts in feeds.yaml)\n"
    )
    return message


class AlertSender:
    """Delivers alerts on every configured channel; reports which were delivered."""

    def __init__(
        self,
        settings: AlertSettings,
        network_title: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.network_title = network_title
        self._transport = transport

    @property
    def configured(self) -> bool:
        return self.settings.webhook is not None or self.settings.email is not None

    async def deliver(self, alerts: Sequence[Alert], now: datetime) -> list[Alert]:
        """Send `alerts`; those delivered by at least one channel are returned."""
        if not alerts or not self.configured:
            return []
        delivered: set[int] = set()
        if self.settings.webhook is not None:
            delivered |= await self._post_all(self.settings.webhook, alerts, now)
        if self.settings.email is not None and await self._email(self.settings.email, alerts):
            delivered |= set(range(len(alerts)))
        return [alert for index, alert in enumerate(alerts) if index in delivered]

    async def _post_all(self, url: str, alerts: Sequence[Alert], now: datetime) -> set[int]:
        sent: set[int] = set()
        async with httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT},
            timeout=WEBHOOK_TIMEOUT,
            transport=self._transport,
            trust_env=False,
        ) as client:
            for index, alert in enumerate(alerts):
                try:
                    response = await client.post(
                        url, json=webhook_payload(alert, self.network_title, now)
                    )
                except httpx.HTTPError as exc:
                    logger.error("alert webhook %s failed: %s", url, exc)
                    continue
                if response.is_success:
                    sent.add(index)
                else:
                    logger.error("alert webhook %s answered HTTP %d", url, response.status_code)
        return sent

    async def _email(self, settings: EmailSettings, alerts: Sequence[Alert]) -> bool:
        message = email_message(alerts, settings, self.network_title)
        try:
            await asyncio.to_thread(_send_mail, settings, message)
        except (smtplib.SMTPException, OSError) as exc:
            logger.error(
                "alert email via %s:%d failed: %s", settings.smtp_host, settings.smtp_port, exc
            )
            return False
        return True


def _send_mail(settings: EmailSettings, message: EmailMessage) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT) as smtp:
        if settings.starttls:
            smtp.starttls()
        user = os.environ.get("AGGREGATOR_SMTP_USER")
        if user:
            smtp.login(user, os.environ.get("AGGREGATOR_SMTP_PASSWORD", ""))
        smtp.send_message(message)


async def check_alerts(
    store: Store, config: Config, now: datetime, sender: AlertSender | None = None
) -> list[Alert]:
    """Evaluate, deliver and remember alerts once; returns the alerts delivered."""
    settings = config.network.alerts
    sender = sender or AlertSender(settings, config.network.title)
    with store.singleton("alerts") as ours:
        if not ours:
            return []  # another worker is checking right now; it sends them once
        previous = store.alert_records()
        plan = plan_alerts(status_rows(store, config, now), previous, now, settings)
        delivered = await sender.deliver(plan.alerts, now) if sender.configured else []
        store.save_alert_records(*_alert_changes(delivered, plan.forget, now))
    for alert in delivered:
        logger.warning("alert sent: %s", alert.title)
    return delivered


def _alert_changes(
    delivered: Sequence[Alert], forget: Sequence[AlertKey], now: datetime
) -> tuple[list[AlertRecord], list[AlertKey]]:
    """What to remember after a round: standing alerts sent, recovered ones forgotten."""
    added = [
        AlertRecord(kind=alert.kind, subject=alert.subject, detail=alert.detail, sent_at=now)
        for alert in delivered
        if alert.kind != "recovered"
    ]
    removed = [alert.key for alert in delivered if alert.kind == "recovered"]
    return added, [*removed, *forget]


def scheduled_alert_check(store: Store) -> Callable[[Config, datetime], Awaitable[None]]:
    """The scheduler's periodic check: settings re-read from each (reloaded) config."""

    async def check(config: Config, now: datetime) -> None:
        await check_alerts(store, config, now)

    return check
