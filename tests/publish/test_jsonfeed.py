"""JSON Feed publishing: the output must follow JSON Feed 1.1 and carry every story intact."""

from __future__ import annotations

import json
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import pytest

from aggregator.models import Credit
from aggregator.models import NetworkConfig
from aggregator.models import PublishedStory
from aggregator.publish.jsonfeed import EXTENSION_KEY
from aggregator.publish.jsonfeed import JSON_FEED_VERSION
from aggregator.publish.jsonfeed import render_json_feed
from aggregator.text import html_to_text as plain_text

NETWORK = NetworkConfig(
    title="Worker-driven Social Responsibility Network",
    url="https://wsr-network.org/",
    feed_url="https://wsr-network.org/feeds/",
    description="News from the organizations of the WSR Network",
    language="en",
)

CIW = Credit(
    member_id="ciw",
    member_name="Coalition of Immokalee Workers",
    member_url="https://ciw-online.org/",
    item_url="https://ciw-online.org/blog/2024/05/fair-food-program-expands/",
)
MIGRANT_JUSTICE = Credit(
    member_id="mj",
    member_name="Migrant Justice",
    member_url="https://migrantjustice.net/",
    item_url=None,
)


def make_story(number: int, **changes: Any) -> PublishedStory:
    """A realistic story; `number` keeps ids, links and dates distinct and ordered."""
    published = datetime(2024, 5, 10, 14, 0, tzinfo=UTC) - timedelta(days=number)
    fields: dict[str, Any] = {
        "id": f"urn:uuid:6f1c2b9e-0d4a-4c5e-9b1a-{number:012d}",
        "url": f"https://ciw-online.org/blog/2024/05/story-{number}/",
        "title": f"Fair Food Program update {number}",
        "content_html": f"<p>Workers report progress on farm <b>{number}</b>.</p>",
        "summary": f"<p>Progress on farm {number}.</p>",
        "published": published,
        "updated": published + timedelta(hours=3),
        "credits": (CIW,),
        "authors": ("Lupe Gonzalo",),
        "tags": ("fair food", "tomatoes"),
    }
    fields.update(changes)
    return PublishedStory(**fields)


# --- a checker for https://www.jsonfeed.org/version/1.1/ ------------------------------

FEED_STRINGS = {"title", "home_page_url", "feed_url", "description", "user_comment"}
FEED_STRINGS |= {"next_url", "icon", "favicon", "language"}
FEED_KEYS = FEED_STRINGS | {"version", "items", "authors", "expired", "hubs"}
ITEM_STRINGS = {"id", "url", "external_url", "title", "content_html", "content_text"}
ITEM_STRINGS |= {"summary", "image", "banner_image", "date_published", "date_modified"}
ITEM_STRINGS |= {"language"}
ITEM_KEYS = ITEM_STRINGS | {"tags", "authors", "attachments"}
URL_KEYS = {"home_page_url", "feed_url", "next_url", "icon", "favicon", "url"}
URL_KEYS |= {"external_url", "image", "banner_image"}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def jsonfeed_problems(feed: Any) -> list[str]:
    """Every way `feed` (parsed JSON) departs from JSON Feed 1.1; empty when it conforms."""
    if not isinstance(feed, dict):
        return ["the top level is not an object"]
    problems = []
    if feed.get("version") != JSON_FEED_VERSION:
        problems.append(f"version is {feed.get('version')!r}")
    if not isinstance(feed.get("title"), str):
        problems.append("title is required and must be a string")
    if not isinstance(feed.get("items"), list):
        problems.append("items is required and must be an array")
    problems += _object_problems("feed", feed, FEED_STRINGS, FEED_KEYS)
    if "expired" in feed and not isinstance(feed["expired"], bool):
        problems.append("expired must be a boolean")
    items = feed.get("items") or []
    for index, item in enumerate(items):
        problems += _item_problems(f"items[{index}]", item)
    ids = [item.get("id") for item in items if isinstance(item, dict)]
    if len(set(map(str, ids))) != len(ids):
        problems.append("item ids are not unique")
    return problems


