"""Render the network's stories as Atom 1.0 (RFC 4287) and RSS 2.0 documents, via feedgen.

Each story becomes one entry however many members posted it: every crediting member is an
Atom <author> (RSS: a <dc:creator>) and a category in the ".../members/" scheme, so readers
and the per-member feeds can tell who published it. The same input always gives the same
bytes, which lets the caller skip rewriting unchanged files and serve stable ETags.

Pure functions: this module must never read the clock (feedgen defaults every date to
"now", so every date is set explicitly here), touch the network or files, or reorder, drop
or rewrite the stories it is given. Cleaning content is normalize's job; the only change
made here is dropping characters XML cannot carry at all, so that one bad story cannot
make the whole document unrenderable, and no entry is written without text or with an
empty <content/> (story_html, summary_text: shared with the JSON Feed, API and pages).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Any

from feedgen.feed import FeedGenerator

from aggregator import PROJECT_URL
from aggregator import __version__
from aggregator.models import NetworkConfig
from aggregator.models import PublishedStory
from aggregator.text import html_to_text

GENERATOR_NAME = "WSR Network aggregator"

# An empty feed has no story to take its date from, and "now" would make the output
# differ on every run; the epoch says "nothing has happened yet" and stays stable.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)

# Atom and feedgen refuse an empty title; one blank title must not stop the whole feed.
UNTITLED = "(untitled)"

ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"
FEED_HISTORY_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
ATOM_NS = "http://www.w3.org/2005/Atom"

_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# feedgen builds Atom elements in no namespace and writes xmlns as a plain attribute on the
# root; an element added in the Atom namespace would be serialized with a stray prefix.
_ATOM_LINK = "link"

# Characters XML 1.0 forbids; lxml raises on them, and one stray control character in a
# member's title must not make the whole document unrenderable.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# The "… Continue reading" a WordPress excerpt ends with (a link in the HTML) is only noise
# once the summary is plain text, beside a headline that already links to the story: it
# is dropped, with the ellipsis before it, when nothing but a few words follow it.
_READ_MORE_TAIL = re.compile(
    r"\s*(?:…|\.\.\.|\[…\]|\[\.\.\.\])?\s*(?:continue reading|read more|keep reading"
    r"|read the full (?:story|post|article)|leer m[aá]s|seguir leyendo|sigue leyendo)"
    r"(?:\W+\w+){0,12}\W*$",
    re.IGNORECASE,
)


def render_atom(
    network: NetworkConfig,
    stories: Sequence[PublishedStory],
    *,
    feed_path: str = "feed.atom",
    title: str | None = None,
    updated: datetime | None = None,
    links: Sequence[tuple[str, str]] = (),
    archive: bool = False,
    feed_id: str | None = None,
    hub: str | None = None,
) -> bytes:
    """The stories, in the given order, as a UTF-8 Atom 1.0 document.

    `feed_path` is relative to `network.feed_url`; the result is both the self link and the
    feed's atom:id. `updated` defaults to the latest story update, or to the Unix epoch for
    an empty feed (see EMPTY_FEED_UPDATED).

    For RFC 5005 feed history: `links` are extra feed-level (rel, absolute href) pairs, such
    as ("prev-archive", …) or ("current", …), all of them Atom documents; `archive` marks
    the document as an archive (<fh:archive/>); `feed_id` overrides the atom:id, because
    the archive documents of a feed share the id of its subscription document.

    `hub` is a WebSub hub to advertise (<link rel="hub">) beside the self link.
    """
    generator = _feed_generator(
        network,
        stories,
        feed_path=feed_path,
        self_type=ATOM_TYPE,
        title=title,
        updated=updated,
    )
    if feed_id is not None:
        generator.id(feed_id)
    generator.wsr_atom.links = list(links)
    generator.wsr_atom.archive = archive
    generator.wsr_atom.hub = hub
    xml: bytes = generator.atom_str(pretty=True, encoding="UTF-8")
    return xml


def render_rss(
    network: NetworkConfig,
    stories: Sequence[PublishedStory],
    *,
    feed_path: str = "feed.rss",
    title: str | None = None,
    updated: datetime | None = None,
    hub: str | None = None,
) -> bytes:
    """The stories, in the given order, as a UTF-8 RSS 2.0 document.

    `feed_path` is relative to `network.feed_url` and gives the atom:link rel="self".
    `updated` becomes lastBuildDate; it defaults as for render_atom. `hub` is a WebSub hub
    to advertise (<atom:link rel="hub">).
    """
    generator = _feed_generator(
        network,
        stories,
        feed_path=feed_path,
        self_type=RSS_TYPE,
        title=title,
        updated=updated,
    )
    if not generator.description():
        # RSS requires a channel description; Atom is better off with no subtitle.
        generator.description(_xml_text(title or network.title))
    # Readers may wait this long between polls: no point in coming back sooner than we do.
    generator.ttl(max(1, int(network.interval.total_seconds() // 60)))
    generator.wsr_rss.hub = hub
    xml: bytes = generator.rss_str(pretty=True, encoding="UTF-8")
    return xml


def summary_text(summary_html: str) -> str:
    """A story's summary as plain text on one line, without a trailing "Continue reading"."""
    return _READ_MORE_TAIL.sub("", html_to_text(summary_html)).rstrip()


