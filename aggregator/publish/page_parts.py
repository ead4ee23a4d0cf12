"""The shared pieces of the network's HTML pages (aggregator.publish.html): their words in
English and Spanish, dates in words, the styles, the document head, and links that are
written only for http(s) addresses.

Pure: nothing here may read the clock, the network, files or the database, and nothing
here may write a feed's text into a page unescaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from aggregator.publish.syndication import as_utc
from aggregator.urls import is_http_url

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
class Words:
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


WORDS: dict[str, Words] = {
    "en": Words(
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
    "es": Words(
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

STYLE = """
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

EMBED_STYLE = """
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


def words_for(language: str | None) -> Words:
    return WORDS.get(primary_language(language), DEFAULT_WORDS)


def document_head(language: str, title: str, style: str, extra: Sequence[str] = ()) -> list[str]:
    """The lines of a page from <!DOCTYPE html> to </head>: `title` is already escaped,
    `extra` (autodiscovery links, a description) goes after the title."""
    return [
        "<!DOCTYPE html>",
        f'<html lang="{html.escape(language)}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        *extra,
        f'<link rel="icon" href="{FAVICON}">',
        f"<style>{style}</style>",
        "</head>",
    ]


def link(
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


def time_element(moment: datetime, language: str | None) -> str:
    machine = as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'<time datetime="{machine}">{html.escape(human_date(moment, language))}</time>'


def lang_attribute(language: str | None, surrounding: str | None) -> str:
    if not language or primary_language(language) == primary_language(surrounding):
        return ""
    return f' lang="{html.escape(language)}"'


def shorten(text: str, length: int) -> str:
    if len(text) <= length:
        return text
    cut = text[: length - 1].rsplit(" ", 1)[0].rstrip(" ,;:.-")
    return cut + "…"