def _item_problems(where: str, item: Any) -> list[str]:
    if not isinstance(item, dict):
        return [f"{where} is not an object"]
    problems = _object_problems(where, item, ITEM_STRINGS, ITEM_KEYS)
    if not isinstance(item.get("id"), str) or not item["id"]:
        problems.append(f"{where}.id is required and must be a non-empty string")
    if "content_html" not in item and "content_text" not in item:
        problems.append(f"{where} needs content_html or content_text")
    for key in ("date_published", "date_modified"):
        value = item.get(key)
        if isinstance(value, str) and not RFC3339.fullmatch(value):
            problems.append(f"{where}.{key} is not RFC 3339: {value!r}")
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        problems.append(f"{where}.tags must be an array of strings")
    return problems


def _object_problems(
    where: str, obj: dict[str, Any], strings: set[str], known: set[str]
) -> list[str]:
    problems = []
    for key, value in obj.items():
        if key.startswith("_"):
            # Extensions: "_" then a letter, and an object (the spec's custom objects).
            if not re.fullmatch(r"_[A-Za-z]\w*", key) or not isinstance(value, dict):
                problems.append(f"{where}.{key} is not a valid extension object")
        elif key not in known:
            problems.append(f"{where}.{key} is not a JSON Feed 1.1 member")
        elif key in strings and not isinstance(value, str):
            problems.append(f"{where}.{key} must be a string")
    for key in [key for key in obj if key in URL_KEYS]:
        if not str(obj[key]).startswith(("https://", "http://")):
            problems.append(f"{where}.{key} is not an absolute URL")
    authors = obj.get("authors", [])
    if not isinstance(authors, list):
        problems.append(f"{where}.authors must be an array")
    else:
        for index, author in enumerate(authors):
            if not isinstance(author, dict) or not {"name", "url", "avatar"} & author.keys():
                problems.append(f"{where}.authors[{index}] needs a name, url or avatar")
    return problems


def render(stories: list[PublishedStory], **options: Any) -> dict[str, Any]:
    document = render_json_feed(NETWORK, stories, **options)
    feed = json.loads(document.decode("utf-8"))
    assert jsonfeed_problems(feed) == []
    assert isinstance(feed, dict)
    return feed


def test_checker_catches_broken_documents() -> None:
    broken = {
        "version": "https://jsonfeed.org/version/1",
        "home_page_url": "/relative",
        "author": {"name": "x"},
        "items": [
            {"url": "https://example.org/a", "title": 3},
            {"id": "b", "content_text": "", "date_published": "2024-05-01 12:00"},
            {"id": "c", "content_html": "", "tags": "fair food", "_1x": {}},
            {"id": "c", "content_html": "<p>again</p>"},
        ],
    }

    problems = jsonfeed_problems(broken)

    assert problems == [
        "version is 'https://jsonfeed.org/version/1'",
        "title is required and must be a string",
        "feed.author is not a JSON Feed 1.1 member",
        "feed.home_page_url is not an absolute URL",
        "items[0].title must be a string",
        "items[0].id is required and must be a non-empty string",
        "items[0] needs content_html or content_text",
        "items[1].date_published is not RFC 3339: '2024-05-01 12:00'",
        "items[2]._1x is not a valid extension object",
        "items[2].tags must be an array of strings",
        "item ids are not unique",
    ]


# --- the feed -------------------------------------------------------------------------


def test_feed_level_members() -> None:
    feed = render([make_story(1)])

    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == NETWORK.title
    assert feed["home_page_url"] == NETWORK.url
    assert feed["feed_url"] == "https://wsr-network.org/feeds/feed.json"
    assert feed["description"] == NETWORK.description
    assert feed["language"] == "en"


def test_member_feed_path_and_title() -> None:
    feed = render([make_story(1)], feed_path="members/ciw/feed.json", title="WSR Network: CIW")

    assert feed["feed_url"] == "https://wsr-network.org/feeds/members/ciw/feed.json"
    assert feed["title"] == "WSR Network: CIW"