def story_html(story: PublishedStory) -> str:
    """The story's HTML for a feed's content: its full text, else its summary, else "".

    HTML that shows no text (an empty <p></p>, stray whitespace) counts as none, so that no
    feed carries an empty content element.
    """
    for candidate in (story.content_html, story.summary):
        if candidate.strip() and (html_to_text(candidate) or "<img" in candidate):
            return candidate
    return ""


def feed_self_url(network: NetworkConfig, feed_path: str) -> str:
    """Where the document rendered for `feed_path` is served."""
    return network.feed_url + feed_path.lstrip("/")


def members_scheme(network: NetworkConfig) -> str:
    """The category scheme whose terms are member ids (and the base of per-member feeds)."""
    return network.feed_url + "members/"


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC to the second, as every publisher writes dates.

    A naive datetime is taken to be UTC already: the pipeline stores only UTC, and some
    databases (SQLite) hand timestamps back without their zone.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def feed_updated(stories: Sequence[PublishedStory], updated: datetime | None) -> datetime:
    """The feed-level "last changed" date: given, else the latest story update, else the epoch."""
    if updated is not None:
        return as_utc(updated)
    if not stories:
        return EMPTY_FEED_UPDATED
    return max(as_utc(story.updated) for story in stories)


class _NoFeedLevelExtension:
    """feedgen wants a feed-level half for every extension; _AtomEntryExtras has none."""

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, feed: Any) -> Any:
        return feed

    def extend_rss(self, feed: Any) -> Any:
        return feed


class _AtomFeedExtras(_NoFeedLevelExtension):
    """Feed-level Atom elements feedgen does not write: RFC 5005 history links and marker.

    feedgen accepts only the RFC 4287 link relations on a feed (and its RSS channel link is
    the last feed link given), so the history links are added here, to Atom only.
    """

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []
        self.archive = False
        self.hub: str | None = None

    def extend_ns(self) -> dict[str, str]:
        return {"fh": FEED_HISTORY_NS} if self.archive else {}

    def extend_atom(self, feed: Any) -> Any:
        if self.hub:
            feed.append(feed.makeelement(_ATOM_LINK, {"href": self.hub, "rel": "hub"}))
        for rel, href in self.links:
            feed.append(feed.makeelement(_ATOM_LINK, {"href": href, "rel": rel, "type": ATOM_TYPE}))
        if self.archive:
            feed.append(feed.makeelement(f"{{{FEED_HISTORY_NS}}}archive", {}))
        return feed


class _RssFeedExtras(_NoFeedLevelExtension):
    """A WebSub hub link in an RSS channel (<atom:link rel="hub">), which feedgen cannot write:
    it copies only the self link of its feed links into RSS."""

    def __init__(self) -> None:
        self.hub: str | None = None

    def extend_rss(self, feed: Any) -> Any:
        channel = feed.find("channel")
        if self.hub and channel is not None:
            link = channel.makeelement(f"{{{ATOM_NS}}}link", {"href": self.hub, "rel": "hub"})
            channel.append(link)
        return feed


