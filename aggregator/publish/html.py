"""The network's HTML pages: the front page (/), the iframe fragment (/embed), the embed
help (/embed?help) and the "not found" page. Their shared pieces (words in each language,
dates, styles, the document head, safe links) are in page_parts.py.

The front page lists the latest stories with their members and dates, the member list
and the feed addresses, and carries the <link rel="alternate"> tags feed readers use for
autodiscovery. It needs no JavaScript, works from a phone's width up, and has landmarks,
a skip link, headings in order and visible focus. Dates are written in the network's
language, or in a story's own language when it has one.

Pure functions: nothing here may read the clock (`now` is passed in), the network, files
or the database. Everything that came from a feed is escaped with html.escape, except a
story's summary, which normalize has already sanitized; links and images are written
only for http(s) URLs.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlencode

from aggregator import PROJECT_URL
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.models import PublishedStory
from aggregator.publish.embed import EMBED_SCRIPT_PATH
from aggregator.publish.opml import MEMBERS_OPML_PATH
from aggregator.publish.opml import OPML_PATH
from aggregator.publish.opml import member_feed_path
from aggregator.publish.opml import tag_feed_path
from aggregator.publish.page_parts import EMBED_STYLE
from aggregator.publish.page_parts import STYLE
from aggregator.publish.page_parts import Words
from aggregator.publish.page_parts import document_head
from aggregator.publish.page_parts import lang_attribute
from aggregator.publish.page_parts import link
from aggregator.publish.page_parts import shorten
from aggregator.publish.page_parts import time_element
from aggregator.publish.page_parts import words_for
from aggregator.publish.syndication import ATOM_TYPE
from aggregator.publish.syndication import RSS_TYPE
from aggregator.publish.syndication import UNTITLED
from aggregator.publish.syndication import summary_text
from aggregator.text import tag_slug
from aggregator.urls import is_http_url

JSON_FEED_TYPE = "application/feed+json"

# (format name, path relative to the feed base, media type), in the order readers prefer.
FEED_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("Atom", "feed.atom", ATOM_TYPE),
    ("RSS", "feed.rss", RSS_TYPE),
    ("JSON Feed", "feed.json", JSON_FEED_TYPE),
)
README_EMBED_TITLE = "Embedding the latest news on your site"
README_EMBED_URL = PROJECT_URL + "#embedding-the-latest-news-on-your-site"

EMBED_SUMMARY_LENGTH = 180  # characters of plain text per story in the compact fragment
# Characters of plain text per story on the front page: a feed's summary may be one line or
# a whole article, HTML or text; cut to one length, the list reads evenly whatever the
# source, and the story's inline pictures (often the thumbnail again) stay on its own page.
INDEX_SUMMARY_LENGTH = 320

def render_index_page(
    network: NetworkConfig,
    members: Sequence[MemberConfig],
    stories: Sequence[PublishedStory],
    *,
    now: datetime,
    feed_base: str = "",
    search: bool = False,
    query: str = "",
    older: str | None = None,
    paged: bool = False,
) -> str:
    """The / page: `stories` (newest first, as given), the member list and the feeds.

    `feed_base` is the address the feeds are served under, ending in "/"; it defaults to
    network.feed_url. `now` is when the page was made, shown in the footer.

    For the live server (none of this works on a static host, so an export leaves it out):
    `search` adds a plain GET search form (?q=), `query` is the search shown, `older` the
    cursor of the next page ("Older stories" links to ?before=…), and `paged` says this is
    not the first page (a link back to the newest stories).
    """
    base = feed_base or network.feed_url
    language = network.language
    words = words_for(language)
    title = html.escape(network.title)
    feeds = [(name, base + path, media_type) for name, path, media_type in FEED_FORMATS]

    extra = []
    if network.description:
        extra.append(f'<meta name="description" content="{html.escape(network.description)}">')
    extra += [
        f'<link rel="alternate" type="{media_type}" title="{title} ({name})" '
        f'href="{html.escape(url)}">'
        for name, url, media_type in feeds
    ]
    head = document_head(language, title, STYLE, extra)

    body = [
        "<body>",
        f'<a class="skip" href="#news">{html.escape(words.skip)}</a>',
        '<header><div class="wrap">',
        f"<h1>{link(network.url, network.title)}</h1>",
    ]
    if network.description:
        body.append(f"<p>{html.escape(network.description)}</p>")
    body += [
        "</div></header>",
        '<div class="wrap layout">',
        '<main id="news" tabindex="-1" aria-labelledby="news-heading">',
    ]
    heading = f"{words.results_for} “{query}”" if query else words.latest
    body.append(f'<h2 id="news-heading">{html.escape(heading)}</h2>')
    if search:
        body += _search_form(words, query)
    if stories:
        body.append('<ol class="stories">')
        body += [f"<li>{_story(story, language, base)}</li>" for story in stories]
        body.append("</ol>")
    else:
        body.append(f"<p>{html.escape(words.no_results if query else words.no_news)}</p>")
    body += _paging(words, query, older, paged or bool(query))
    body.append("</main>")

    body.append("<aside>")
    body += _subscribe_box(words, feeds, base)
    body += _member_list(words, members, base)
    body.append("</aside>")
    body.append("</div>")

    body += [
        '<footer><div class="wrap">',
        f"<p>{html.escape(words.updated)} {time_element(now, language)}. "
        f"{link(PROJECT_URL, words.powered_by)}.</p>",
        "</div></footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(head + body) + "\n"


def render_embed_fragment(
    network: NetworkConfig,
    stories: Sequence[PublishedStory],
    *,
    limit: int = 5,
) -> str:
    """The /embed document for an iframe: the first `limit` stories, compact, no script.

    Every link opens outside the frame (target="_blank" rel="noopener"): a reader who
    follows one must not end up reading the story squeezed inside the host's iframe.
    """
    language = network.language
    words = words_for(language)
    items = []
    for story in stories[: max(0, limit)]:
        story_language = story.language or language
        lang = lang_attribute(story.language, language)
        parts = [
            f"<li{lang}>",
            link(story.url, story.title or UNTITLED, css_class="t", blank=True),
        ]
        names = ", ".join(html.escape(credit.member_name) for credit in story.credits)
        date = time_element(story.published, story_language)
        meta = " · ".join(part for part in (names, date) if part)
        parts.append(f'<span class="m">{meta}</span>')
        summary = shorten(summary_text(story.summary), EMBED_SUMMARY_LENGTH)
        if summary:
            parts.append(f'<span class="s">{html.escape(summary)}</span>')
        parts.append("</li>")
        items.append("".join(parts))
    more = link(network.feed_url, words.more_news, css_class="more", blank=True)
    content = (
        "<ul>\n" + "\n".join(items) + "\n</ul>" if items else f"<p>{html.escape(words.no_news)}</p>"
    )
    return (
        "\n".join(
            [
                *document_head(language, html.escape(network.title), EMBED_STYLE),
                "<body>",
                content,
                more,
                "</body>",
                "</html>",
            ]
        )
        + "\n"
    )


# --- pieces ---------------------------------------------------------------------------


def _story(story: PublishedStory, network_language: str, base: str) -> str:
    language = story.language or network_language
    words = words_for(language)
    lang = lang_attribute(story.language, network_language)
    parts = [
        f'<article class="story"{lang}>',
        f"<h3>{link(story.url, story.title or UNTITLED)}</h3>",
    ]
    names = ", ".join(link(credit.member_url, credit.member_name) for credit in story.credits)
    meta = f"{html.escape(words.from_)} {names} · " if names else ""
    parts.append(f'<p class="meta">{meta}{time_element(story.published, language)}</p>')
    if is_http_url(story.image):
        # The picture illustrates a story whose title is right next to it, and we cannot
        # know what it shows: an empty alt keeps screen readers from reading noise.
        # width/height give the box its shape before the image loads (no layout jump).
        parts.append(
            f'<img src="{html.escape(story.image or "")}" alt="" width="320" height="180" '
            'loading="lazy" decoding="async">'
        )
    summary = shorten(summary_text(story.summary), INDEX_SUMMARY_LENGTH)
    if summary:
        parts.append(f'<p class="summary">{html.escape(summary)}</p>')
    slugs = [slug for slug in dict.fromkeys(tag_slug(tag) for tag in story.tags) if slug]
    if slugs:
        # Each tag is a feed of its own on the network: the link subscribes to that topic.
        links = "".join(
            f"<li>{link(base + tag_feed_path(slug), '#' + slug, ours=True)}</li>" for slug in slugs
        )
        parts.append(f'<ul class="tags" aria-label="{html.escape(words.tags)}">{links}</ul>')
    parts.append("</article>")
    return "\n".join(parts)


def _subscribe_box(words: Words, feeds: list[tuple[str, str, str]], base: str) -> list[str]:
    lines = [
        '<section class="subscribe" aria-labelledby="subscribe-heading">',
        f'<h2 id="subscribe-heading">{html.escape(words.subscribe)}</h2>',
        f"<p>{html.escape(words.subscribe_intro)}</p>",
        "<ul>",
    ]
    lines += [
        f"<li>{link(url, name, ours=True)}<br><code>{html.escape(url)}</code></li>"
        for name, url, _ in feeds
    ]
    lines += [
        f"<li>{link(base + MEMBERS_OPML_PATH, words.members_opml, ours=True)}</li>",
        f"<li>{link(base + OPML_PATH, words.all_feeds_opml, ours=True)}</li>",
        "</ul>",
        "</section>",
    ]
    return lines


def _search_form(words: Words, query: str) -> list[str]:
    # A plain GET form to the page itself: the server answers ?q= with the matching stories,
    # so searching needs no JavaScript.
    return [
        '<form class="search" role="search" method="get" action="">',
        f'<label class="visually-hidden" for="q">{html.escape(words.search)}</label>',
        f'<input id="q" name="q" type="search" maxlength="200" value="{html.escape(query)}" '
        f'placeholder="{html.escape(words.search)}">',
        f'<button type="submit">{html.escape(words.search_button)}</button>',
        "</form>",
    ]


def _paging(words: Words, query: str, older: str | None, paged: bool) -> list[str]:
    links = []
    if paged:
        links.append(f'<a href="?">{html.escape(words.newest)}</a>')
    if older:
        target = "?" + urlencode({"q": query, "before": older} if query else {"before": older})
        links.append(f'<a rel="next" href="{html.escape(target)}">{html.escape(words.older)} →</a>')
    if not links:
        return []
    return [f'<nav class="paging" aria-label="{html.escape(words.older)}">', *links, "</nav>"]


def render_not_found_page(network: NetworkConfig, *, message: str = "") -> str:
    """The HTML page for an address the site does not have (an HTTP 404), in the network's
    language, linking back to the news page; `message` replaces the usual explanation
    (a bad search or page address, answered 400 with this page)."""
    words = words_for(network.language)
    title = html.escape(words.not_found)
    return (
        "\n".join(
            [
                *document_head(
                    network.language, f"{title} · {html.escape(network.title)}", STYLE
                ),
                '<body><main class="wrap">',
                f"<h1>{title}</h1>",
                f"<p>{html.escape(message or words.not_found_text)}</p>",
                f"<p>{link(network.feed_url, words.back_to_news, ours=True)}</p>",
                "</main></body>",
                "</html>",
            ]
        )
        + "\n"
    )


def render_embed_help(network: NetworkConfig) -> str:
    """/embed?help: how to put the latest news on another site, with the snippets to copy.

    The full reference (every data-* attribute, colours, fallbacks) is the README section
    this page links to; the two snippets here are the ones almost everyone needs.
    """
    script = network.feed_url + EMBED_SCRIPT_PATH
    frame = network.feed_url + "embed"
    snippet = f'<div data-wsr-news data-limit="5"></div>\n<script src="{script}" async></script>'
    iframe = (
        f'<iframe src="{frame}" title="{network.title}" loading="lazy"\n'
        '        style="width:100%;max-width:40rem;height:32rem;border:0"></iframe>'
    )
    title = f"{network.title}: embedding the latest news"
    return (
        "\n".join(
            [
                *document_head(
                    "en",
                    html.escape(title),
                    STYLE + "pre{overflow:auto;background:var(--box);padding:1rem}",
                ),
                '<body><main class="wrap">',
                f"<h1>{html.escape(title)}</h1>",
                "<p>Paste these two lines where the news should appear on your page:</p>",
                f"<pre><code>{html.escape(snippet)}</code></pre>",
                "<p>Optional attributes on the div: <code>data-member</code> (a member id), "
                "<code>data-tag</code>, <code>data-lang</code> (e.g. es), "
                "<code>data-limit</code> (1 to 50, default 5), <code>data-source</code> "
                "(another JSON address). Without JavaScript, or if the news server does not "
                "answer within 5 seconds, the box shows a link to the news instead.</p>",
                "<p>Or, where scripts are not allowed, a frame:</p>",
                f"<pre><code>{html.escape(iframe)}</code></pre>",
                f"<p>Every option: {link(README_EMBED_URL, README_EMBED_TITLE)} (README)."
                f" {link(frame, 'This is how the frame looks', ours=True)}.</p>",
                "</main></body>",
                "</html>",
            ]
        )
        + "\n"
    )


def _member_list(words: Words, members: Sequence[MemberConfig], base: str) -> list[str]:
    if not members:
        return []
    lines = [
        '<section aria-labelledby="members-heading">',
        f'<h2 id="members-heading">{html.escape(words.members)}</h2>',
        '<ul class="members">',
    ]
    for member in members:
        hidden = html.escape(f" {words.feed_of} {member.name}")
        feed_links = " · ".join(
            link(
                base + member_feed_path(member.id, path.rsplit(".", 1)[1]),
                name,
                hidden_suffix=hidden,
                ours=True,
            )
            for name, path, _ in FEED_FORMATS
        )
        lang = lang_attribute(member.language, None)
        lines.append(
            f"<li{lang}>{link(member.url, member.name)} "
            f'<span class="feeds">({feed_links})</span></li>'
        )
    lines += ["</ul>", "</section>"]
    return lines


