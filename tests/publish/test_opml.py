"""OPML 2.0 of the members' own feeds and of the network's published feeds, parsed back."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from aggregator.config.opml_import import read_opml
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.models import SourceConfig
from aggregator.publish.opml import members_opml
from aggregator.publish.opml import published_opml

NETWORK = NetworkConfig(
    title="WSR Network", url="https://wsr.example/", feed_url="https://news.wsr.example/"
)
MEMBERS = (
    MemberConfig(
        id="ciw",
        name="Coalition of Immokalee Workers & friends",
        url="https://ciw.example/",
        tags=("agriculture", "fair-food"),
        sources=(
            SourceConfig(member_id="ciw", kind="feed", url="https://ciw.example/feed/?a=1&b=2"),
            SourceConfig(member_id="ciw", kind="page", url="https://ciw.example/news/"),
        ),
    ),
    MemberConfig(
        id="mdi",
        name="Migrant Dairy Initiative",
        url="https://mdi.example/",
        sources=(SourceConfig(member_id="mdi", kind="feed", url="https://mdi.example/rss"),),
    ),
)


def test_members_opml_round_trips_names_sites_feeds_and_pages() -> None:
    root = ET.fromstring(members_opml(NETWORK, MEMBERS))
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "WSR Network: member feeds"
    ciw, mdi = root.findall("body/outline")
    assert ciw.get("text") == "Coalition of Immokalee Workers & friends"
    assert ciw.get("htmlUrl") == "https://ciw.example/"
    assert ciw.get("category") == "/agriculture,/fair-food"
    feed, page = ciw.findall("outline")
    assert feed.attrib == {
        "text": "Coalition of Immokalee Workers & friends",
        "title": "Coalition of Immokalee Workers & friends",
        "type": "rss",
        "xmlUrl": "https://ciw.example/feed/?a=1&b=2",
        "htmlUrl": "https://ciw.example/",
    }
    assert page.get("type") == "link" and page.get("url") == "https://ciw.example/news/"
    assert page.get("xmlUrl") is None
    assert [o.get("xmlUrl") for o in mdi.findall("outline")] == ["https://mdi.example/rss"]
    assert mdi.get("category") is None


def test_published_opml_lists_combined_member_and_tag_feeds() -> None:
    root = ET.fromstring(published_opml(NETWORK, MEMBERS, ["fair-food", "capacitación"]))
    combined, members, topics = root.findall("body/outline")
    assert combined.get("xmlUrl") == "https://news.wsr.example/feed.atom"
    assert combined.get("htmlUrl") == "https://wsr.example/"
    assert [o.get("xmlUrl") for o in members.findall("outline")] == [
        "https://news.wsr.example/members/ciw/feed.atom",
        "https://news.wsr.example/members/mdi/feed.atom",
    ]
    assert [o.get("htmlUrl") for o in members.findall("outline")] == [
        "https://ciw.example/",
        "https://mdi.example/",
    ]
    assert [o.get("xmlUrl") for o in topics.findall("outline")] == [
        "https://news.wsr.example/tags/fair-food/feed.atom",
        "https://news.wsr.example/tags/capacitaci%C3%B3n/feed.atom",
    ]
    assert all(o.get("type") == "rss" for o in root.iter("outline") if o.get("xmlUrl"))


def test_no_members_or_tags_leaves_out_their_groups_and_output_is_stable() -> None:
    first = published_opml(NETWORK, (), [])
    assert len(ET.fromstring(first).findall("body/outline")) == 1
    assert first == published_opml(NETWORK, (), [])
    assert first.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<opml")


def test_a_page_only_member_is_listed_with_its_network_feed() -> None:
    page_only = MemberConfig(
        id="ffp",
        name="Fair Food Program",
        url="https://ffp.example/",
        sources=(SourceConfig(member_id="ffp", kind="page", url="https://ffp.example/news/"),),
    )

    root = ET.fromstring(members_opml(NETWORK, (*MEMBERS, page_only)))

    subscribable = {
        outline.get("xmlUrl")
        for outline in root.iter("outline")
        if outline.get("type") == "rss" and outline.get("xmlUrl")
    }
    # Every member can be subscribed to: ciw and mdi by their own feeds, ffp by the network's.
    assert "https://news.wsr.example/members/ffp/feed.atom" in subscribable
    ciw, _mdi, ffp = root.findall("body/outline")
    assert [o.get("type") for o in ffp.findall("outline")] == ["rss", "link"]
    assert all(
        o.get("xmlUrl", "").startswith("https://ciw.example/")
        for o in ciw.iter("outline")
        if o.get("xmlUrl")
    )


def test_import_does_not_take_the_network_feed_for_a_members_source() -> None:
    page_only = MemberConfig(
        id="ffp",
        name="Fair Food Program",
        url="https://ffp.example/",
        sources=(SourceConfig(member_id="ffp", kind="page", url="https://ffp.example/news/"),),
    )

    (member,) = read_opml(members_opml(NETWORK, (page_only,)))

    assert member.sources == [("page", "https://ffp.example/news/")]
