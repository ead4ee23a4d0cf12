"""A deterministic corpus of member sites for the benchmarks: feeds and news pages on disk.

`python -m bench.corpus DIR --sites 1000` writes DIR/m0000/… (one folder per member site),
DIR/feeds.yaml (pointing at a base URL, rewritten by the poll benchmark for its server's
port) and DIR/corpus.json (what was generated). The same seed and size always give the
same bytes. The mix is what member organizations run: WordPress RSS 2.0 with
content:encoded, Atom (some with xml:base and XHTML content), RSS 1.0, JSON Feed 1.1 and
HTML news pages read with CSS selectors; 10-50 items each, 20-200 KB per source, realistic
HTML (figures, lists, quotes, embeds, tracking pixels, entities, relative links) and a few
per cent cross-posts (the same statement posted by 2-4 members, half with the same link).

`python -m bench.corpus DIR --changed 0.05` rewrites 5 % of the sources as a CMS would
between two polls: one new item on top and one earlier item edited.

It must never write outside DIR, and never depend on the clock or on anything but the seed.
"""

from __future__ import annotations

import argparse
import html
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

DEFAULT_SITES = 1000
DEFAULT_SEED = 20261125
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
# Every date is before this instant, so runs on any later day see the same corpus.
CORPUS_EPOCH = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
FORMATS = ("wordpress", "atom", "rss10", "jsonfeed", "page")
FORMAT_WEIGHTS = (45, 20, 10, 12, 13)
FILE_NAMES = {
    "wordpress": "feed/index.rss",
    "atom": "atom.atom",
    "rss10": "index.rdf",
    "jsonfeed": "feed.json",
    "page": "news/index.html",
}
MIN_ITEMS, MAX_ITEMS = 10, 50
MIN_BYTES, MAX_BYTES = 20_000, 200_000
CROSS_POSTS_PER_SITE = 0.25  # statements per site, each posted by 2-4 sites
SENTENCE_POOL = 4000
_VIDEO_ID_CHARS = "abcdefghijkmnopqrstuvwxyzABCDEFGH0123456789_-"
_ANALYTICS = (
    "window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments);}"
    "gtag('js',new Date());"
)

_SUBJECTS = (
    "Farmworkers", "Dairy workers", "Garment workers", "Cleaners", "Tomato pickers",
    "Warehouse workers", "Construction crews", "Domestic workers", "Berry harvesters",
    "Meatpacking workers", "Hotel housekeepers", "Fishermen", "Apparel suppliers",
    "Worker-led monitors", "Union delegates", "Migrant workers", "Seafood processors",
    "Home care aides", "Poultry workers", "Nursery workers", "Delivery riders",
    "Textile workers", "Janitors", "Greenhouse workers", "Truck drivers",
)  # fmt: skip
_VERBS = (
    "win", "demand", "secure", "announce", "sign", "celebrate", "document", "reject",
    "launch", "expose", "negotiate", "report", "organize for", "march for", "testify on",
    "call for", "gain", "defend", "renew", "strengthen",
)  # fmt: skip
_OBJECTS = (
    "heat protections", "a binding agreement", "fair wages", "shade and water breaks",
    "an end to wage theft", "safe housing", "a worker-driven code of conduct",
    "a complaint hotline", "union recognition", "paid sick days", "audit reforms",
    "brand accountability", "a premium per pound", "training on their rights",
    "an anti-harassment protocol", "overtime pay", "a grievance process",
    "safety committees", "clean drinking water", "independent monitoring",
    "fire safety inspections", "a living wage", "enforceable commitments",
    "protection from retaliation", "transparent supply chains",
)  # fmt: skip
_PLACES = (
    "in Immokalee", "in Vermont", "in Bangladesh", "in Los Angeles", "in Houston",
    "in Chiapas", "in Ohio", "in Lesotho", "in Florida", "in Sinaloa", "in New York",
    "across the region", "at three farms", "in the Central Valley", "in Washington State",
    "at the distribution center", "in Guatemala", "in North Carolina", "in Cambodia",
    "in Ontario", "at the port", "in Baja California", "in Texas", "in Michigan",
)  # fmt: skip
_WORDS = (
    "workers", "agreement", "buyers", "brands", "growers", "wages", "safety", "heat",
    "monitoring", "complaints", "audits", "retaliation", "training", "season", "harvest",
    "factory", "farm", "union", "committee", "protocol", "enforcement", "premium",
    "supply", "chain", "code", "conduct", "rights", "justice", "dignity", "campaign",
    "coalition", "members", "community", "leaders", "investigation", "report", "findings",
    "violations", "remedy", "compliance", "program", "partners", "standards", "housing",
    "water", "shade", "breaks", "hours", "overtime", "contract", "signatories", "retailers",
    "consumers", "families", "children", "schools", "health", "clinic", "insurance",
    "the", "the", "the", "and", "and", "of", "of", "to", "to", "in", "for", "with", "on",
    "that", "their", "this", "after", "before", "while", "because", "despite", "under",
    "new", "fair", "safe", "binding", "independent", "worker-driven", "enforceable",
    "local", "national", "global", "seasonal", "migrant", "women", "young", "older",
    "said", "reported", "announced", "demanded", "agreed", "signed", "visited", "met",
    "will", "must", "can", "should", "have", "has", "were", "was", "are", "is",
    "twenty", "hundreds", "thousands", "dozens", "several", "many", "most", "every",
)  # fmt: skip
_FIRST_NAMES = (
    "Lucía", "Marcus", "Ana", "José", "Priya", "Tomás", "Grace", "Ibrahim", "Rosa",
    "Daniel", "Mei", "Olga", "Samuel", "Fatima", "Elena", "Kwame", "Nadia", "Luis",
)  # fmt: skip
_LAST_NAMES = (
    "García", "Johnson", "Hernández", "Nguyen", "Okafor", "Pérez", "Smith", "Rahman",
    "López", "Williams", "Chen", "Martínez", "Baptiste", "Kowalski", "Silva", "Ahmed",
)  # fmt: skip
_TAGS = (
    "Agriculture", "Garment", "Dairy", "Heat", "Wage theft", "Campaigns", "Press",
    "Statements", "Reports", "Events", "Fair Food", "Milk with Dignity", "Accord",
    "Housing", "Safety", "Women", "Migration", "Policy", "Brands", "Victories",
)  # fmt: skip
_ORG_KINDS = (
    "Workers Alliance", "Labor Project", "Workers Center", "Rights Monitor", "Union",
    "Coalition", "Network", "Solidarity Committee", "Justice Project", "Federation",
)  # fmt: skip


