"""The front page and the iframe fragment: escaping, autodiscovery, dates, members, markup."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from typing import Any

import html5lib
import pytest

from aggregator.models import Credit
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.models import PublishedStory
from aggregator.models import SourceConfig
from aggregator.publish.html import render_embed_fragment
from aggregator.publish.html import render_index_page
from aggregator.publish.page_parts import human_date
from aggregator.urls import is_http_url

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
NETWORK = NetworkConfig(
    title="WSR Network",
    url="https://wsr-network.org/",
    feed_url="https://news.wsr-network.org/",
    description="News from the Worker-driven Social Responsibility Network",
)
CIW = MemberConfig(
    id="ciw",
    name="Coalition of Immokalee Workers",
    url="https://ciw-online.org/",
    sources=(SourceConfig("ciw", "feed", "https://ciw-online.org/feed/"),),
)
FFP = MemberConfig(
    id="ffp",
    name="Fair Food Program",
    url="https://fairfoodprogram.org/",
    sources=(SourceConfig("ffp", "page", "https://fairfoodprogram.org/news/"),),
    language="es",
)
CIW_CREDIT = Credit("ciw", CIW.name, CIW.url, "https://ciw-online.org/blog/2026/11/march/")
HOSTILE_TITLE = '<img src=x onerror="window.__pwned=1"> & <script>alert(1)</script>'

STORY = PublishedStory(
    id="urn:uuid:6f1b6a44-2a0e-4c55-9a54-2f0d7a1c3e10",
    url="https://ciw-online.org/blog/2026/11/march/",
    title="Farmworkers march for Fair Food in Immokalee",
    content_html="<p>Hundreds marched on Saturday.</p>",
    summary="<p>Hundreds marched <b>on Saturday</b>.</p>",
    published=datetime(2026, 11, 24, 22, 0, tzinfo=UTC),
    updated=datetime(2026, 11, 24, 23, 0, tzinfo=UTC),
    credits=(CIW_CREDIT,),
    tags=("farmworkers",),
    image="https://ciw-online.org/wp-content/uploads/march.jpg",
)
SPANISH_STORY = replace(
    STORY,
    id="urn:uuid:0d5c0b57-3f6e-4a8e-8a55-6c0c5b3e2a11",
    url="https://fairfoodprogram.org/noticias/marcha/",
    title="Trabajadores marchan por la Comida Justa",
    summary="<p>Cientos marcharon el sábado.</p>",
    published=datetime(2026, 3, 5, 12, 0, tzinfo=UTC),
    credits=(Credit("ffp", FFP.name, FFP.url, None),),
    image=None,
    language="es-MX",
)


def parse_strictly(document: str) -> ET.Element:
    """The document as an HTML5 parser reads it; any parse error fails the test."""
    parser = html5lib.HTMLParser(
        strict=True, tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False
    )
    root: ET.Element = parser.parse(document)
    return root


def text_of(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def page(*stories: PublishedStory, network: NetworkConfig = NETWORK, **kwargs: Any) -> ET.Element:
    return parse_strictly(render_index_page(network, [CIW, FFP], stories, now=NOW, **kwargs))


def test_hostile_title_is_text_not_markup() -> None:
    hostile = replace(STORY, title=HOSTILE_TITLE)

    root = page(hostile)

    heading = root.find(".//article/h3")
    assert heading is not None
    assert text_of(heading) == " ".join(HOSTILE_TITLE.split())
    assert root.findall(".//script") == []
    assert [img.get("src") for img in root.iter("img")] == [STORY.image]
    assert not any(name.startswith("on") for element in root.iter() for name in element.attrib)


def test_only_http_urls_become_links_or_images() -> None:
    sneaky = replace(
        STORY,
        url="javascript:window.__pwned=1",
        image="data:image/svg+xml,<svg onload=alert(1)>",
        credits=(Credit("ciw", CIW.name, "javascript:alert(1)", None),),
    )

    root = page(sneaky)

    article = root.find(".//article")
    assert article is not None
    # The only links left are the network's own tag feeds.
    hrefs = [a.get("href") or "" for a in article.findall(".//a")]
    assert hrefs == [NETWORK.feed_url + "tags/farmworkers/feed.atom"]
    assert article.findall(".//img") == []
    assert "Farmworkers march" in text_of(article)
    assert all("javascript" not in (a.get("href") or "") for a in root.iter("a"))


def test_summary_is_text_of_one_length_and_no_picture_twice() -> None:
    long_html = (
        '<p><img src="https://ciw-online.org/wp-content/uploads/march.jpg" alt="">'
        + "Hundreds marched <b>on Saturday</b>. " * 40
        + '… <a href="https://ciw-online.org/blog/">Continue reading</a></p>'
    )

    root = page(replace(STORY, summary=long_html), replace(SPANISH_STORY, summary="Short."))

    summaries = root.findall(".//p[@class='summary']")
    assert [len(text_of(s)) <= 320 for s in summaries] == [True, True]
    assert text_of(summaries[0]).startswith("Hundreds marched on Saturday.")
    assert text_of(summaries[0]).endswith("…")
    assert "Continue reading" not in text_of(root)
    article = root.find(".//article")
    assert article is not None
    images = [img.get("src") for img in article.iter("img")]
    assert images == [STORY.image]


def test_tags_link_to_their_tag_feeds() -> None:
    root = page(replace(STORY, tags=("Fair Food", "farmworkers")))

    tags = root.find(".//article/ul[@class='tags']")
    assert tags is not None
    links = {text_of(a): a.get("href") for a in tags.iter("a")}
    assert links == {
        "#fair-food": NETWORK.feed_url + "tags/fair-food/feed.atom",
        "#farmworkers": NETWORK.feed_url + "tags/farmworkers/feed.atom",
    }


def test_page_has_a_favicon_and_links_both_opml_documents() -> None:
    root = page(STORY)

    icons = [link for link in root.findall("./head/link") if link.get("rel") == "icon"]
    assert len(icons) == 1
    assert (icons[0].get("href") or "").startswith("data:image/svg+xml,")
    hrefs = {a.get("href") for a in root.iter("a")}
    assert {NETWORK.feed_url + "members.opml", NETWORK.feed_url + "opml"} <= hrefs


def test_feed_autodiscovery_links_in_head() -> None:
    root = page(STORY)

    links = {
        link.get("type"): link.get("href")
        for link in root.findall("./head/link")
        if link.get("rel") == "alternate"
    }
    assert links == {
        "application/atom+xml": "https://news.wsr-network.org/feed.atom",
        "application/rss+xml": "https://news.wsr-network.org/feed.rss",
        "application/feed+json": "https://news.wsr-network.org/feed.json",
    }


def test_feed_base_overrides_where_feeds_are_served() -> None:
    root = page(STORY, feed_base="http://127.0.0.1:8080/")

    hrefs = [link.get("href") for link in root.findall("./head/link")]
    assert "http://127.0.0.1:8080/feed.atom" in hrefs
    codes = [code.text for code in root.iter("code")]
    assert codes == [
        "http://127.0.0.1:8080/feed.atom",
        "http://127.0.0.1:8080/feed.rss",
        "http://127.0.0.1:8080/feed.json",
    ]


def test_subscribe_box_lists_feeds_and_opml() -> None:
    root = page(STORY)

    box = root.find(".//section[@class='subscribe']")
    assert box is not None
    hrefs = [a.get("href") for a in box.iter("a")]
    assert hrefs == [
        "https://news.wsr-network.org/feed.atom",
        "https://news.wsr-network.org/feed.rss",
        "https://news.wsr-network.org/feed.json",
        "https://news.wsr-network.org/members.opml",
        "https://news.wsr-network.org/opml",
    ]


def test_member_list_links_members_and_their_feeds() -> None:
    root = page()

    members = root.findall(".//ul[@class='members']/li")
    assert len(members) == 2
    first_links = [a.get("href") for a in members[0].iter("a")]
    assert first_links == [
        "https://ciw-online.org/",
        "https://news.wsr-network.org/members/ciw/feed.atom",
        "https://news.wsr-network.org/members/ciw/feed.rss",
        "https://news.wsr-network.org/members/ciw/feed.json",
    ]
    # Screen readers list links out of context: "Atom" alone would say whose feed?
    assert "Atom feed of Coalition of Immokalee Workers" in text_of(members[0])
    assert members[1].get("lang") == "es"


def test_story_credits_and_date_in_english() -> None:
    root = page(STORY)

    meta = root.find(".//article/p[@class='meta']")
    assert meta is not None
    assert [a.get("href") for a in meta.iter("a")] == ["https://ciw-online.org/"]
    time = meta.find("time")
    assert time is not None
    assert time.get("datetime") == "2026-11-24T22:00:00Z"
    assert time.text == "24 November 2026"
    assert text_of(meta).startswith("From Coalition of Immokalee Workers")


def test_story_with_its_own_language_uses_it() -> None:
    root = page(STORY, SPANISH_STORY)

    articles = root.findall(".//article")
    assert articles[0].get("lang") is None
    assert articles[1].get("lang") == "es-MX"
    time = articles[1].find(".//time")
    assert time is not None
    assert time.text == "5 de marzo de 2026"
    assert text_of(articles[1]).startswith("Trabajadores marchan")
    assert "De Fair Food Program" in text_of(articles[1])


def test_spanish_network_page() -> None:
    spanish = replace(NETWORK, language="es")

    root = page(STORY, network=spanish)

    assert root.get("lang") == "es"
    assert [text_of(h2) for h2 in root.iter("h2")] == [
        "Últimas noticias",
        "Suscribirse",
        "Miembros",
    ]
    time = root.find(".//article//time")
    assert time is not None
    assert time.text == "24 de noviembre de 2026"
    # A story in the page's own language needs no lang attribute of its own.
    assert root.find(".//article[@lang]") is None


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "24 November 2026"),
        ("en-GB", "24 November 2026"),
        ("es", "24 de noviembre de 2026"),
        ("ES_mx", "24 de noviembre de 2026"),
        ("fr", "2026-11-24"),
        (None, "2026-11-24"),
    ],
)
def test_human_date(language: str | None, expected: str) -> None:
    assert human_date(datetime(2026, 11, 24, 22, tzinfo=UTC), language) == expected


def test_human_date_takes_naive_times_as_utc() -> None:
    assert human_date(datetime(2026, 1, 1, 0, 30), "en") == "1 January 2026"


def test_accessible_structure() -> None:
    root = page(STORY, SPANISH_STORY)

    assert root.get("lang") == "en"
    body = root.find("body")
    assert body is not None
    skip = body[0]
    assert skip.tag == "a"
    assert skip.get("href") == "#news"
    assert root.find(".//main[@id='news']") is not None
    for landmark in ("header", "main", "aside", "footer"):
        assert len(root.findall(f".//{landmark}")) == 1, landmark
    levels = [int(element.tag[1]) for element in root.iter() if element.tag in {"h1", "h2", "h3"}]
    assert levels[0] == 1
    assert all(later - earlier <= 1 for earlier, later in itertools.pairwise(levels))
    image = root.find(".//article/img")
    assert image is not None
    assert image.get("alt") == ""
    assert image.get("loading") == "lazy"
    assert image.get("width")
    assert image.get("height")
    viewport = root.find("./head/meta[@name='viewport']")
    assert viewport is not None


def test_no_javascript_and_styles_inline() -> None:
    document = render_index_page(NETWORK, [CIW], [STORY], now=NOW)

    root = parse_strictly(document)

    assert root.findall(".//script") == []
    assert root.findall("./head/style")
    assert root.findall(".//link[@rel='stylesheet']") == []
    assert ":focus-visible" in document


def test_empty_page_says_so() -> None:
    root = page()

    main = root.find(".//main")
    assert main is not None
    assert "No news yet." in text_of(main)
    assert root.findall(".//article") == []


def test_stories_keep_their_order_and_the_output_is_stable() -> None:
    first = render_index_page(NETWORK, [CIW], [SPANISH_STORY, STORY], now=NOW)

    assert first == render_index_page(NETWORK, [CIW], [SPANISH_STORY, STORY], now=NOW)
    titles = [text_of(h3) for h3 in parse_strictly(first).iter("h3")]
    assert titles == [SPANISH_STORY.title, STORY.title]


def test_footer_shows_when_the_page_was_made() -> None:
    root = page()

    footer_time = root.find(".//footer//time")
    assert footer_time is not None
    assert footer_time.get("datetime") == "2026-11-25T09:30:00Z"


def test_embed_fragment_is_a_small_document_opening_links_outside() -> None:
    stories = [replace(STORY, id=f"urn:uuid:{n}", title=f"Story {n}") for n in range(8)]

    root = parse_strictly(render_embed_fragment(NETWORK, stories, limit=3))

    assert root.get("lang") == "en"
    assert [text_of(a) for a in root.findall(".//li/a")] == ["Story 0", "Story 1", "Story 2"]
    links = list(root.iter("a"))
    assert links
    assert all(a.get("target") == "_blank" and a.get("rel") == "noopener" for a in links)
    assert root.findall(".//script") == []
    assert links[-1].get("href") == NETWORK.feed_url


def test_embed_fragment_escapes_everything_from_feeds() -> None:
    hostile = replace(
        STORY,
        title=HOSTILE_TITLE,
        summary="<p>Before<script>window.__pwned=2</script> &lt;b&gt;after</p>",
        credits=(Credit("ciw", "<b>CIW</b>", CIW.url, None),),
    )

    root = parse_strictly(render_embed_fragment(NETWORK, [hostile, SPANISH_STORY]))

    assert root.findall(".//script") == []
    assert root.findall(".//li//b") == []
    items = root.findall(".//li")
    title = items[0].find("a")
    summary = items[0].find("span[@class='s']")
    assert title is not None
    assert summary is not None
    assert text_of(title) == " ".join(HOSTILE_TITLE.split())
    assert "<b>CIW</b>" in text_of(items[0])
    # The summary shows as the text a browser would have shown: no script source in it.
    assert text_of(summary) == "Before <b>after"
    assert items[1].get("lang") == "es-MX"
    assert "5 de marzo de 2026" in text_of(items[1])


def test_embed_fragment_without_stories() -> None:
    root = parse_strictly(render_embed_fragment(NETWORK, []))

    assert "No news yet." in text_of(root)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ciw-online.org/", True),
        ("HTTP://EXAMPLE.ORG/a", True),
        ("javascript:alert(1)", False),
        ("  javascript:alert(1)", False),
        ("data:text/html,x", False),
        ("//example.org/", False),
        ("/relative", False),
        ("http://[::1", False),
        (None, False),
        ("", False),
    ],
)
def test_is_http_url(url: str | None, expected: bool) -> None:
    assert is_http_url(url) is expected