def test_item_round_trip() -> None:
    story = make_story(
        1,
        credits=(CIW, MIGRANT_JUSTICE),
        image="https://ciw-online.org/wp-content/uploads/harvest.jpg",
        language="es",
        summary="<p>Workers &amp; growers <em>agree</em>.</p><p>Read on.</p>",
    )

    (item,) = render([story])["items"]

    assert item["id"] == story.id
    assert item["url"] == story.url
    assert item["title"] == story.title
    assert item["content_html"] == story.content_html
    assert item["summary"] == "Workers & growers agree. Read on."
    assert item["image"] == story.image
    assert item["date_published"] == "2024-05-09T14:00:00Z"
    assert item["date_modified"] == "2024-05-09T17:00:00Z"
    assert item["authors"] == [
        {"name": "Coalition of Immokalee Workers", "url": "https://ciw-online.org/"},
        {"name": "Migrant Justice", "url": "https://migrantjustice.net/"},
        {"name": "Lupe Gonzalo"},
    ]
    assert item["tags"] == ["fair food", "tomatoes"]
    assert item["language"] == "es"
    assert item[EXTENSION_KEY]["members"] == [
        {
            "id": "ciw",
            "name": "Coalition of Immokalee Workers",
            "url": "https://ciw-online.org/",
            "item_url": "https://ciw-online.org/blog/2024/05/fair-food-program-expands/",
        },
        {
            "id": "mj",
            "name": "Migrant Justice",
            "url": "https://migrantjustice.net/",
            "item_url": None,
        },
    ]


def test_items_keep_the_given_order() -> None:
    stories = [make_story(2), make_story(1), make_story(3)]

    feed = render(stories)

    assert [item["id"] for item in feed["items"]] == [story.id for story in stories]


def test_rendering_is_deterministic() -> None:
    stories = [make_story(1, credits=(CIW, MIGRANT_JUSTICE)), make_story(2)]

    assert render_json_feed(NETWORK, stories) == render_json_feed(NETWORK, stories)


def test_empty_feed_is_valid() -> None:
    feed = render([])

    assert feed["items"] == []


def test_title_with_markup_characters_and_accents_survives() -> None:
    title = "Trabajadores agrícolas & growers <sign> the agreement"

    document = render_json_feed(NETWORK, [make_story(1, title=title)])

    assert "Trabajadores agrícolas".encode() in document  # UTF-8, not \\u escapes
    assert json.loads(document)["items"][0]["title"] == title


def test_dates_are_utc_with_z() -> None:
    eastern = timezone(timedelta(hours=-4))
    story = make_story(
        1,
        published=datetime(2024, 5, 1, 8, 0, 30, 250_000, tzinfo=eastern),
        updated=datetime(2024, 5, 1, 12, 0),  # naive: UTC, as SQLite hands it back
    )

    (item,) = render([story])["items"]

    assert item["date_published"] == "2024-05-01T12:00:30Z"
    assert item["date_modified"] == "2024-05-01T12:00:00Z"


def test_story_without_content_uses_its_summary() -> None:
    story = make_story(1, content_html="", summary="<p>Only a teaser.</p>")

    (item,) = render([story])["items"]

    assert item["content_html"] == "<p>Only a teaser.</p>"
    assert item["summary"] == "Only a teaser."


def test_sparse_story_leaves_optional_members_out() -> None:
    story = make_story(1, url=None, content_html="", summary="", credits=(), authors=(), tags=())

    (item,) = render([story])["items"]

    assert sorted(item) == sorted(
        ["id", "title", "content_text", "date_published", "date_modified", EXTENSION_KEY]
    )
    # No empty content: a story with no text at all is given its title.
    assert item["content_text"] == story.title


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Short &amp; sweet</p>", "Short & sweet"),
        ("<p>One</p><p>two\n  three</p>", "One two three"),
        ("<b>Immo</b>kalee<br>Florida", "Immokalee Florida"),
        ("<p>Text</p><script>track()</script><style>p{}</style>", "Text"),
        ("Tom &lt;b&gt; &#233;", "Tom <b> é"),
        ("<!-- nothing -->", ""),
        ("", ""),
    ],
)
def test_plain_text(html: str, text: str) -> None:
    assert plain_text(html) == text
