"""The pure decisions of a poll (aggregator.ingest.decide): no database, no network."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from aggregator.identity import body_digest
from aggregator.ingest.decide import PollSettings
from aggregator.ingest.decide import failure_intent
from aggregator.ingest.decide import intent_before_parse
from aggregator.ingest.decide import items_intent
from aggregator.ingest.decide import remembered_feed
from aggregator.models import CacheValidators
from aggregator.models import FetchResult
from aggregator.models import IntentKind
from aggregator.models import Item
from aggregator.models import ItemFilter
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig
from aggregator.models import SourceState

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SOURCE = SourceConfig(member_id="ufw", kind="feed", url="https://ufw.example/feed/")
BODY = b"<rss><channel><item><title>Strike</title></item></channel></rss>"


def state(**changes: object) -> SourceState:
    values: dict[str, object] = {
        "validators": CacheValidators(etag='"v1"'),
        "body_hash": None,
        "consecutive_failures": 0,
        "last_polled_at": None,
        "last_success_at": None,
        "last_error": None,
        "moved_to": None,
        **changes,
    }
    return SourceState(**values)  # type: ignore[arg-type]


def fetched(status: int | None = 200, **changes: object) -> FetchResult:
    values: dict[str, object] = {
        "source": SOURCE,
        "fetched_at": NOW,
        "final_url": SOURCE.url,
        "status": status,
        "content": BODY if status == 200 else None,
        **changes,
    }
    return FetchResult(**values)  # type: ignore[arg-type]


def item(title: str, days_old: int = 1) -> Item:
    when = NOW - timedelta(days=days_old)
    return Item(
        member_id="ufw",
        source_url=SOURCE.url,
        key=f"guid:{title}",
        url=f"https://ufw.example/{title.replace(' ', '-')}",
        title=title,
        content_html="",
        summary="",
        published=when,
        updated=when,
        date_from_source=True,
        language="en",
        content_hash=title,
    )


SETTINGS = PollSettings(language=None, retention=None)


def test_a_fault_is_a_failure_whatever_the_state() -> None:
    intent = intent_before_parse(state(), fetched(None, error="connection refused"))
    assert intent is not None
    assert (intent.kind, intent.cause) == (IntentKind.FAILURE, "connection refused")


def test_a_304_and_the_same_bytes_are_unchanged_and_anything_else_is_parsed() -> None:
    not_modified = intent_before_parse(state(), fetched(304))
    assert not_modified is not None and not_modified.kind is IntentKind.UNCHANGED
    same = intent_before_parse(state(body_hash=body_digest(BODY)), fetched())
    assert same is not None and same.kind is IntentKind.UNCHANGED
    assert intent_before_parse(state(body_hash="other"), fetched()) is None
    assert intent_before_parse(state(), fetched()) is None  # never stored: parse


def test_a_new_feed_address_forgets_the_old_validators_and_body_hash() -> None:
    before = state(discovered_url="https://ufw.example/old/", body_hash="h")
    after = remembered_feed(before, "https://ufw.example/feed/")
    assert after.discovered_url == "https://ufw.example/feed/"
    assert (after.validators, after.body_hash) == (CacheValidators(), None)
    assert remembered_feed(after, "https://ufw.example/feed/") is after  # no change
    forgotten = remembered_feed(before, None)
    assert forgotten.discovered_url is None and forgotten.body_hash is None


def test_remembered_feed_changes_travel_with_the_outcome() -> None:
    intent = failure_intent(fetched(None, error="HTTP 404"), "HTTP 404", discovered=[None])
    assert intent.discovered == (None,) and intent.kind is IntentKind.FAILURE
    unchanged = intent_before_parse(state(), fetched(304), discovered=[None, "https://x/"])
    assert unchanged is not None and unchanged.discovered == (None, "https://x/")


def test_items_keep_their_order_and_filters_and_retention_leave_some_out() -> None:
    source = SourceConfig(
        member_id="ufw",
        kind="feed",
        url=SOURCE.url,
        filters=(ItemFilter(exclude=("raffle",)),),
    )
    items = [item("Strike vote"), item("Raffle tonight"), item("Old news", days_old=40)]
    decision = items_intent(
        fetched(source=source),
        ParsedFeed(url=SOURCE.url, format="rss20", warning="recovered"),
        items,
        PollSettings(language=None, retention=timedelta(days=30)),
    )
    intent = decision.intent
    assert intent.kind is IntentKind.ITEMS
    assert [kept.title for kept in intent.items] == ["Strike vote"]
    assert decision.filtered == 1  # the raffle; the old one was never a candidate
    assert intent.warning == "recovered" and not intent.only_newer


def test_a_polled_feed_reports_its_hub_and_a_pushed_body_is_not_asked() -> None:
    parsed = ParsedFeed(
        url=SOURCE.url, format="rss20", hub_url="/hub", self_url="https://ufw.example/feed/"
    )
    polled = items_intent(fetched(), parsed, [item("Strike")], SETTINGS).intent
    assert polled.websub_hub == ("https://ufw.example/hub", "https://ufw.example/feed/")
    pushed = items_intent(fetched(), parsed, [item("Strike")], SETTINGS, pushed=True).intent
    assert pushed.websub_hub is None and pushed.only_newer
    no_hub = items_intent(fetched(), ParsedFeed(url=SOURCE.url, format="rss20"), [], SETTINGS)
    assert no_hub.intent.websub_hub == (None, None)  # a hub no longer advertised is dropped