@dataclass(frozen=True)
class Post:
    """One story as a member's CMS holds it, before it is written in the site's format."""

    number: int  # the CMS's post id, unique within the site
    slug: str
    title: str
    body_html: str  # XML-well-formed HTML (quoted attributes, closed void elements)
    excerpt: str  # plain text
    published: datetime
    updated: datetime
    author: str
    tags: tuple[str, ...]
    image: str | None
    link: str  # absolute
    shared_link: bool = False  # a cross-post that keeps the originating member's link


@dataclass(frozen=True)
class Statement:
    """A joint statement several members post (the cross-posts)."""

    title: str
    body_html: str
    excerpt: str
    published: datetime
    link: str
    share_link: bool
    sites: tuple[int, ...]


@dataclass
class Site:
    index: int
    format: str
    name: str
    domain: str
    language: str
    posts: list[Post] = field(default_factory=list)

    @property
    def member_id(self) -> str:
        return f"m{self.index:04d}"

    @property
    def path(self) -> str:
        return f"{self.member_id}/{FILE_NAMES[self.format]}"

    @property
    def home(self) -> str:
        return f"https://{self.domain}/"


@dataclass(frozen=True)
class Manifest:
    """corpus.json: how the corpus was made (to remake or change it) and what it holds."""

    sites: int
    seed: int
    fractions: list[float]  # the fraction changed in each generation so far
    items: int
    bytes: int
    formats: dict[str, int]
    cross_post_items: int
    members: list[dict[str, str]]  # id, format, name, language, home, path

    @property
    def generation(self) -> int:
        return len(self.fractions)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=1, sort_keys=True) + "\n"


# --- text -------------------------------------------------------------------------------


