"""Atom and RSS publishing: what goes in must come back out of feedparser, byte-stable."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import feedparser
import pytest

from aggregator.models import Credit
from aggregator.models import NetworkConfig
from aggregator.models import PublishedStory
from aggregator.publish.syndication import EMPTY_FEED_UPDATED
from aggregator.publish.syndication import GENERATOR_NAME
from aggregator.publish.syndication import UNTITLED
from aggregator.publish.syndication import render_atom
from aggregator.publish.syndication import render_rss
from aggregator.text import html_to_text

ATOM = "http://www.w3.org/2005/Atom"
NS = {"a": ATOM}

NETWORK = NetworkConfig(
    title="Worker-driven Social Responsibility Network",
    url="https://wsr-network.org/",
    feed_url="https://wsr-network.org/feeds/",
    description="News from the organizations of the WSR Network",
    language="en",
    interval=timedelta(minutes=30),
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
    item_url="https://migrantjustice.net/news/fair-food-program-expands",
)
FAIR_FOOD = Credit(
    member_id="ffsc",
    member_name="Fair Food Standards Council",
    member_url="https://www.fairfoodstandards.org/",
    item_url=None,
)

Renderer = Callable[..., bytes]
RENDERERS = [pytest.param(render_atom, id="atom"), pytest.param(render_rss, id="rss")]


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


def as_datetime(parsed: time.struct_time) -> datetime:
    return datetime(*parsed[:6], tzinfo=UTC)


def parse(document: bytes) -> Any:
    result = feedparser.parse(document)
    assert not result.bozo, result.get("bozo_exception")
    return result


# --- both formats ---------------------------------------------------------------------


@pytest.mark.parametrize("render", RENDERERS)
def test_entries_come_back_in_the_given_order(render: Renderer) -> None:
    stories = [make_story(1), make_story(2), make_story(3)]

    result = parse(render(NETWORK, stories))

    assert [entry.id for entry in result.entries] == [story.id for story in stories]
    assert [entry.title for entry in result.entries] == [story.title for story in stories]
    assert [entry.link for entry in result.entries] == [story.url for story in stories]


@pytest.mark.parametrize("render", RENDERERS)
def test_order_is_the_callers_even_when_not_by_date(render: Renderer) -> None:
    # The store decides the order (e.g. by first-seen time); the publisher must not re-sort.
    stories = [make_story(3), make_story(1), make_story(2)]

    result = parse(render(NETWORK, stories))

    assert [entry.id for entry in result.entries] == [story.id for story in stories]


@pytest.mark.parametrize("render", RENDERERS)
def test_rendering_is_deterministic(render: Renderer) -> None:
    stories = [make_story(1), make_story(2, credits=(CIW, MIGRANT_JUSTICE))]

    first = render(NETWORK, stories)
    time.sleep(0.01)  # feedgen defaults dates to "now": any leak would show as a diff
    second = render(NETWORK, stories)

    assert first == second


@pytest.mark.parametrize("render", RENDERERS)
def test_empty_feed_is_valid_and_deterministic(render: Renderer) -> None:
    document = render(NETWORK, [])

    result = parse(document)
    assert result.entries == []
    assert result.feed.title == NETWORK.title
    assert as_datetime(result.feed.updated_parsed) == EMPTY_FEED_UPDATED
    assert render(NETWORK, []) == document


@pytest.mark.parametrize("render", RENDERERS)
def test_title_with_markup_characters_and_accents_survives(render: Renderer) -> None:
    title = "Trabajadores agrícolas & growers <sign> the Fair Food agreement — “at last”"
    story = make_story(1, title=title)

    document = render(NETWORK, [story])

    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "Trabajadores agrícolas".encode() in document  # UTF-8, not character references
    assert parse(document).entries[0].title == title


@pytest.mark.parametrize("render", RENDERERS)
def test_self_link_hangs_off_feed_url(render: Renderer) -> None:
    result = parse(render(NETWORK, [make_story(1)], feed_path="members/ciw/feed.xml"))

    self_links = [link.href for link in result.feed.links if link.rel == "self"]
    assert self_links == ["https://wsr-network.org/feeds/members/ciw/feed.xml"]
    assert result.feed.link == NETWORK.url


@pytest.mark.parametrize("render", RENDERERS)
def test_title_override_for_member_feeds(render: Renderer) -> None:
    result = parse(render(NETWORK, [make_story(1)], title="WSR Network: CIW"))

    assert result.feed.title == "WSR Network: CIW"


@pytest.mark.parametrize("render", RENDERERS)
def test_feed_language_and_generator(render: Renderer) -> None:
    document = render(NETWORK, [make_story(1)])

    result = parse(document)
    assert result.feed.language == "en"
    assert result.feed.generator == GENERATOR_NAME
    assert b"python-feedgen" not in document


@pytest.mark.parametrize("render", RENDERERS)
def test_feed_updated_defaults_to_the_latest_story_update(render: Renderer) -> None:
    # The first story is the newest *published*, but the second was edited later.
    late_edit = datetime(2024, 5, 20, 9, 15, tzinfo=UTC)
    stories = [make_story(1), make_story(2, updated=late_edit)]

    result = parse(render(NETWORK, stories))

    assert as_datetime(result.feed.updated_parsed) == late_edit


@pytest.mark.parametrize("render", RENDERERS)
def test_feed_updated_can_be_given(render: Renderer) -> None:
    given = datetime(2024, 6, 1, 0, 0, tzinfo=UTC)

    result = parse(render(NETWORK, [make_story(1)], updated=given))

    assert as_datetime(result.feed.updated_parsed) == given


@pytest.mark.parametrize("render", RENDERERS)
def test_dates_are_written_in_utc(render: Renderer) -> None:
    naive_utc = datetime(2024, 5, 1, 12, 0)  # as SQLite hands timestamps back
    eastern = datetime(2024, 5, 1, 10, 0, 30, 999, tzinfo=timezone(timedelta(hours=-4)))
    story = make_story(1, published=naive_utc, updated=eastern)

    document = render(NETWORK, [story])

    entry = parse(document).entries[0]
    assert as_datetime(entry.published_parsed) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert as_datetime(parse(document).feed.updated_parsed) == datetime(
        2024, 5, 1, 14, 0, 30, tzinfo=UTC
    )
    assert b"-0400" not in document
    assert b"-04:00" not in document


@pytest.mark.parametrize("render", RENDERERS)
def test_story_with_several_credits_names_every_member(render: Renderer) -> None:
    story = make_story(1, credits=(CIW, MIGRANT_JUSTICE, FAIR_FOOD))

    entry = parse(render(NETWORK, [story])).entries[0]

    names = [author.name for author in entry.authors]
    assert names == [
        "Coalition of Immokalee Workers",
        "Migrant Justice",
        "Fair Food Standards Council",
    ]


@pytest.mark.parametrize("render", RENDERERS)
def test_story_authors_become_contributors(render: Renderer) -> None:
    story = make_story(1, authors=("Lupe Gonzalo", "Gerardo Reyes Chávez"))

    entry = parse(render(NETWORK, [story])).entries[0]

    assert [person.name for person in entry.contributors] == [
        "Lupe Gonzalo",
        "Gerardo Reyes Chávez",
    ]


@pytest.mark.parametrize("render", RENDERERS)
def test_content_and_summary_come_back_as_html(render: Renderer) -> None:
    story = make_story(
        1,
        content_html='<p>Read the <a href="https://ciw-online.org/report">report</a>.</p>',
        summary="<p>Workers &amp; growers agree.</p>",
    )

    entry = parse(render(NETWORK, [story])).entries[0]

    assert entry.content[0].type == "text/html"
    assert entry.content[0].value == story.content_html
    assert entry.summary == story.summary


@pytest.mark.parametrize("render", RENDERERS)
def test_image_is_a_media_thumbnail(render: Renderer) -> None:
    story = make_story(1, image="https://ciw-online.org/wp-content/uploads/harvest.jpg")

    entry = parse(render(NETWORK, [story])).entries[0]

    assert [thumb["url"] for thumb in entry.media_thumbnail] == [story.image]


@pytest.mark.parametrize("render", RENDERERS)
def test_control_characters_do_not_break_the_document(render: Renderer) -> None:
    story = make_story(1, title="Harvest\x0b report", summary="<p>Text\x00 here</p>")

    entry = parse(render(NETWORK, [story])).entries[0]

    assert entry.title == "Harvest report"


@pytest.mark.parametrize("render", RENDERERS)
def test_blank_title_gets_a_placeholder(render: Renderer) -> None:
    entry = parse(render(NETWORK, [make_story(1, title="")])).entries[0]

    assert entry.title == UNTITLED


# --- Atom -----------------------------------------------------------------------------


def atom_tree(document: bytes) -> Any:
    return ElementTree.fromstring(document)


def test_atom_entry_round_trip() -> None:
    story = make_story(
        1,
        credits=(CIW, MIGRANT_JUSTICE),
        tags=("fair food", "heat stress"),
        language="es",
    )

    result = parse(render_atom(NETWORK, [story]))

    assert result.version == "atom10"
    entry = result.entries[0]
    assert entry.id == story.id
    assert entry.link == story.url
    assert as_datetime(entry.published_parsed) == story.published
    assert as_datetime(entry.updated_parsed) == story.updated
    assert [(author.name, author.href) for author in entry.authors] == [
        ("Coalition of Immokalee Workers", "https://ciw-online.org/"),
        ("Migrant Justice", "https://migrantjustice.net/"),
    ]
    assert [(tag.term, tag.scheme, tag.label) for tag in entry.tags] == [
        ("fair food", None, None),
        ("heat stress", None, None),
        ("ciw", "https://wsr-network.org/feeds/members/", "Coalition of Immokalee Workers"),
        ("mj", "https://wsr-network.org/feeds/members/", "Migrant Justice"),
    ]
    assert entry.title_detail.language == "es"


def test_atom_feed_metadata() -> None:
    result = parse(render_atom(NETWORK, [make_story(1)]))

    feed = result.feed
    assert feed.id == "https://wsr-network.org/feeds/feed.atom"
    assert feed.subtitle == NETWORK.description
    assert feed.author_detail.name == NETWORK.title
    assert feed.author_detail.href == NETWORK.url
    assert feed.generator_detail.href == "https://github.com/wsr-network/aggregator"
    alternates = [link.href for link in feed.links if link.rel == "alternate"]
    assert alternates == [NETWORK.url]


def test_atom_is_structurally_valid() -> None:
    stories = [
        make_story(1, credits=(CIW, MIGRANT_JUSTICE)),
        make_story(2, credits=()),  # credits lost: the feed-level author must cover it
        make_story(3, url=None, content_html=""),
        make_story(4, content_html="", summary=""),
    ]

    root = atom_tree(render_atom(NETWORK, stories))

    assert root.tag == f"{{{ATOM}}}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"a:{name}", NS)) == 1, name
    feed_has_author = bool(root.findall("a:author/a:name", NS))
    entries = root.findall("a:entry", NS)
    assert len(entries) == len(stories)
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"a:{name}", NS)) == 1, name
        assert feed_has_author or entry.findall("a:author/a:name", NS)
        # RFC 4287 4.1.1.1: no content means an alternate link is required
        links = entry.findall("a:link", NS)
        alternates = [link for link in links if link.get("rel", "alternate") == "alternate"]
        assert len(alternates) <= 1
        assert alternates or entry.findall("a:content", NS)
        for text in ("title", "summary", "content"):
            for element in entry.findall(f"a:{text}", NS):
                assert element.get("type", "text") in {"text", "html"}
    ids = [entry.findtext("a:id", namespaces=NS) for entry in entries]
    assert len(set(ids)) == len(ids)


def test_atom_entry_without_url_carries_its_summary_as_content() -> None:
    story = make_story(1, url=None, content_html="", summary="<p>Only a teaser.</p>")

    entry = parse(render_atom(NETWORK, [story])).entries[0]

    assert [link.rel for link in entry.links if link.rel == "alternate"] == []
    assert entry.content[0].value == "<p>Only a teaser.</p>"


def test_atom_links_each_members_copy_as_via() -> None:
    story = make_story(
        1,
        url=CIW.item_url,
        credits=(CIW, MIGRANT_JUSTICE, FAIR_FOOD),
    )

    document = render_atom(NETWORK, [story])

    entry = parse(document).entries[0]
    assert entry.link == CIW.item_url
    links = {(link.rel, link.href) for link in entry.links}
    assert links == {("alternate", CIW.item_url), ("via", MIGRANT_JUSTICE.item_url)}
    rels = [link.get("rel") for link in atom_tree(document).iterfind("a:entry/a:link", NS)]
    assert rels.count("via") == 1


# --- RSS ------------------------------------------------------------------------------


def test_rss_item_round_trip() -> None:
    story = make_story(1, credits=(CIW, MIGRANT_JUSTICE), language="es")

    result = parse(render_rss(NETWORK, [story]))

    assert result.version == "rss20"
    entry = result.entries[0]
    assert entry.id == story.id
    assert entry.guidislink is False
    assert entry.link == story.url
    assert as_datetime(entry.published_parsed) == story.published
    assert entry.summary == story.summary
    assert entry.content[0].value == story.content_html
    assert [author.name for author in entry.authors] == [
        "Coalition of Immokalee Workers",
        "Migrant Justice",
    ]
    assert [(tag.term, tag.scheme) for tag in entry.tags] == [
        ("fair food", None),
        ("tomatoes", None),
        ("Coalition of Immokalee Workers", "https://wsr-network.org/feeds/members/"),
        ("Migrant Justice", "https://wsr-network.org/feeds/members/"),
    ]
    assert entry.language == "es"


def test_rss_guid_is_not_a_permalink() -> None:
    root = ElementTree.fromstring(render_rss(NETWORK, [make_story(1)]))

    guids = root.findall("channel/item/guid")
    assert [(guid.text, guid.get("isPermaLink")) for guid in guids] == [(make_story(1).id, "false")]
    # RSS <author> must hold an email address; members are credited with dc:creator instead
    assert root.findall("channel/item/author") == []


def test_rss_channel_metadata() -> None:
    result = parse(render_rss(NETWORK, [make_story(1)]))

    feed = result.feed
    assert feed.link == NETWORK.url
    assert feed.subtitle == NETWORK.description
    assert feed.ttl == "30"
    assert as_datetime(feed.updated_parsed) == make_story(1).updated


def test_rss_without_network_description_still_has_one() -> None:
    network = NetworkConfig(title="WSR Network", url=NETWORK.url, feed_url=NETWORK.feed_url)

    result = parse(render_rss(network, []))

    assert result.feed.subtitle == "WSR Network"


def test_rss_item_without_content_uses_summary_as_description() -> None:
    story = make_story(1, content_html="")

    root = ElementTree.fromstring(render_rss(NETWORK, [story]))

    item = root.find("channel/item")
    assert item is not None
    assert item.findtext("description") == story.summary
    assert item.find("{http://purl.org/rss/1.0/modules/content/}encoded") is None


@pytest.mark.parametrize("render", RENDERERS)
@pytest.mark.parametrize(
    ("content_html", "summary", "url"),
    [
        ("<p> </p>", "", "https://ciw.example/1"),
        ("", "<p></p>", None),
        ("", "", None),
        ("  ", "<br>", "https://ciw.example/1"),
    ],
)
def test_no_empty_content_and_no_entry_without_text(
    render: Renderer, content_html: str, summary: str, url: str | None
) -> None:
    story = make_story(1, content_html=content_html, summary=summary, url=url)

    (entry,) = parse(render(NETWORK, [story])).entries

    contents = [part.value for part in entry.get("content", [])]
    assert all(html_to_text(value) for value in contents), contents
    text = html_to_text(entry.get("summary", "")) or " ".join(map(html_to_text, contents))
    assert text == story.title
