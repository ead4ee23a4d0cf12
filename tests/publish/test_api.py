"""The items API's parameters and document shape (pure; the served API is in test_web)."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime

import pytest

from aggregator.models import Credit
from aggregator.models import PublishedStory
from aggregator.models import StoryCursor
from aggregator.publish.api import DEFAULT_LIMIT
from aggregator.publish.api import ApiQueryError
from aggregator.publish.api import ItemsQuery
from aggregator.publish.api import decode_cursor
from aggregator.publish.api import encode_cursor
from aggregator.publish.api import error_document
from aggregator.publish.api import items_document
from aggregator.publish.api import parse_items_query
from aggregator.text import tag_slug

MEMBERS = {"ciw", "mdi"}
STORY = PublishedStory(
    id="urn:uuid:00000000-0000-5000-8000-000000000001",
    url="https://ciw.example/2026/11/fair-food/",
    title="Fair Food Program expands <north>",
    content_html="<p>Full <b>text</b>.</p>",
    summary="<p>The <b>Fair</b> Food Program</p><p>expands.</p>",
    published=datetime(2026, 11, 24, 22, 0, 0, 123456, tzinfo=UTC),
    updated=datetime(2026, 11, 25, 1, 30, tzinfo=UTC),
    credits=(Credit("ciw", "CIW", "https://ciw.example/", "https://ciw.example/2026/11/ff/"),),
    tags=("Fair Food",),
    image=None,
    language="en",
)


def test_defaults_are_the_query_less_request() -> None:
    assert parse_items_query({}, MEMBERS) == ItemsQuery(limit=DEFAULT_LIMIT)
    assert parse_items_query({"_": "1700000000", "q": "  "}, MEMBERS) == ItemsQuery()


def test_every_parameter_is_read() -> None:
    cursor = StoryCursor(datetime(2026, 11, 24, 22, 0, 0, 5, tzinfo=UTC), 17)
    query = parse_items_query(
        {
            "limit": "100",
            "member": "mdi",
            "tag": "Fair Food",
            "before": encode_cursor(cursor),
            "q": " heat ",
            "lang": "es-MX",
            "full": "1",
        },
        MEMBERS,
    )
    assert query == ItemsQuery(
        limit=100, member="mdi", tag="Fair Food", before=cursor, q="heat", lang="es-MX", full=True
    )


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "-1"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": "٣"}, "limit"),  # a non-ASCII digit is not a limit
        ({"member": "CIW"}, "member"),
        ({"tag": "--"}, "tag"),
        ({"before": "MjAyNnwx"}, "before"),  # valid base64, not a cursor
        ({"lang": "e"}, "lang"),
        ({"full": "true"}, "full"),
    ],
)
def test_bad_parameters_name_themselves(params: dict[str, str], parameter: str) -> None:
    with pytest.raises(ApiQueryError) as raised:
        parse_items_query(params, MEMBERS)
    assert raised.value.parameter == parameter
    document = json.loads(error_document(raised.value))
    assert document == {"error": raised.value.message, "parameter": parameter}


def test_cursor_round_trips_and_is_url_safe() -> None:
    cursor = StoryCursor(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), 123456)
    token = encode_cursor(cursor)
    assert token.replace("-", "").replace("_", "").isalnum()
    assert decode_cursor(token) == cursor
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor("2026-01-02|1")  # not base64 of a timezone-aware date


def test_items_document_has_the_agreed_shape() -> None:
    next_cursor = StoryCursor(STORY.published, 9)
    document = json.loads(items_document([STORY], next_cursor))
    assert document["next"] == encode_cursor(next_cursor)
    assert document["items"] == [
        {
            "id": STORY.id,
            "url": STORY.url,
            "title": "Fair Food Program expands <north>",
            "summary": STORY.summary,
            "summary_text": "The Fair Food Program expands.",
            "published": "2026-11-24T22:00:00Z",
            "updated": "2026-11-25T01:30:00Z",
            "image": None,
            "language": "en",
            "tags": ["Fair Food"],
            "members": [
                {
                    "id": "ciw",
                    "name": "CIW",
                    "url": "https://ciw.example/",
                    "item_url": "https://ciw.example/2026/11/ff/",
                }
            ],
        }
    ]
    full = json.loads(items_document([STORY], None, full=True))
    assert full["next"] is None
    assert full["items"][0]["content_html"] == "<p>Full <b>text</b>.</p>"


@pytest.mark.parametrize(
    ("tag", "slug"),
    [
        ("Fair Food", "fair-food"),
        ("fair-food", "fair-food"),
        ("Health & Safety", "health-safety"),
        ("Capacitación", "capacitacion"),
        ("../etc/passwd", "etc-passwd"),
        ("__", ""),
    ],
)
def test_tag_slug(tag: str, slug: str) -> None:
    assert tag_slug(tag) == slug