class Writer:
    """Random but deterministic prose and HTML, from one seeded generator."""

    def __init__(self, rng: random.Random, sentences: Sequence[str]) -> None:
        self.rng = rng
        self.sentences = sentences

    def sentence(self) -> str:
        return self.rng.choice(self.sentences)

    def paragraph_text(self, low: int = 2, high: int = 5) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(low, high)))

    def title(self) -> str:
        rng = self.rng
        return (
            f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
            f"{rng.choice(_PLACES)}"
        )

    def person(self) -> str:
        return f"{self.rng.choice(_FIRST_NAMES)} {self.rng.choice(_LAST_NAMES)}"

    def body(self, size: int, domain: str, slug: str, post_number: int) -> str:
        """About `size` characters of the HTML a WordPress block editor produces."""
        rng = self.rng
        parts: list[str] = []
        total = 0
        while total < size:
            roll = rng.random()
            if roll < 0.55:
                part = f"<p>{self._inline(self.paragraph_text(), domain)}</p>"
            elif roll < 0.65:
                part = f'<h2 class="wp-block-heading">{html.escape(self.title())}</h2>'
            elif roll < 0.74:
                items = "".join(
                    f"<li>{html.escape(self.sentence())}</li>" for _ in range(rng.randint(3, 6))
                )
                part = f'<ul class="wp-block-list">{items}</ul>'
            elif roll < 0.82:
                number = rng.randint(100, 99999)
                month = rng.randint(1, 10)
                stem = f"https://{domain}/wp-content/uploads/2026/{month:02d}/{slug}-{number}"
                part = (
                    f'<figure class="wp-block-image size-large"><img decoding="async" '
                    f'loading="lazy" width="1024" height="683" src="{stem}-1024x683.jpg" '
                    f'alt="{html.escape(self.sentence()[:60])}" class="wp-image-{number}" '
                    f'srcset="{stem}-1024x683.jpg 1024w, {stem}-300x200.jpg 300w, '
                    f'{stem}-768x512.jpg 768w" sizes="(max-width: 1024px) 100vw, 1024px" />'
                    f'<figcaption class="wp-element-caption">{html.escape(self.sentence())}'
                    "</figcaption></figure>"
                )
            elif roll < 0.89:
                part = (
                    f'<blockquote class="wp-block-quote"><p>&#8220;{html.escape(self.sentence())}'
                    f"&#8221;</p><cite>{html.escape(self.person())}</cite></blockquote>"
                )
            elif roll < 0.92:
                video = "".join(rng.choice(_VIDEO_ID_CHARS) for _ in range(11))
                part = (
                    '<figure class="wp-block-embed is-type-video is-provider-youtube '
                    'wp-block-embed-youtube"><div class="wp-block-embed__wrapper">'
                    f'<iframe title="{html.escape(self.title())}" width="640" height="360" '
                    f'src="https://www.youtube.com/embed/{video}?feature=oembed" '
                    'frameborder="0" allow="accelerometer; autoplay; clipboard-write; '
                    'encrypted-media; gyroscope; picture-in-picture" '
                    'allowfullscreen="allowfullscreen"></iframe></div></figure>'
                )
            elif roll < 0.94:
                part = (
                    '<div class="share-buttons" style="margin:1em 0">'
                    '<script type="text/javascript">'
                    "window.shareCount=(window.shareCount||0)+1;</script>"
                    '<a href="https://www.facebook.com/sharer.php?'
                    f'u=https%3A%2F%2F{domain}%2F{slug}%2F" '
                    'onclick="return share(this)">Share</a></div>'
                )
            else:
                part = (
                    f"<p><strong>{html.escape(self.sentence())}</strong> "
                    f'<a href="/take-action/?ref=post-{post_number}">Take action</a> &amp; '
                    f"<em>{html.escape(self.sentence())}</em>&#160;&#8212; "
                    f'<a href="mailto:press@{domain}">press@{domain}</a></p>'
                )
            parts.append(part)
            total += len(part)
        if rng.random() < 0.5:
            parts.append(
                f'<img src="https://pixel.wp.com/b.gif?host={domain}&amp;blog=1&amp;'
                f'post={post_number}&amp;subd=x&amp;ref=&amp;feed=1" width="1" height="1" '
                'alt="" style="display:none" />'
            )
        return "".join(parts)

    def _inline(self, text: str, domain: str) -> str:
        """Escaped text with a link or emphasis dropped in, as editors write."""
        words = html.escape(text).split(" ")
        roll = self.rng.random()
        if len(words) > 6 and roll < 0.35:
            at = self.rng.randrange(len(words) - 3)
            target = (
                f"https://{domain}/2026/{self.rng.randint(1, 10):02d}/"
                f"{'-'.join(w.lower() for w in words[at : at + 3])}/?utm_source=feed"
            )
            words[at] = f'<a href="{html.escape(target)}">{words[at]}'
            words[at + 2] = f"{words[at + 2]}</a>"
        elif len(words) > 4 and roll < 0.55:
            at = self.rng.randrange(len(words) - 1)
            words[at] = f"<strong>{words[at]}</strong>"
        return " ".join(words).replace("'", "&#8217;")


