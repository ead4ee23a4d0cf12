"""Items with nothing to show (only a <guid>: no title, no text) never blank a stored story.

A hacked or broken feed that sends the GUIDs of its stories with everything else gone
would otherwise overwrite each stored headline with an empty one, on every page and feed.
Such items are skipped, and the poll's warning says how many. Through a real poll: the
fixture server, the poller, an SQLite store and the published feed parsed back.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from pathlib import Path

import feedparser

from aggregator.demo.server import Route
from aggregator.store import Store
from tests.hostile.server import config_for
from tests.hostile.server import export
from tests.hostile.server import poll
from tests.support.server import FixtureServer

WHOLE = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Member</title><link>https://member.example.org/</link>
<item><title>The real headline</title><link>https://member.example.org/story</link>
<guid>https://member.example.org/story</guid><description>What happened.</description>
<pubDate>Mon, 03 Jun 2024 10:00:00 GMT</pubDate></item>
</channel></rss>"""

GUID_ONLY = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Member</title><link>https://member.example.org/</link>
<item><guid>https://member.example.org/story</guid></item>
<item><guid isPermaLink="false">tag:member.example.org,2024:other</guid></item>
</channel></rss>"""


def test_an_item_with_only_a_guid_is_skipped_and_leaves_the_stored_story_alone(
    server: FixtureServer, sqlite_store: Store, tmp_path: Path
) -> None:
    headers = {"Content-Type": "application/rss+xml"}
    server.routes["/feed.xml"] = Route(body=WHOLE, headers=headers)
    config = config_for({"member": [server.url("/feed.xml")]})
    clock = lambda: datetime(2024, 6, 3, 12, 0, tzinfo=UTC)  # noqa: E731 (a one-line clock)
    [first] = poll(config, sqlite_store, clock=clock)
    assert first.error is None

    server.routes["/feed.xml"] = Route(body=GUID_ONLY, headers=headers)
    [second] = poll(config, sqlite_store, clock=clock)
    assert second.error is None
    assert second.warning is not None
    assert "2 items with nothing to show" in second.warning

    titles = [story.title for story in sqlite_store.latest_stories(10)]
    assert titles == ["The real headline"]
    files = export(config, sqlite_store, tmp_path)
    published = feedparser.parse(files["feed.atom"])
    assert [entry.title for entry in published.entries] == ["The real headline"]
