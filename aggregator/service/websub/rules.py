"""WebSub's rules, pure: subscription states, what to do about a subscription now, the
HMAC signature of a delivery, and which of our feeds a member's news changes.

This module must never read the clock (`now` is passed in), the database or the network.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from enum import StrEnum
from typing import Literal
from urllib.parse import quote

from aggregator.models import NetworkConfig
from aggregator.models import WebSubRecord
from aggregator.publish.site import FEED_FORMATS
from aggregator.publish.syndication import feed_self_url

SIGNATURE_ALGORITHMS: Mapping[str, Callable[[], hashlib._Hash]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
MAX_CHALLENGE = 1024  # longer is no hub's challenge: not echoed

Action = Literal["subscribe", "unsubscribe", "forget"]


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



# The longest lease a hub's verification is believed for: a year. A hub (or anyone who
# learned a callback address) saying hub.lease_seconds=99999999999999 made the expiry date
# overflow into a 500; a longer lease is taken as this one and renewed in time anyway.
MAX_LEASE_SECONDS = 365 * 24 * 3600


def lease_seconds(text: str | None, default: int) -> int:
    """The lease a hub granted, in seconds: `default` when absent or malformed, at most
    MAX_LEASE_SECONDS."""
    value = text.strip() if text is not None else ""
    # isascii: str.isdigit accepts digits of other scripts ("²") that int() refuses.
    if value.isascii() and value.isdigit() and int(value) > 0:
        return min(int(value), MAX_LEASE_SECONDS)
    return min(default, MAX_LEASE_SECONDS)