def sentence_pool(seed: int) -> list[str]:
    rng = random.Random(f"{seed}:sentences")
    pool = []
    for _ in range(SENTENCE_POOL):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 24))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), f"{rng.randint(2, 4000):,}")
        sentence = " ".join(words)
        pool.append(sentence[0].upper() + sentence[1:] + rng.choice(".....?!"))
    return pool


# --- sites --------------------------------------------------------------------------------


def statements(sites: int, seed: int, sentences: Sequence[str]) -> list[Statement]:
    rng = random.Random(f"{seed}:statements")
    writer = Writer(rng, sentences)
    count = max(2, round(sites * CROSS_POSTS_PER_SITE)) if sites >= 2 else 0
    result = []
    for number in range(count):
        posters = tuple(sorted(rng.sample(range(sites), min(sites, rng.randint(2, 4)))))
        title = "Joint statement: " + writer.title()
        slug = f"joint-statement-{number}"
        origin = f"m{posters[0]:04d}.example.org"
        body = writer.body(rng.randint(2000, 5000), origin, slug, number)
        result.append(
            Statement(
                title=title,
                body_html=body,
                excerpt=writer.paragraph_text(2, 3)[:280],
                published=CORPUS_EPOCH - timedelta(minutes=rng.randint(60, 60 * 24 * 90)),
                link=f"https://{origin}/{slug}/",
                share_link=rng.random() < 0.5,
                sites=posters,
            )
        )
    return result


