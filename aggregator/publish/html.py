"""The network's HTML pages: the front page (/) and the iframe fragment (/embed).

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
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote
from urllib.parse import urlencode
from urllib.parse import urlsplit

from aggregator import PROJECT_URL
from aggregator.models import MemberConfig
from aggregator.models import NetworkConfig
from aggregator.models import PublishedStory
from aggregator.publish.opml import tag_feed_path
from aggregator.publish.syndication import UNTITLED
from aggregator.publish.syndication import as_utc
from aggregator.publish.syndication import summary_text
from aggregator.text import tag_slug

ATOM_TYPE = "application/atom+xml"
RSS_TYPE = "application/rss+xml"
JSON_FEED_TYPE = "application/feed+json"

# (format name, path relative to the feed base, media type), in the order readers prefer.
FEED_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("Atom", "feed.atom", ATOM_TYPE),
    ("RSS", "feed.rss", RSS_TYPE),
    ("JSON Feed", "feed.json", JSON_FEED_TYPE),
)
MEMBERS_OPML_PATH = "members.opml"
PUBLISHED_OPML_PATH = "opml"
README_EMBED_TITLE = "Embedding the latest news on your site"
README_EMBED_URL = PROJECT_URL + "#embedding-the-latest-news-on-your-site"
EMBED_SCRIPT_PATH = "embed.js"

EMBED_SUMMARY_LENGTH = 180  # characters of plain text per story in the compact fragment
# Characters of plain text per story on the front page: a feed's summary may be one line or
# a whole article, HTML or text; cut to one length, the list reads evenly whatever the
# source, and the story's inline pictures (often the thumbnail again) stay on its own page.
INDEX_SUMMARY_LENGTH = 320

# A newspaper glyph in the network's link colour, inline so that the page, its static
# export and every error page have an icon without another request or file.
FAVICON = "data:image/svg+xml," + quote(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect x="1" y="2" width="14" height="12" rx="2" fill="#0645ad"/>'
    '<path d="M4 5h8M4 8h8M4 11h5" stroke="#fff" stroke-width="1.5"/></svg>',
    safe="",
)

MONTHS: dict[str, tuple[str, ...]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
}
_DATE_PATTERNS = {"en": "{day} {month} {year}", "es": "{day} de {month} de {year}"}


@dataclass(frozen=True)
class _Words:
    """The page's own words in one language."""

    skip: str
    latest: str
    no_news: str
    from_: str
    members: str
    website: str
    feed_of: str
    subscribe: str
    subscribe_intro: str
    members_opml: str
    updated: str
    powered_by: str
    more_news: str
    tags: str
    search: str
    search_button: str
    results_for: str
    no_results: str
    older: str
    newest: str
    all_feeds_opml: str
    not_found: str
    not_found_text: str
    back_to_news: str


WORDS: dict[str, _Words] = {
    "en": _Words(
        skip="Skip to the news",
        latest="Latest news",
        no_news="No news yet.",
        from_="From",
        members="Members",
        website="website",
        feed_of="feed of",
        subscribe="Subscribe",
        subscribe_intro="Paste one of these addresses into your feed reader:",
        members_opml="Every member's feeds, for readers that import OPML",
        updated="Updated",
        powered_by="Made with the WSR Network aggregator",
        more_news="More news",
        tags="Topics",
        search="Search the news",
        search_button="Search",
        results_for="Stories matching",
        no_results="No story matches this search.",
        older="Older stories",
        newest="Newest stories",
        all_feeds_opml="The network's own feeds, every member's included (OPML)",
        not_found="Page not found",
        not_found_text="There is nothing at this address.",
        back_to_news="Go to the latest news",
    ),
    "es": _Words(
        skip="Saltar a las noticias",
        latest="Últimas noticias",
        no_news="Todavía no hay noticias.",
        from_="De",
        members="Miembros",
        website="sitio web",
        feed_of="canal de",
        subscribe="Suscribirse",
        subscribe_intro="Pegue una de estas direcciones en su lector de noticias:",
        members_opml="Los canales de cada miembro, para lectores que importan OPML",
        updated="Actualizado",
        powered_by="Hecho con el agregador de la Red WSR",
        more_news="Más noticias",
        tags="Temas",
        search="Buscar en las noticias",
        search_button="Buscar",
        results_for="Noticias que contienen",
        no_results="Ninguna noticia coincide con esta búsqueda.",
        older="Noticias anteriores",
        newest="Noticias más recientes",
        all_feeds_opml="Los canales de la red, incluido el de cada miembro (OPML)",
        not_found="Página no encontrada",
        not_found_text="No hay nada en esta dirección.",
        back_to_news="Ir a las últimas noticias",
    ),
}
DEFAULT_WORDS = WORDS["en"]

