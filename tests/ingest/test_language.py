"""Filling in the language of items whose source declares none, and filtering stories by it."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from aggregator.ingest.language import with_detected_language
from aggregator.models import CacheValidators
from aggregator.models import Config
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.models import SourceConfig
from aggregator.store import Store

NOW = datetime(2025, 3, 20, tzinfo=UTC)
FEED = "https://m.example.org/feed/"


def item(number: int, title: str, summary: str, language: str | None = None) -> Item:
    return Item(
        member_id="m",
        source_url=FEED,
        key=f"guid:{number}",
        url=f"https://m.example.org/{number}",
        title=title,
        content_html="",
        summary=summary,
        published=datetime(2025, 3, number, tzinfo=UTC),
        updated=datetime(2025, 3, number, tzinfo=UTC),
        date_from_source=True,
        language=language,
        content_hash=str(number),
    )


def test_only_items_without_a_language_are_detected() -> None:
    spanish = "<p>La asamblea de las trabajadoras votó el plan del año en Monterrey.</p>"
    items = with_detected_language(
        [item(1, "Asamblea regional", spanish), item(2, "Asamblea regional", spanish, "en")]
    )
    assert [it.language for it in items] == ["es", "en"]  # a declared language is never overridden


def test_stories_can_be_filtered_by_language(store: Store) -> None:
    source = SourceConfig(member_id="m", kind="feed", url=FEED)
    config = Config(
        network=NetworkConfig(
            title="T", url="https://t.example.org/", feed_url="https://t.example.org/f/"
        ),
        members=(MemberConfig(id="m", name="M", url="https://m.example.org/", sources=(source,)),),
    )
    store.sync_config(config)
    result = FetchResult(source=source, fetched_at=NOW, final_url=FEED, status=200,
                         content=b"x", validators=CacheValidators())  # fmt: skip
    store.record_items(
        result,
        [
            item(1, "Asamblea regional en Monterrey", "", "es-MX"),
            item(2, "Heat protocol won at twelve farms", "", "en"),
        ],
    )
    assert [story.title for story in store.latest_stories(10, language="es")] == [
        "Asamblea regional en Monterrey"
    ]
    assert [story.title for story in store.latest_stories(10, language="en")] == [
        "Heat protocol won at twelve farms"
    ]