def build_site(index: int, seed: int, sentences: Sequence[str], joint: Sequence[Statement]) -> Site:
    rng = random.Random(f"{seed}:site:{index}")
    writer = Writer(rng, sentences)
    # The first sites take each format in turn, so that even a tiny corpus has them all.
    site_format = (
        FORMATS[index] if index < len(FORMATS) else rng.choices(FORMATS, FORMAT_WEIGHTS)[0]
    )
    name = f"{rng.choice(_SUBJECTS).split()[0]} {rng.choice(_ORG_KINDS)} {index}"
    domain = f"m{index:04d}.example.org"
    site = Site(
        index=index,
        format=site_format,
        name=name,
        domain=domain,
        language="es" if rng.random() < 0.1 else "en",
    )
    count = rng.randint(MIN_ITEMS, MAX_ITEMS)
    # Sizes spread evenly on a log scale between 20 and 200 KB, as real feeds are.
    target = int(MIN_BYTES * (MAX_BYTES / MIN_BYTES) ** rng.random())
    per_item = max(400, int(target * 0.82 / count) - 700)
    if site_format == "page":
        per_item = max(200, per_item // 4)  # a listing shows summaries, padded by page chrome
    mine = [statement for statement in joint if index in statement.sites]
    moment = CORPUS_EPOCH - timedelta(minutes=rng.randint(0, 600))
    for number in range(count):
        moment -= timedelta(minutes=rng.randint(120, 60 * 72))
        post_number = 1000 + index * 100 + count - number
        title = writer.title()
        slug = "-".join(title.lower().replace(",", "").split()[:8])
        link = f"https://{domain}/{moment:%Y/%m}/{slug}/"
        site.posts.append(
            Post(
                number=post_number,
                slug=slug,
                title=title,
                body_html=writer.body(per_item, domain, slug, post_number),
                excerpt=writer.paragraph_text(2, 3)[:280].rsplit(" ", 1)[0] + " […]",
                published=moment,
                updated=moment + timedelta(minutes=rng.choice((0, 0, 0, 5, 90))),
                author=writer.person(),
                tags=tuple(rng.sample(_TAGS, rng.randint(1, 4))),
                image=(
                    f"https://{domain}/wp-content/uploads/{moment:%Y/%m}/{slug[:30]}.jpg"
                    if rng.random() < 0.6
                    else None
                ),
                link=link,
            )
        )
    for statement in mine:
        slot = rng.randrange(len(site.posts))
        own = f"https://{domain}/{statement.published:%Y/%m}/joint-statement/"
        link = (
            statement.link + "?utm_source=rss&utm_medium=feed&utm_campaign=" + site.member_id
            if statement.share_link
            else own
        )
        site.posts[slot] = replace(
            site.posts[slot],
            title=statement.title,
            slug="joint-statement",
            body_html=statement.body_html,
            excerpt=statement.excerpt,
            published=statement.published + timedelta(minutes=rng.randint(0, 600)),
            link=link,
            shared_link=statement.share_link,
        )
        site.posts[slot] = replace(site.posts[slot], updated=site.posts[slot].published)
    site.posts.sort(key=lambda post: post.published, reverse=True)
    return site


def apply_generation(site: Site, generation: int, seed: int, sentences: Sequence[str]) -> None:
    """Change the site as its CMS would between two polls: one new post, one edited."""
    rng = random.Random(f"{seed}:change:{generation}:{site.index}")
    writer = Writer(rng, sentences)
    moment = CORPUS_EPOCH + timedelta(hours=generation)
    title = writer.title()
    slug = "-".join(title.lower().split()[:8]) + f"-{generation}"
    number = 900_000 + generation * 10_000 + site.index
    size = max(400, len(site.posts[0].body_html)) if site.posts else 2000
    new = Post(
        number=number,
        slug=slug,
        title=title,
        body_html=writer.body(size, site.domain, slug, number),
        excerpt=writer.paragraph_text(2, 3)[:280],
        published=moment,
        updated=moment,
        author=writer.person(),
        tags=(rng.choice(_TAGS),),
        image=None,
        link=f"https://{site.domain}/{moment:%Y/%m}/{slug}/",
    )
    if len(site.posts) > 1:
        at = rng.randrange(1, len(site.posts))
        edited = site.posts[at]
        site.posts[at] = replace(
            edited,
            title=edited.title + " (updated)",
            body_html=edited.body_html
            + f"<p><em>Update {generation}:</em> "
            + html.escape(writer.sentence())
            + "</p>",
            updated=moment,
        )
    site.posts.insert(0, new)
    if len(site.posts) > MAX_ITEMS:
        site.posts.pop()  # feeds show the newest N, so the oldest drops off


def changed_sites(sites: int, generation: int, fraction: float, seed: int) -> set[int]:
    rng = random.Random(f"{seed}:changed:{generation}")
    return set(rng.sample(range(sites), max(1, round(sites * fraction)))) if sites else set()


# --- writing the formats -------------------------------------------------------------


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _x(text: str) -> str:
    return html.escape(text, quote=True)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_wordpress(site: Site) -> str:
    items = []
    for post in site.posts:
        categories = "".join(f"\n\t\t<category>{_cdata(tag)}</category>" for tag in post.tags)
        footer = (
            f'<p>The post <a href="{_x(post.link)}">{_x(post.title)}</a> appeared first on '
            f'<a href="{site.home}">{_x(site.name)}</a>.</p>'
        )
        items.append(
            f"""	<item>
		<title>{_x(post.title)}</title>
		<link>{_x(post.link)}</link>
		<comments>{_x(post.link)}#respond</comments>
		<dc:creator>{_cdata(post.author)}</dc:creator>
		<pubDate>{format_datetime(post.published, usegmt=True)}</pubDate>{categories}
		<guid isPermaLink="false">https://{site.domain}/?p={post.number}</guid>
		<description>{_cdata(post.excerpt + footer)}</description>
		<content:encoded>{_cdata(post.body_html + footer)}</content:encoded>
		<wfw:commentRss>{_x(post.link)}feed/</wfw:commentRss>
		<slash:comments>0</slash:comments>
	</item>
"""
        )
    newest = site.posts[0].updated if site.posts else CORPUS_EPOCH
    return f"""<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"
	xmlns:content="http://purl.org/rss/1.0/modules/content/"
	xmlns:wfw="http://wellformedweb.org/CommentAPI/"
	xmlns:dc="http://purl.org/dc/elements/1.1/"
	xmlns:atom="http://www.w3.org/2005/Atom"
	xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"
	xmlns:slash="http://purl.org/rss/1.0/modules/slash/"
	>

<channel>
	<title>{_x(site.name)}</title>
	<atom:link href="https://{site.domain}/feed/" rel="self" type="application/rss+xml" />
	<link>{site.home}</link>
	<description>News from {_x(site.name)}</description>
	<lastBuildDate>{format_datetime(newest, usegmt=True)}</lastBuildDate>
	<language>{site.language}-US</language>
	<sy:updatePeriod>hourly</sy:updatePeriod>
	<sy:updateFrequency>1</sy:updateFrequency>
	<generator>https://wordpress.org/?v=6.8.1</generator>
{"".join(items)}</channel>
</rss>
"""


def render_atom(site: Site) -> str:
    # Even-numbered sites use xml:base with relative links and XHTML content; odd ones
    # absolute links and escaped HTML, the two ways Atom feeds are seen in the wild.
    relative = site.index % 2 == 0
    entries = []
    for post in site.posts:
        link = post.link.removeprefix(site.home) if relative and not post.shared_link else post.link
        categories = "".join(f'\n    <category term="{_x(tag)}"/>' for tag in post.tags)
        if relative:
            content = (
                '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
                f"{post.body_html}</div></content>"
            )
        else:
            content = f'<content type="html">{_x(post.body_html)}</content>'
        entries.append(
            f"""  <entry>
    <title type="html">{_x(_x(post.title))}</title>
    <link rel="alternate" type="text/html" href="{_x(link)}"/>
    <id>tag:{site.domain},2026:post-{post.number}</id>
    <published>{_rfc3339(post.published)}</published>
    <updated>{_rfc3339(post.updated)}</updated>
    <author><name>{_x(post.author)}</name></author>{categories}
    <summary type="text">{_x(post.excerpt)}</summary>
    {content}
  </entry>
"""
        )
    base = f' xml:base="{site.home}"' if relative else ""
    newest = site.posts[0].updated if site.posts else CORPUS_EPOCH
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{site.language}"{base}>
  <title>{_x(site.name)}</title>
  <subtitle>News from {_x(site.name)}</subtitle>
  <link rel="alternate" type="text/html" href="{site.home}"/>
  <link rel="self" type="application/atom+xml" href="{site.home}atom.xml"/>
  <id>tag:{site.domain},2026:feed</id>
  <updated>{_rfc3339(newest)}</updated>
  <generator uri="https://www.drupal.org/">Drupal</generator>
{"".join(entries)}</feed>
"""


def render_rss10(site: Site) -> str:
    seq = "".join(f'\n        <rdf:li rdf:resource="{_x(post.link)}"/>' for post in site.posts)
    items = []
    for post in site.posts:
        subjects = "".join(f"\n    <dc:subject>{_x(tag)}</dc:subject>" for tag in post.tags)
        items.append(
            f"""  <item rdf:about="{_x(post.link)}">
    <title>{_x(post.title)}</title>
    <link>{_x(post.link)}</link>
    <description>{_x(post.excerpt)}</description>
    <content:encoded>{_cdata(post.body_html)}</content:encoded>
    <dc:date>{post.published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")}</dc:date>
    <dc:creator>{_x(post.author)}</dc:creator>{subjects}
  </item>
"""
        )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
  xmlns="http://purl.org/rss/1.0/"
  xmlns:dc="http://purl.org/dc/elements/1.1/"
  xmlns:content="http://purl.org/rss/1.0/modules/content/">
  <channel rdf:about="{site.home}index.rdf">
    <title>{_x(site.name)}</title>
    <link>{site.home}</link>
    <description>News from {_x(site.name)}</description>
    <dc:language>{site.language}</dc:language>
    <items>
      <rdf:Seq>{seq}
      </rdf:Seq>
    </items>
  </channel>
{"".join(items)}</rdf:RDF>
"""


def render_jsonfeed(site: Site) -> str:
    items = []
    for post in site.posts:
        item: dict[str, object] = {
            "id": f"https://{site.domain}/?p={post.number}",
            "url": post.link,
            "title": post.title,
            "content_html": post.body_html,
            "summary": post.excerpt,
            "date_published": _rfc3339(post.published),
            "date_modified": _rfc3339(post.updated),
            "authors": [{"name": post.author}],
            "tags": list(post.tags),
        }
        if post.image is not None:
            item["image"] = post.image
        items.append(item)
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": site.name,
        "home_page_url": site.home,
        "feed_url": f"{site.home}feed.json",
        "language": site.language,
        "items": items,
    }
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


PAGE_SELECTORS = {
    "item": "article.news-card",
    "title": "h2 a",
    "link": "h2 a",
    "date": "time",
    "summary": "p.summary",
    "image": "img",
}


def render_page(site: Site, writer: Writer) -> str:
    nav = "".join(
        f'<li class="menu-item"><a href="/{slug}/">{label}</a></li>'
        for slug, label in (
            ("about", "About"), ("campaigns", "Campaigns"), ("news", "News"),
            ("reports", "Reports"), ("events", "Events"), ("donate", "Donate"),
            ("contact", "Contact"), ("es", "Español"),
        )
    )  # fmt: skip
    cards = []
    for post in site.posts:
        path = post.link.removeprefix(site.home.rstrip("/"))
        link = post.link if post.shared_link else path
        image = (
            f'<img src="/img/{post.slug[:30]}.jpg" alt="{_x(post.title)}" loading="lazy" '
            'width="400" height="260">'
            if post.image
            else ""
        )
        summary = _strip_tags(post.body_html)[: max(200, len(post.body_html) // 3)]
        cards.append(
            f"""<article class="news-card post-{post.number}">
  {image}
  <div class="card-body">
    <h2 class="card-title"><a href="{_x(link)}">{_x(post.title)}</a></h2>
    <time datetime="{_rfc3339(post.published)}">{post.published:%B %-d, %Y}</time>
    <p class="summary">{_x(summary)}</p>
    <a class="read-more" href="{_x(link)}">Read more<span class="sr-only"> about
      {_x(post.title)}</span></a>
  </div>
</article>
"""
        )
    footer_links = "".join(
        f'<li><a href="/news/page/{n}/">{_x(writer.title())}</a></li>' for n in range(40)
    )
    ld = {"@context": "https://schema.org", "@type": "Organization", "name": site.name}
    style = "".join(
        f".c{n}{{margin:{n % 7}px;padding:{n % 5}px;color:#{n * 4099 % 0xFFFFFF:06x}}}"
        for n in range(120)
    )
    return f"""<!DOCTYPE html>
<html lang="{site.language}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>News — {_x(site.name)}</title>
<link rel="stylesheet" href="/css/site.css">
<style>{style}</style>
<script>{_ANALYTICS}</script>
<script type="application/ld+json">{json.dumps(ld)}</script>
</head>
<body class="page-news">
<header class="site-header"><a class="logo" href="/">{_x(site.name)}</a>
<nav><ul class="menu">{nav}</ul></nav></header>
<main id="content">
<h1>News</h1>
{"".join(cards)}
<nav class="pagination"><a href="/news/page/2/">Older posts</a></nav>
</main>
<aside class="sidebar"><h3>Sign up</h3><form action="/subscribe" method="post">
<input type="email" name="email"><button>Subscribe</button></form></aside>
<footer><ul class="archive">{footer_links}</ul><p>&copy; 2026 {_x(site.name)}</p></footer>
<script src="/js/site.js" defer></script>
</body>
</html>
"""


def _strip_tags(fragment: str) -> str:
    out = []
    inside = False
    for char in fragment:
        if char == "<":
            inside = True
        elif char == ">":
            inside = False
        elif not inside:
            out.append(char)
    return html.unescape("".join(out))


def render(site: Site, writer: Writer) -> str:
    if site.format == "wordpress":
        return render_wordpress(site)
    if site.format == "atom":
        return render_atom(site)
    if site.format == "rss10":
        return render_rss10(site)
    if site.format == "jsonfeed":
        return render_jsonfeed(site)
    return render_page(site, writer)


# --- the corpus on disk ---------------------------------------------------------------


def build_sites(sites: int, seed: int, fractions: Sequence[float]) -> list[Site]:
    """Every site as it stands after one round of changes per entry of `fractions`."""
    sentences = sentence_pool(seed)
    joint = statements(sites, seed, sentences)
    built = [build_site(index, seed, sentences, joint) for index in range(sites)]
    for generation, fraction in enumerate(fractions, start=1):
        for index in sorted(changed_sites(sites, generation, fraction, seed)):
            apply_generation(built[index], generation, seed, sentences)
    return built


def write_corpus(
    root: Path,
    sites: int = DEFAULT_SITES,
    seed: int = DEFAULT_SEED,
    *,
    fractions: Sequence[float] = (),
    base_url: str | Sequence[str] = DEFAULT_BASE_URL,
    only: set[int] | None = None,
) -> Manifest:
    """Write (or, with `only`, rewrite some of) the corpus under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    sentences = sentence_pool(seed)
    built = build_sites(sites, seed, fractions)
    total_bytes = items = cross = 0
    formats: dict[str, int] = {}
    for site in built:
        body = render(site, Writer(random.Random(f"{seed}:chrome:{site.index}"), sentences))
        encoded = body.encode("utf-8")
        if only is None or site.index in only:
            target = root / site.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(encoded)
        total_bytes += len(encoded)
        items += len(site.posts)
        cross += sum(post.slug == "joint-statement" for post in site.posts)
        formats[site.format] = formats.get(site.format, 0) + 1
    manifest = Manifest(
        sites=sites,
        seed=seed,
        fractions=list(fractions),
        items=items,
        bytes=total_bytes,
        formats=dict(sorted(formats.items())),
        cross_post_items=cross,
        members=[
            {
                "id": site.member_id,
                "format": site.format,
                "name": site.name,
                "language": site.language,
                "home": site.home,
                "path": site.path,
            }
            for site in built
        ],
    )
    (root / "corpus.json").write_text(manifest.to_json(), encoding="utf-8")
    write_feeds_yaml(root, base_url, manifest)
    return manifest


def change_corpus(root: Path, fraction: float) -> tuple[Manifest, set[int]]:
    """One more round of changes to `fraction` of the sources; returns which changed."""
    manifest = read_manifest(root)
    fractions = [*manifest.fractions, fraction]
    changed = changed_sites(manifest.sites, len(fractions), fraction, manifest.seed)
    updated = write_corpus(
        root,
        manifest.sites,
        manifest.seed,
        fractions=fractions,
        base_url=read_base_url(root),
        only=changed,
    )
    return updated, changed


def read_manifest(root: Path) -> Manifest:
    data = json.loads((root / "corpus.json").read_text(encoding="utf-8"))
    return Manifest(**data)


def read_base_url(root: Path) -> list[str]:
    try:
        data = json.loads((root / "base_url.json").read_text(encoding="utf-8"))
        return [str(base) for base in data["base_url"]]
    except (OSError, KeyError, TypeError, ValueError):
        return [DEFAULT_BASE_URL]


def source_urls(root: Path) -> list[str]:
    """Each source's address as feeds.yaml gives it, in member order."""
    bases = read_base_url(root)
    return [
        f"{bases[number % len(bases)]}/{member['path'].removesuffix('index.html')}"
        for number, member in enumerate(read_manifest(root).members)
    ]


def write_feeds_yaml(
    root: Path, base_url: str | Sequence[str], manifest: Manifest | None = None
) -> Path:
    """feeds.yaml for the corpus served at `base_url` (site i at base_url[i % len] if several)."""
    members = (manifest or read_manifest(root)).members
    bases = [base_url] if isinstance(base_url, str) else list(base_url)
    bases = [each.rstrip("/") for each in bases]
    base = bases[0]
    lines = [
        "# Generated by bench/corpus.py: a synthetic network for the benchmarks.",
        "network:",
        "  title: Benchmark network",
        f"  url: {base}/",
        f"  feed_url: {base}/published/",
        "  language: en",
        "members:",
    ]
    for number, member in enumerate(members):
        host = bases[number % len(bases)]
        lines += [
            f"  - id: {member['id']}",
            f"    name: {json.dumps(member['name'])}",
            f"    url: {member['home']}",
        ]
        if member["language"] != "en":
            lines.append(f"    language: {member['language']}")
        lines.append("    sources:")
        if member["format"] == "page":
            lines.append(f"      - page: {host}/{member['path'].removesuffix('index.html')}")
            lines.append("        selectors:")
            lines += [f"          {key}: {value}" for key, value in PAGE_SELECTORS.items()]
        else:
            lines.append(f"      - feed: {host}/{member['path']}")
    path = root / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "base_url.json").write_text(json.dumps({"base_url": bases}) + "\n", encoding="utf-8")
    return path


def source_files(root: Path) -> list[tuple[str, Path]]:
    """(format, path) of every source body in the corpus, in member order."""
    return [(member["format"], root / member["path"]) for member in read_manifest(root).members]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--sites", type=int, default=DEFAULT_SITES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL)
    parser.add_argument(
        "--changed",
        type=float,
        metavar="FRACTION",
        help="rewrite this fraction of an existing corpus's sources (one new item, one edit)",
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny corpus (12 sites)")
    args = parser.parse_args(argv)
    if args.changed is not None:
        manifest, changed = change_corpus(args.directory, args.changed)
        print(f"generation {manifest.generation}: {len(changed)} sources rewritten")
    else:
        sites = 12 if args.smoke else args.sites
        manifest = write_corpus(args.directory, sites, args.seed, base_url=args.base_url)
    print(
        f"{args.directory}: {manifest.sites} sites {manifest.formats}, {manifest.items} items "
        f"({manifest.cross_post_items} cross-posts), {manifest.bytes / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