class _AtomEntryExtras(_NoFeedLevelExtension):
    """What feedgen cannot write on an Atom entry: xml:lang, and links other than alternate.

    A network feed mixes English and Spanish stories; xml:lang is how Atom says so per entry.
    feedgen 1.0 drops the rel and type of every entry link it writes (its loop variable
    shadows the link data), so a rel="via" given to it would come out as a second alternate
    link, which RFC 4287 forbids; the via links are therefore written here.
    """

    def __init__(self) -> None:
        self.language: str | None = None
        self.via: list[str] = []

    def extend_atom(self, entry: Any) -> Any:
        if self.language:
            entry.set(_XML_LANG, self.language)
        for href in self.via:
            link = entry.makeelement(_ATOM_LINK, {"href": href, "rel": "via", "type": "text/html"})
            entry.append(link)
        return entry


def _feed_generator(
    network: NetworkConfig,
    stories: Sequence[PublishedStory],
    *,
    feed_path: str,
    self_type: str,
    title: str | None,
    updated: datetime | None,
) -> Any:
    self_url = feed_self_url(network, feed_path)
    generator = FeedGenerator()
    # Before any entry exists: feedgen hands extensions only to entries added afterwards.
    generator.load_extension("dc", atom=False, rss=True)
    generator.load_extension("media", atom=True, rss=True)
    generator.register_extension(
        "wsr_atom", _AtomFeedExtras, _AtomEntryExtras, atom=True, rss=False
    )
    generator.register_extension(
        "wsr_rss", _RssFeedExtras, _NoFeedLevelExtension, atom=False, rss=True
    )

    generator.id(self_url)
    generator.title(_xml_text(title or network.title))
    if network.description:
        generator.description(_xml_text(network.description))
    generator.language(network.language)
    # The RSS channel <link> is feedgen's *last* feed link, so alternate goes after self.
    generator.link(href=self_url, rel="self", type=self_type)
    generator.link(href=network.url, rel="alternate", type="text/html")
    # A feed-level author keeps the document valid Atom even for a story with no credits.
    generator.author(name=_xml_text(network.title), uri=network.url)
    generator.generator(GENERATOR_NAME, version=__version__, uri=PROJECT_URL)
    generator.updated(feed_updated(stories, updated))

    scheme = members_scheme(network)
    for story in stories:
        _add_entry(generator, story, scheme)
    return generator


def _add_entry(generator: Any, story: PublishedStory, scheme: str) -> None:
    # feedgen prepends by default, which would turn newest-first into oldest-first.
    entry = generator.add_entry(order="append")
    entry.guid(story.id, permalink=False)
    entry.title(_xml_text(story.title) or UNTITLED)
    entry.published(as_utc(story.published))
    entry.updated(as_utc(story.updated))
    if story.url:
        entry.link(href=story.url, rel="alternate")
    # Where each cross-posting member has it, so readers can visit that member's copy too.
    entry.wsr_atom.via = list(
        dict.fromkeys(
            credit.item_url
            for credit in story.credits
            if credit.item_url and credit.item_url != story.url
        )
    )

    # Neither an empty <content/> nor an entry with no text at all: HTML that shows nothing
    # counts as none (story_html), and a story with no text gets its title as its summary.
    content = _xml_text(story_html(story))
    summary = _xml_text(story.summary) if summary_text(story.summary) else ""
    if not content:
        summary = html.escape(_xml_text(story.title) or UNTITLED)
    if summary:
        entry.summary(summary, type="html")
    if story.content_html and content and content != summary:
        entry.content(content, type="html")
    elif not story.url:
        # RFC 4287 4.1.1.1: an entry with no alternate link must carry content.
        entry.content(content or summary, type="html")

    if story.credits:
        entry.author(
            [
                {"name": _xml_text(credit.member_name), "uri": credit.member_url}
                for credit in story.credits
            ]
        )
        entry.dc.dc_creator([_xml_text(credit.member_name) for credit in story.credits])
    if story.authors:
        people = [_xml_text(author) for author in story.authors]
        entry.contributor([{"name": person} for person in people])
        entry.dc.dc_contributor(people)

    categories: list[dict[str, str]] = [{"term": _xml_text(tag)} for tag in story.tags]
    categories += [
        {"term": credit.member_id, "scheme": scheme, "label": _xml_text(credit.member_name)}
        for credit in story.credits
    ]
    if categories:
        entry.category(categories)

    if story.image:
        entry.media.thumbnail(url=story.image, group=None)
    if story.language:
        entry.wsr_atom.language = story.language
        entry.dc.dc_language(story.language)


def _xml_text(text: str) -> str:
    return _NOT_XML_CHAR.sub("", text)
