"""Render the network's stories as a JSON Feed 1.1 document (https://www.jsonfeed.org/version/1.1/).

Each story is one item; its crediting members are listed first among the item's authors and,
with their own links to the story, in the "_wsr" extension object, which JSON Feed readers
that do not know it must ignore. The same input always gives the same bytes.

Pure function: this module must never read the clock, touch the network or files, or
reorder, drop or rewrite the stories it is given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aggregator import PROJECT_URL
from aggregator.models import Credit
from aggregator.models import NetworkConfig
from aggregator.models import PublishedStory
from aggregator.publish.syndication import UNTITLED
from aggregator.publish.syndication import as_utc
from aggregator.publish.syndication import feed_self_url
from aggregator.publish.syndication import story_html
from aggregator.publish.syndication import summary_text

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
EXTENSION_KEY = "_wsr"


def render_json_feed(
    network: NetworkConfig,
    stories: Sequence[PublishedStory],
    *,
    feed_path: str = "feed.json",
    title: str | None = None,
    hub: str | None = None,
) -> bytes:
    """The stories, in the given order, as a UTF-8 JSON Feed 1.1 document.

    `feed_path` is relative to `network.feed_url` and gives the feed_url member. JSON Feed
    has no feed-level date, so unlike the Atom and RSS renderers there is no `updated`.
    `hub` is a WebSub hub to advertise in `hubs`.
    """
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": title or network.title,
        "home_page_url": network.url,
        "feed_url": feed_self_url(network, feed_path),
    }
    if network.description:
        feed["description"] = network.description
    feed["language"] = network.language
    if hub:
        feed["hubs"] = [{"type": "WebSub", "url": hub}]
    feed["items"] = [_item(story) for story in stories]
    text = json.dumps(feed, ensure_ascii=False, indent=2)
    return (text + "\n").encode("utf-8")


def rfc3339(moment: datetime) -> str:
    """`moment` as JSON Feed wants dates: RFC 3339, UTC, whole seconds, "Z"."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item(story: PublishedStory) -> dict[str, Any]:
    item: dict[str, Any] = {"id": story.id}
    if story.url:
        item["url"] = story.url
    item["title"] = story.title
    # The spec requires content_html or content_text, and an empty one says nothing: a story
    # scraped from a news page may only have its teaser (still HTML), and one with no text
    # at all gets its title, so that no item reaches a reader without words.
    content = story_html(story)
    if content:
        item["content_html"] = content
    else:
        item["content_text"] = story.title or UNTITLED
    summary = summary_text(story.summary)
    if summary:
        item["summary"] = summary
    if story.image:
        item["image"] = story.image
    item["date_published"] = rfc3339(story.published)
    item["date_modified"] = rfc3339(story.updated)
    authors: list[dict[str, str]] = [
        {"name": credit.member_name, "url": credit.member_url} for credit in story.credits
    ]
    authors += [{"name": person} for person in story.authors]
    if authors:
        item["authors"] = authors
    if story.tags:
        item["tags"] = list(story.tags)
    if story.language:
        item["language"] = story.language
    item[EXTENSION_KEY] = {
        "about": PROJECT_URL,
        "members": [credit_json(credit) for credit in story.credits],
    }
    return item


def credit_json(credit: Credit) -> dict[str, str | None]:
    """A credited member as the JSON documents (JSON Feed extension, API) show it."""
    return {
        "id": credit.member_id,
        "name": credit.member_name,
        "url": credit.member_url,
        "item_url": credit.item_url,
    }
