"""Checking feeds.yaml's 'network:' block: title, addresses, limits, alerts, retention, WebSub.

It must never fetch or check an address over the network.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from ruamel.yaml.comments import CommentedMap

from aggregator.config.check_base import CheckerBase
from aggregator.config.check_base import describe
from aggregator.config.check_base import key_line
from aggregator.models import AlertSettings
from aggregator.models import EmailSettings
from aggregator.models import FetchLimits
from aggregator.models import NetworkConfig

# A shorter retention is almost surely a slip ("30m" for 30 months) and would delete
# nearly everything at the next prune.
MIN_RETENTION = timedelta(days=1)
_EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_NETWORK_KEYS = (
    "title",
    "url",
    "feed_url",
    "description",
    "language",
    "items_per_feed",
    "interval",
    "alerts",
    "limits",
    "retention",
    "websub_hub",
    "websub_callback_base",
)
_LIMIT_KEYS = (
    "max_megabytes",
    "total_timeout",
    "connect_timeout",
    "read_timeout",
    "max_redirects",
    "concurrency",
    "per_host",
    "tags_per_item",
    "title_length",
    "summary_length",
    "items_per_poll",
)
_ALERT_KEYS = ("webhook", "email", "failing_after", "quiet_after")
_ALERT_EMAIL_KEYS = ("to", "from", "smtp_host", "smtp_port", "starttls")


class NetworkChecks(CheckerBase):
    """The checks of the 'network:' block."""

    def network(self, root: CommentedMap) -> NetworkConfig | None:
        if "network" not in root:
            self.problem(
                "the file has no 'network:' block (the network's title and addresses)",
                None,
                field="network",
            )
            return None
        node = root["network"]
        if not isinstance(node, CommentedMap):
            self.problem(
                "'network' should be a block of keys (title:, url:, feed_url:, …), "
                f"not {describe(node)}",
                key_line(root, "network"),
                field="network",
            )
            return None
        self.unknown_keys(node, _NETWORK_KEYS, {}, member=None, prefix="network.")
        title = self.text(
            node,
            "title",
            member=None,
            field="network.title",
            required="the network has no 'title:'; it names the combined feed",
            block_line=key_line(root, "network"),
        )
        url = self.url(
            node,
            "url",
            member=None,
            field="network.url",
            required="the network has no 'url:' (its website)",
            block_line=key_line(root, "network"),
        )
        feed_url = self.feed_url(node, key_line(root, "network"))
        description = self.text(node, "description", member=None, field="network.description")
        language = self.language(node, member=None, field="network.language")
        items_per_feed = self.items_per_feed(node)
        interval = self.duration(node, "interval", member=None, field="network.interval")
        alerts = self.alerts(node)
        limits = self.limits(node)
        retention = self.retention(node)
        websub_hub = self.url(node, "websub_hub", member=None, field="network.websub_hub")
        websub_callback_base = self.websub_callback_base(node)
        if title is None or url is None or feed_url is None:
            return None
        optional: dict[str, Any] = {
            "description": description,
            "language": language,
            "items_per_feed": items_per_feed,
            "interval": interval,
            "alerts": alerts,
            "limits": limits,
            "retention": retention,
            "websub_hub": websub_hub,
            "websub_callback_base": websub_callback_base,
        }
        # Absent keys keep the defaults written once in models.NetworkConfig.
        network = NetworkConfig(
            title=title,
            url=url,
            feed_url=feed_url,
            **{key: value for key, value in optional.items() if value is not None},
        )
        return network

    def websub_callback_base(self, node: CommentedMap) -> str | None:
        """`network.websub_callback_base`: this service's public address for WebSub hubs."""
        field = "network.websub_callback_base"
        url = self.url(node, "websub_callback_base", member=None, field=field)
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            self.problem(
                f"{url!r} should be the service's address, without '?' or '#' "
                "(callbacks are made by adding /websub/… to it)",
                key_line(node, "websub_callback_base"),
                field=field,
            )
            return None
        return url.rstrip("/")

    def retention(self, node: CommentedMap) -> timedelta | None:
        """`network.retention`: how long items are kept (absent: for ever)."""
        retention = self.duration(node, "retention", member=None, field="network.retention")
        if retention is not None and retention < MIN_RETENTION:
            self.problem(
                f"'retention' should be at least a day (items older than it are deleted "
                f"for good), like '365d', not {node['retention']!r}",
                key_line(node, "retention"),
                field="network.retention",
            )
            return None
        return retention

    def limits(self, node: CommentedMap) -> FetchLimits | None:
        """`network.limits`: the fetcher's caps, each optional (defaults in FetchLimits)."""
        if "limits" not in node:
            return None
        value = node["limits"]
        if not isinstance(value, CommentedMap):
            self.problem(
                f"'limits' should be a block of keys ({', '.join(_LIMIT_KEYS)}), "
                f"not {describe(value)}",
                key_line(node, "limits"),
                field="network.limits",
            )
            return None
        self.unknown_keys(value, _LIMIT_KEYS, {}, member=None, prefix="network.limits.")
        seconds = {
            key: duration.total_seconds()
            for key in ("total_timeout", "connect_timeout", "read_timeout")
            if (duration := self.duration(value, key, member=None, field=f"network.limits.{key}"))
        }
        counts = {
            key: number
            for key, example in (
                ("max_megabytes", "10"),
                ("max_redirects", "5"),
                ("concurrency", "16"),
                ("per_host", "2"),
                ("tags_per_item", "20"),
                ("title_length", "500"),
                ("summary_length", "4000"),
                ("items_per_poll", "200"),
            )
            if (number := self.positive_int(value, key, f"network.limits.{key}", example))
        }
        defaults = FetchLimits()
        limits = FetchLimits(
            concurrency=counts.get("concurrency", defaults.concurrency),
            connect_timeout=seconds.get("connect_timeout", defaults.connect_timeout),
            read_timeout=seconds.get("read_timeout", defaults.read_timeout),
            total_timeout=seconds.get("total_timeout", defaults.total_timeout),
            max_bytes=counts["max_megabytes"] * 1024 * 1024
            if "max_megabytes" in counts
            else defaults.max_bytes,
            max_redirects=counts.get("max_redirects", defaults.max_redirects),
            per_host=counts.get("per_host", defaults.per_host),
            tags_per_item=counts.get("tags_per_item", defaults.tags_per_item),
            title_length=counts.get("title_length", defaults.title_length),
            summary_length=counts.get("summary_length", defaults.summary_length),
            items_per_poll=counts.get("items_per_poll", defaults.items_per_poll),
        )
        return limits

    def alerts(self, node: CommentedMap) -> AlertSettings | None:
        """`network.alerts`: where staff are told about failing, quiet and moved sources."""
        if "alerts" not in node:
            return None
        value = node["alerts"]
        line = key_line(node, "alerts")
        if not isinstance(value, CommentedMap):
            self.problem(
                "'alerts' should be a block of keys (webhook:, email:, failing_after:, "
                f"quiet_after:), not {describe(value)}",
                line,
                field="network.alerts",
            )
            return None
        self.unknown_keys(value, _ALERT_KEYS, {}, member=None, prefix="network.alerts.")
        webhook = self.url(value, "webhook", member=None, field="network.alerts.webhook")
        email = self.alert_email(value)
        failing_after = self.duration(
            value, "failing_after", member=None, field="network.alerts.failing_after"
        )
        quiet_after = self.duration(
            value, "quiet_after", member=None, field="network.alerts.quiet_after"
        )
        settings = AlertSettings(webhook=webhook, email=email)
        if failing_after is not None:
            settings = replace(settings, failing_after=failing_after)
        if quiet_after is not None:
            settings = replace(settings, quiet_after=quiet_after)
        return settings

    def alert_email(self, node: CommentedMap) -> EmailSettings | None:
        if "email" not in node:
            return None
        value = node["email"]
        line = key_line(node, "email")
        field = "network.alerts.email"
        if not isinstance(value, CommentedMap):
            self.problem(
                "'email' should be a block of keys (to:, from:, smtp_host:, smtp_port:), "
                f"not {describe(value)}",
                line,
                field=field,
            )
            return None
        self.unknown_keys(value, _ALERT_EMAIL_KEYS, {}, member=None, prefix=f"{field}.")
        recipients = value.get("to")
        to: list[str] = []
        if isinstance(recipients, str):
            recipients = [recipients]
        if not isinstance(recipients, list) or not recipients:
            self.problem(
                "'email' needs 'to:', the address(es) alerts are sent to, like [staff@example.org]",
                key_line(value, "to") if "to" in value else line,
                field=f"{field}.to",
            )
        else:
            for address in recipients:
                if isinstance(address, str) and _EMAIL_PATTERN.fullmatch(address.strip()):
                    to.append(address.strip())
                else:
                    self.problem(
                        f"{address!r} is not an email address like staff@example.org",
                        key_line(value, "to"),
                        field=f"{field}.to",
                    )
        sender = self.text(
            value,
            "from",
            member=None,
            field=f"{field}.from",
            required="'email' needs 'from:', the address alerts are sent from",
            block_line=line,
        )
        if sender is not None and not _EMAIL_PATTERN.fullmatch(sender):
            self.problem(
                f"{sender!r} is not an email address like aggregator@example.org",
                key_line(value, "from"),
                field=f"{field}.from",
            )
            sender = None
        smtp_host = self.text(value, "smtp_host", member=None, field=f"{field}.smtp_host")
        smtp_port = value.get("smtp_port", 25)
        port_ok = isinstance(smtp_port, int) and not isinstance(smtp_port, bool)
        if not port_ok or not 0 < smtp_port < 65536:
            self.problem(
                f"'smtp_port' should be a port number like 25 or 587, not {describe(smtp_port)}",
                key_line(value, "smtp_port"),
                field=f"{field}.smtp_port",
            )
            smtp_port = None
        starttls = value.get("starttls", False)
        if not isinstance(starttls, bool):
            self.problem(
                "'starttls' should be true or false",
                key_line(value, "starttls"),
                field=f"{field}.starttls",
            )
            starttls = None
        if sender is None or not to or smtp_port is None or starttls is None:
            return None
        return EmailSettings(
            to=tuple(to),
            sender=sender,
            smtp_host=smtp_host or "localhost",
            smtp_port=int(smtp_port),
            starttls=starttls,
        )

    def feed_url(self, node: CommentedMap, block_line: int | None) -> str | None:
        url = self.url(
            node,
            "feed_url",
            member=None,
            field="network.feed_url",
            required="the network has no 'feed_url:' (where the combined feed is published)",
            block_line=block_line,
        )
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            self.problem(
                f"{url!r} should be a folder address, without '?' or '#'",
                key_line(node, "feed_url"),
                field="network.feed_url",
            )
            return None
        # Published files are named relative to feed_url, so it must read as a folder.
        if not parts.path.endswith("/"):
            url = urlunsplit(parts._replace(path=parts.path + "/"))
        return url

    def items_per_feed(self, node: CommentedMap) -> int | None:
        return self.positive_int(node, "items_per_feed", "network.items_per_feed", "50")

    def positive_int(self, node: CommentedMap, key: str, field: str, example: str) -> int | None:
        if key not in node:
            return None
        value = node[key]
        line = key_line(node, key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(
                f"'{key}' should be a whole number like {example}, not {describe(value)}",
                line,
                field=field,
            )
            return None
        if value < 1:
            self.problem(f"'{key}' should be at least 1", line, field=field)
            return None
        return int(value)