_STYLE = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1b1b;--muted:#595959;--link:#0645ad;
--visited:#5a3696;--line:#d6d6d6;--box:#f3f5f8;--focus:#ffbf47}
@media (prefers-color-scheme:dark){:root{--bg:#121212;--fg:#ececec;--muted:#b3b3b3;
--link:#8ab4f8;--visited:#c58af9;--line:#3a3a3a;--box:#1e1e1e}}
*,*::before,*::after{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--link)}a:visited{color:var(--visited)}
a:focus-visible{outline:3px solid var(--focus);outline-offset:2px;background:var(--focus);
color:#000;text-decoration:none}
.skip{position:absolute;left:-100vw;top:0}
.skip:focus{left:1rem;top:1rem;padding:.5rem 1rem;z-index:1}
.wrap{max-width:72rem;margin:0 auto;padding:0 1rem}
header{border-bottom:1px solid var(--line)}
header p{margin:0 0 1rem;color:var(--muted)}
h1{margin:1rem 0 .25rem;font-size:clamp(1.5rem,4vw,2.2rem);line-height:1.2}
h2{font-size:1.35rem;margin:1.5rem 0 .5rem}
.layout{display:grid;gap:0 2.5rem;grid-template-columns:minmax(0,1fr)}
@media (min-width:52rem){.layout{grid-template-columns:minmax(0,2fr) minmax(16rem,1fr)}}
.stories{list-style:none;margin:0;padding:0}
.story{display:flow-root;padding:1rem 0;border-bottom:1px solid var(--line)}
.story h3{margin:0 0 .25rem;font-size:1.2rem;line-height:1.3;overflow-wrap:anywhere}
.meta{margin:0 0 .5rem;color:var(--muted);font-size:.925rem}
.story>img{float:right;width:10rem;max-width:38%;height:auto;aspect-ratio:16/9;
object-fit:cover;margin:.25rem 0 .5rem 1rem;border-radius:4px}
.summary{overflow-wrap:anywhere}.summary>:first-child{margin-top:0}.summary>:last-child{margin-bottom:0}
.summary img,.summary video,.summary iframe{max-width:100%;height:auto}
.subscribe{background:var(--box);border:1px solid var(--line);border-radius:6px;
padding:0 1rem 1rem;margin-top:1.5rem}
.subscribe ul,.members{margin:0;padding-left:1.25rem}
.subscribe li,.members li{margin:.35rem 0}
code{font-size:.85rem;overflow-wrap:anywhere;user-select:all}
.feeds{color:var(--muted);font-size:.9rem}
.visually-hidden{position:absolute!important;width:1px;height:1px;padding:0;margin:-1px;
overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
.tags{margin:.5rem 0 0;padding:0;list-style:none;font-size:.875rem}
.tags li{display:inline;margin-right:.5rem}
.search{display:flex;flex-wrap:wrap;gap:.5rem;margin:1rem 0}
.search input{flex:1 1 12rem;min-width:0;font:inherit;padding:.4rem .5rem;
border:1px solid var(--muted);border-radius:4px;background:var(--bg);color:var(--fg)}
.search button{font:inherit;padding:.4rem 1rem;border:1px solid var(--link);border-radius:4px;
background:var(--link);color:var(--bg);cursor:pointer}
.search input:focus-visible,.search button:focus-visible{outline:3px solid var(--focus)}
.paging{display:flex;flex-wrap:wrap;gap:1rem;justify-content:space-between;margin:1rem 0}
footer{margin-top:2rem;border-top:1px solid var(--line);color:var(--muted);font-size:.9rem}
"""

_EMBED_STYLE = """
body{margin:0;padding:.5rem;background:#fff;color:#1b1b1b;
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
a{color:#0645ad}a:focus-visible{outline:3px solid #ffbf47;outline-offset:1px}
ul{list-style:none;margin:0;padding:0}
li{padding:.5rem 0;border-bottom:1px solid #d6d6d6}
.t{display:block;font-weight:600;font-size:1rem;overflow-wrap:anywhere}
.m{display:block;color:#595959;font-size:.85rem}
.s{display:block;margin-top:.15rem;font-size:.9rem}
.more{display:inline-block;margin-top:.5rem;font-size:.9rem}
"""


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

    head = [
        "<!DOCTYPE html>",
        f'<html lang="{html.escape(language)}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
    ]
    if network.description:
        head.append(f'<meta name="description" content="{html.escape(network.description)}">')
    head += [
        f'<link rel="alternate" type="{media_type}" title="{title} ({name})" '
        f'href="{html.escape(url)}">'
        for name, url, media_type in feeds
    ]
    head += [f'<link rel="icon" href="{FAVICON}">', f"<style>{_STYLE}</style>", "</head>"]

    body = [
        "<body>",
        f'<a class="skip" href="#news">{html.escape(words.skip)}</a>',
        '<header><div class="wrap">',
        f"<h1>{_link(network.url, network.title)}</h1>",
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
        f"<p>{html.escape(words.updated)} {_time(now, language)}. "
        f"{_link(PROJECT_URL, words.powered_by)}.</p>",
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
        lang = _lang_attribute(story.language, language)
        parts = [
            f"<li{lang}>",
            _link(story.url, story.title or UNTITLED, css_class="t", blank=True),
        ]
        names = ", ".join(html.escape(credit.member_name) for credit in story.credits)
        meta = " · ".join(part for part in (names, _time(story.published, story_language)) if part)
        parts.append(f'<span class="m">{meta}</span>')
        summary = _shorten(summary_text(story.summary), EMBED_SUMMARY_LENGTH)
        if summary:
            parts.append(f'<span class="s">{html.escape(summary)}</span>')
        parts.append("</li>")
        items.append("".join(parts))
    more = _link(network.feed_url, words.more_news, css_class="more", blank=True)
    content = (
        "<ul>\n" + "\n".join(items) + "\n</ul>" if items else f"<p>{html.escape(words.no_news)}</p>"
    )
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                f'<html lang="{html.escape(language)}">',
                "<head>",
                '<meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{html.escape(network.title)}</title>",
                f'<link rel="icon" href="{FAVICON}">',
                f"<style>{_EMBED_STYLE}</style>",
                "</head>",
                "<body>",
                content,
                more,
                "</body>",
                "</html>",
            ]
        )
        + "\n"
    )


def human_date(moment: datetime, language: str | None) -> str:
    """`moment`'s UTC date in words: "24 November 2026", "24 de noviembre de 2026".

    Languages without a month table get the ISO date, which every reader can read.
    """
    day = as_utc(moment)
    key = primary_language(language)
    if key not in MONTHS:
        return day.strftime("%Y-%m-%d")
    return _DATE_PATTERNS[key].format(day=day.day, month=MONTHS[key][day.month - 1], year=day.year)


def primary_language(language: str | None) -> str:
    """ "es" for "es-MX", "ES_mx" or "es"; "" for none."""
    return (language or "").strip().lower().replace("_", "-").split("-")[0]


def words_for(language: str | None) -> _Words:
    return WORDS.get(primary_language(language), DEFAULT_WORDS)


def is_http_url(url: str | None) -> bool:
    """Whether `url` is an absolute http(s) address: the only kind this page links to."""
    if not url:
        return False
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in {"http", "https"} and bool(parts.netloc)


def member_feed_path(member_id: str, extension: str) -> str:
    """Where a member's own feed on the network lives, relative to the feed base."""
    return f"members/{quote(member_id, safe='')}/feed.{extension}"


# --- pieces ---------------------------------------------------------------------------


def _story(story: PublishedStory, network_language: str, base: str) -> str:
    language = story.language or network_language
    words = words_for(language)
    lang = _lang_attribute(story.language, network_language)
    parts = [
        f'<article class="story"{lang}>',
        f"<h3>{_link(story.url, story.title or UNTITLED)}</h3>",
    ]
    names = ", ".join(_link(credit.member_url, credit.member_name) for credit in story.credits)
    meta = f"{html.escape(words.from_)} {names} · " if names else ""
    parts.append(f'<p class="meta">{meta}{_time(story.published, language)}</p>')
    if is_http_url(story.image):
        # The picture illustrates a story whose title is right next to it, and we cannot
        # know what it shows: an empty alt keeps screen readers from reading noise.
        # width/height give the box its shape before the image loads (no layout jump).
        parts.append(
            f'<img src="{html.escape(story.image or "")}" alt="" width="320" height="180" '
            'loading="lazy" decoding="async">'
        )
    summary = _shorten(summary_text(story.summary), INDEX_SUMMARY_LENGTH)
    if summary:
        parts.append(f'<p class="summary">{html.escape(summary)}</p>')
    slugs = [slug for slug in dict.fromkeys(tag_slug(tag) for tag in story.tags) if slug]
    if slugs:
        # Each tag is a feed of its own on the network: the link subscribes to that topic.
        links = "".join(
            f"<li>{_link(base + tag_feed_path(slug), '#' + slug, ours=True)}</li>" for slug in slugs
        )
        parts.append(f'<ul class="tags" aria-label="{html.escape(words.tags)}">{links}</ul>')
    parts.append("</article>")
    return "\n".join(parts)


def _subscribe_box(words: _Words, feeds: list[tuple[str, str, str]], base: str) -> list[str]:
    lines = [
        '<section class="subscribe" aria-labelledby="subscribe-heading">',
        f'<h2 id="subscribe-heading">{html.escape(words.subscribe)}</h2>',
        f"<p>{html.escape(words.subscribe_intro)}</p>",
        "<ul>",
    ]
    lines += [
        f"<li>{_link(url, name, ours=True)}<br><code>{html.escape(url)}</code></li>"
        for name, url, _ in feeds
    ]
    lines += [
        f"<li>{_link(base + MEMBERS_OPML_PATH, words.members_opml, ours=True)}</li>",
        f"<li>{_link(base + PUBLISHED_OPML_PATH, words.all_feeds_opml, ours=True)}</li>",
        "</ul>",
        "</section>",
    ]
    return lines


def _search_form(words: _Words, query: str) -> list[str]:
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


def _paging(words: _Words, query: str, older: str | None, paged: bool) -> list[str]:
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
                "<!DOCTYPE html>",
                f'<html lang="{html.escape(network.language)}">',
                "<head>",
                '<meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{title} · {html.escape(network.title)}</title>",
                f'<link rel="icon" href="{FAVICON}">',
                f"<style>{_STYLE}</style>",
                "</head>",
                '<body><main class="wrap">',
                f"<h1>{title}</h1>",
                f"<p>{html.escape(message or words.not_found_text)}</p>",
                f"<p>{_link(network.feed_url, words.back_to_news, ours=True)}</p>",
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
                "<!DOCTYPE html>",
                '<html lang="en">',
                "<head>",
                '<meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{html.escape(title)}</title>",
                f'<link rel="icon" href="{FAVICON}">',
                f"<style>{_STYLE}pre{{overflow:auto;background:var(--box);padding:1rem}}</style>",
                "</head>",
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
                f"<p>Every option: {_link(README_EMBED_URL, README_EMBED_TITLE)} (README)."
                f" {_link(frame, 'This is how the frame looks', ours=True)}.</p>",
                "</main></body>",
                "</html>",
            ]
        )
        + "\n"
    )


def _member_list(words: _Words, members: Sequence[MemberConfig], base: str) -> list[str]:
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
            _link(
                base + member_feed_path(member.id, path.rsplit(".", 1)[1]),
                name,
                hidden_suffix=hidden,
                ours=True,
            )
            for name, path, _ in FEED_FORMATS
        )
        lang = _lang_attribute(member.language, None)
        lines.append(
            f"<li{lang}>{_link(member.url, member.name)} "
            f'<span class="feeds">({feed_links})</span></li>'
        )
    lines += ["</ul>", "</section>"]
    return lines


def _link(
    url: str | None,
    text: str,
    *,
    css_class: str = "",
    blank: bool = False,
    hidden_suffix: str = "",
    ours: bool = False,
) -> str:
    """An <a> to `url` with escaped `text`, or the bare text when `url` is not http(s).

    `ours` marks one of the network's own addresses (feeds, OPML), which may be relative.
    """
    label = html.escape(text)
    if hidden_suffix:
        label += f'<span class="visually-hidden">{hidden_suffix}</span>'
    class_attribute = f' class="{css_class}"' if css_class else ""
    if not url or not (ours or is_http_url(url)):
        return f"<span{class_attribute}>{label}</span>" if css_class else label
    target = ' target="_blank" rel="noopener"' if blank else ""
    return f'<a{class_attribute} href="{html.escape(url or "")}"{target}>{label}</a>'


def _time(moment: datetime, language: str | None) -> str:
    machine = as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'<time datetime="{machine}">{html.escape(human_date(moment, language))}</time>'


def _lang_attribute(language: str | None, surrounding: str | None) -> str:
    if not language or primary_language(language) == primary_language(surrounding):
        return ""
    return f' lang="{html.escape(language)}"'


def _shorten(text: str, length: int) -> str:
    if len(text) <= length:
        return text
    cut = text[: length - 1].rsplit(" ", 1)[0].rstrip(" ,;:.-")
    return cut + "…"
