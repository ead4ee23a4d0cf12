"""Render the network's subscription lists as OPML 2.0 (http://opml.org/spec2.opml).

`members_opml` lists every member's own feeds, for readers who want them separately (and
for `import-opml` to read back); `published_opml` lists the feeds this network publishes:
combined, per member and per tag. The same input always gives the same bytes.

Pure functions: this module must never read the clock (OPML's dateCreated is therefore
left out), the database, the network or files.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from urllib.parse import quote

from aggregator.models import NETWORK_FEED_ATTRIBUTE
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.publish.syndication import feed_self_url

OPML_DOCS = "http://opml.org/spec2.opml"
# Where the two OPML documents are published, relative to the feed base.
MEMBERS_OPML_PATH = "members.opml"
OPML_PATH = "opml"


def members_opml(network: NetworkConfig, members: Sequence[MemberConfig]) -> bytes:
    """One outline per member (text = its name, htmlUrl = its site), holding its sources.

    A feed source is a subscribable `type="rss"` outline with its xmlUrl. A news page has
    no feed of its own: it is listed as a `type="link"` outline with the page's address,
    which feed readers skip and an importer can still read back. So that a reader who
    imports this file gets every member, a member with only news pages also gets the
    network's per-member feed (its pages' stories), marked NETWORK_FEED_ATTRIBUTE so that
    `import-opml` does not take the network's own feed for one of the member's sources.
    """
    root, body = _document(f"{network.title}: member feeds")
    for member in members:
        attributes = {"text": member.name, "title": member.name, "htmlUrl": member.url}
        if member.tags:
            attributes["category"] = ",".join(f"/{tag}" for tag in member.tags)
        outline = ET.SubElement(body, "outline", attributes)
        if all(source.kind == "page" for source in member.sources):
            ET.SubElement(
                outline,
                "outline",
                {
                    "text": member.name,
                    "title": member.name,
                    "type": "rss",
                    "version": "ATOM",
                    "xmlUrl": feed_self_url(network, member_feed_path(member.id)),
                    "htmlUrl": member.url,
                    NETWORK_FEED_ATTRIBUTE: "true",
                },
            )
        for source in member.sources:
            if source.kind == "page":
                ET.SubElement(
                    outline,
                    "outline",
                    {"text": f"{member.name} (news page)", "type": "link", "url": source.url},
                )
            else:
                ET.SubElement(
                    outline,
                    "outline",
                    {
                        "text": member.name,
                        "title": member.name,
                        "type": "rss",
                        "xmlUrl": source.url,
                        "htmlUrl": member.url,
                    },
                )
    return _serialize(root)


def published_opml(
    network: NetworkConfig, members: Sequence[MemberConfig], tags: Sequence[str]
) -> bytes:
    """The network's own Atom feeds: the combined one, one per member, one per tag slug."""
    root, body = _document(f"{network.title}: feeds")
    _feed_outline(body, network, network.title, "feed.atom", network.url)
    if members:
        group = ET.SubElement(body, "outline", {"text": "Members"})
        for member in members:
            _feed_outline(group, network, member.name, member_feed_path(member.id), member.url)
    if tags:
        group = ET.SubElement(body, "outline", {"text": "Topics"})
        for tag in tags:
            _feed_outline(group, network, f"{network.title}: {tag}", tag_feed_path(tag), None)
    return _serialize(root)


def member_feed_path(member_id: str, extension: str = "atom") -> str:
    """Where a member's own feed on the network lives, relative to the feed base."""
    return f"members/{quote(member_id, safe='')}/feed.{extension}"


def tag_feed_path(tag: str, extension: str = "atom") -> str:
    """Where a tag's feed lives, URL-escaped (a tag slug may hold non-ASCII letters)."""
    return f"tags/{quote(tag, safe='')}/feed.{extension}"


def _document(title: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element("opml", {"version": "2.0"})
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "docs").text = OPML_DOCS
    return root, ET.SubElement(root, "body")


def _feed_outline(
    parent: ET.Element,
    network: NetworkConfig,
    text: str,
    feed_path: str,
    html_url: str | None,
) -> None:
    attributes = {
        "text": text,
        "title": text,
        "type": "rss",
        "version": "ATOM",
        "xmlUrl": feed_self_url(network, feed_path),
    }
    if html_url:
        attributes["htmlUrl"] = html_url
    ET.SubElement(parent, "outline", attributes)


def _serialize(root: ET.Element) -> bytes:
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"
