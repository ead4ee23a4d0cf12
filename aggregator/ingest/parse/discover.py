"""Feed autodiscovery: from a member's web page to the feed worth polling.

Staff often know only an organization's web address. When a `url:` source (or a `feed:`
that turns out to be a web page) returns HTML, the page is searched for
`<link rel="alternate">` feeds (RSS, Atom, JSON Feed); when it names none, the places
publishing systems put them are tried (`/feed/`, `/rss.xml`, `/atom.xml`, `/index.xml`,
`/feed.json`, Squarespace's `?format=rss`), after the addresses of the site tool the page
was made with (aggregator.ingest.parse.site_tools: WordPress `?feed=rss2`, Wix `/blog-feed.xml`,
Ghost `/rss/`, Blogger `/feeds/posts/default`, Drupal `/node/feed`, a language section's
or WordPress category's own feed). Each candidate is fetched and read; the best
readable one wins: full content beats summaries, a feed the page names beats a guessed one,
and a comments feed is never chosen (it would publish readers' comments as news).

The functions that find and rank candidates are pure. `discover_feed` is the one small
async orchestrator: it fetches the candidates with the fetch function it is given. It must
never follow a link from a public address to a private or loopback one (SSRF: every link
is checked by aggregator.ingest.safety first), never store anything and never raise for a remote
fault: a site with no feed is a Discovery with no choice, saying so.
"""

from __future__ import annotations

from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from typing import Literal
from urllib.parse import urljoin
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from bs4 import BeautifulSoup
from bs4 import Tag

from aggregator.errors import ParseError
from aggregator.ingest.parse.pages import decode_page
from aggregator.ingest.parse.pages import document_base_url
from aggregator.ingest.parse.site_tools import SiteTool
from aggregator.ingest.parse.site_tools import detect_site_tool
from aggregator.ingest.parse.site_tools import tool_locations
from aggregator.ingest.parse.sniff import is_html_page
from aggregator.ingest.parse.sniff import looks_like_html
from aggregator.ingest.parse.sniff import split_content_type
from aggregator.ingest.safety import Resolver
from aggregator.ingest.safety import UnsafeAddressError
from aggregator.ingest.safety import check_discovered_link
from aggregator.ingest.safety import system_resolver
from aggregator.models import CacheValidators
from aggregator.models import FetchResult
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig

FEED_TYPES = {
    "application/rss+xml": "rss",
    "application/atom+xml": "atom",
    "application/feed+json": "json",
    "application/json": "json",  # JSON Feed 1.0 was announced with this type
    "application/rdf+xml": "rss",
    "application/xml": "xml",
    "text/xml": "xml",
}
COMMON_PATHS = ("feed/", "rss.xml", "atom.xml", "index.xml", "feed.json")
MAX_CANDIDATES = 8  # bounds the requests one discovery makes to a member's site

Origin = Literal["link", "guess"]
# Fetcher.fetch, passed in so that discovery uses the poll's client, limits and politeness.
FetchFunction = Callable[[SourceConfig, CacheValidators], Awaitable[FetchResult]]


@dataclass(frozen=True)
class FeedCandidate:
    """A place a feed may be: named by the page (`link`) or a common location (`guess`)."""

    url: str  # absolute
    origin: Origin
    title: str | None = None
    media_type: str | None = None

    @property
    def is_comments(self) -> bool:
        """WordPress and others announce a comments feed next to the posts feed."""
        text = f"{self.title or ''} {urlsplit(self.url).path}".lower()
        return "comment" in text


@dataclass(frozen=True)
class CheckedFeed:
    """A candidate after fetching it: its parsed body, or why it is not a usable feed."""

    candidate: FeedCandidate
    parsed: ParsedFeed | None = None
    result: FetchResult | None = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.parsed is not None and self.problem is None

    @property
    def full_content(self) -> float:
        """The share of entries that carry their full text, not only a summary."""
        if self.parsed is None or not self.parsed.entries:
            return 0.0
        full = sum(1 for entry in self.parsed.entries if entry.content_html)
        return full / len(self.parsed.entries)


@dataclass(frozen=True)
class Discovery:
    """What autodiscovery found on one page: every candidate, best first, and the choice."""

    page_url: str
    checked: tuple[CheckedFeed, ...]  # ranked, best first; unusable ones at the end
    refused: tuple[tuple[str, str], ...] = ()  # (address, why) never fetched
    site_tool: SiteTool | None = None  # what the page was made with, when it says

    @property
    def chosen(self) -> CheckedFeed | None:
        """The best usable feed; never a comments feed, which would publish readers' comments."""
        first = self.checked[0] if self.checked else None
        if first is None or not first.usable or first.candidate.is_comments:
            return None
        return first

    @property
    def problem(self) -> str:
        """Why nothing was chosen, in words for staff."""
        if self.chosen is not None:
            return ""
        if not self.checked and not self.refused:
            return f"{self.page_url} is a web page and names no feed"
        if self.checked and self.checked[0].usable:
            return (
                f"{self.page_url} is a web page whose only feed is for comments "
                f"({self.checked[0].candidate.url}); use a 'page:' source for it instead"
            )
        tried = ", ".join(check.candidate.url for check in self.checked)
        refused = "; ".join(f"{address} {why}" for address, why in self.refused)
        return (
            f"{self.page_url} is a web page and no feed was found there"
            + (f" (tried {tried})" if tried else "")
            + (f" (not followed: {refused})" if refused else "")
            + "; use a 'page:' source for it instead"
        )


# --- pure: finding and ranking --------------------------------------------------------


def feed_links(content: bytes, url: str, content_type: str | None) -> list[FeedCandidate]:
    """The feeds a page names in `<link rel="alternate" type="…">`, in page order."""
    soup = BeautifulSoup(decode_page(content, content_type), "lxml")
    base = document_base_url(soup, url)
    found: list[FeedCandidate] = []
    for link in soup.find_all("link", href=True):
        rel = link.get("rel")
        rels = {value.lower() for value in rel} if isinstance(rel, list) else set()
        media_type, _ = split_content_type(_text(link, "type"))
        if "alternate" not in rels or media_type not in FEED_TYPES:
            continue
        href = _text(link, "href")
        absolute = _absolute(href, base) if href else None
        if absolute is None or any(candidate.url == absolute for candidate in found):
            continue
        found.append(
            FeedCandidate(
                url=absolute, origin="link", title=_text(link, "title"), media_type=media_type
            )
        )
    return found


def common_locations(url: str, tool: SiteTool | None = None) -> list[FeedCandidate]:
    """Where publishing systems put feeds: the site tool's places first, then near the page
    and at the site's root."""
    parts = urlsplit(url)
    folder = parts.path if parts.path.endswith("/") else parts.path.rsplit("/", 1)[0] + "/"
    bases = [folder, "/"] if folder != "/" else ["/"]
    found = tool_locations(url, tool) + [
        urlunsplit((parts.scheme, parts.netloc, base + path, "", ""))
        for base in bases
        for path in COMMON_PATHS
    ]
    # Squarespace serves any collection page as RSS with ?format=rss.
    query = f"{parts.query}&format=rss" if parts.query else "format=rss"
    found.append(urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, "")))
    return [FeedCandidate(url=address, origin="guess") for address in dict.fromkeys(found)]


def rank(checked: Sequence[CheckedFeed]) -> list[CheckedFeed]:
    """Best first: usable, not comments, full content, named by the page, then page order."""
    order = {id(check): index for index, check in enumerate(checked)}

    def key(check: CheckedFeed) -> tuple[bool, bool, float, bool, int]:
        return (
            not check.usable,
            check.candidate.is_comments,
            -check.full_content,
            check.candidate.origin != "link",
            order[id(check)],
        )

    return sorted(checked, key=key)


async def link_refusal(
    page_url: str, link_url: str, resolver: Resolver = system_resolver
) -> str | None:
    """Why a link found on `page_url` must not be fetched, or None when it may.

    The rule is aggregator.ingest.safety's: a public page must never lead the aggregator to a
    private or loopback address (the page could be hostile and the address an internal
    service); a page that is itself private (the offline demo, tests, an intranet member)
    may name addresses on its own network. Only http(s) is ever fetched.
    """
    try:
        await check_discovered_link(page_url, link_url, resolver)
    except UnsafeAddressError as exc:
        return f"refused for safety: {exc}"
    return None


# --- the orchestrator -----------------------------------------------------------------


async def discover_if_page(
    result: FetchResult,
    fetch: FetchFunction,
    *,
    read_feed: Callable[[FetchResult], ParsedFeed],
    resolver: Resolver = system_resolver,
) -> Discovery | None:
    """The one branching point of discovery, for polls and previews alike: a fetched feed or
    site address that answered with a web page gets its feed discovered; anything else
    (an error, a `page:` source, a body that is no web page) is read as it is (None)."""
    if result.error is not None or result.source.kind == "page" or not is_html_page(result):
        return None
    return await discover_feed(result, fetch, read_feed=read_feed, resolver=resolver)


async def discover_feed(
    page: FetchResult,
    fetch: FetchFunction,
    *,
    read_feed: Callable[[FetchResult], ParsedFeed],
    resolver: Resolver = system_resolver,
) -> Discovery:
    """Find, fetch, read and rank the feeds of the HTML page in `page`.

    `read_feed` turns a fetched candidate into a ParsedFeed or raises ParseError (the parse
    stage's parse_source); it is passed in so this module needs no knowledge of sources.
    Candidates named by the page are all checked; common locations only when the page names
    no usable feed, one at a time, stopping at the first that is one.
    """
    assert page.content is not None
    page_url = page.final_url
    named = feed_links(page.content, page_url, page.content_type)
    tool = detect_site_tool(page.content, page.content_type)
    refused: list[tuple[str, str]] = []
    checked: list[CheckedFeed] = []

    async def check(candidate: FeedCandidate) -> CheckedFeed | None:
        why = await link_refusal(page_url, candidate.url, resolver)
        if why is not None:
            refused.append((candidate.url, why))
            return None
        result = await fetch(
            replace(page.source, url=candidate.url, kind="feed"), CacheValidators()
        )
        # Redirects on the way were checked by the fetcher with the same rule.
        return _read(candidate, result, read_feed)

    for candidate in named[:MAX_CANDIDATES]:
        outcome = await check(candidate)
        if outcome is not None:
            checked.append(outcome)
    if not any(check_.usable and not check_.candidate.is_comments for check_ in checked):
        tried = {check_.candidate.url for check_ in checked}
        budget = MAX_CANDIDATES * 2
        for candidate in common_locations(page_url, tool):
            if candidate.url in tried or candidate.url == page_url or budget <= 0:
                continue
            budget -= 1
            outcome = await check(candidate)
            if outcome is None:
                continue
            checked.append(outcome)
            if outcome.usable:
                break
            # A guess that 404s says nothing staff need to read; drop the noise.
            if outcome.result is not None and outcome.result.status == 404:
                checked.remove(outcome)
    return Discovery(
        page_url=page_url,
        checked=tuple(rank(checked)),
        refused=tuple(refused),
        site_tool=tool,
    )


def _read(
    candidate: FeedCandidate, result: FetchResult, read_feed: Callable[[FetchResult], ParsedFeed]
) -> CheckedFeed:
    if result.error is not None:
        return CheckedFeed(candidate, result=result, problem=result.error)
    if result.content is None:
        return CheckedFeed(candidate, result=result, problem="the address returned no body")
    if looks_like_html(result.content, result.content_type):
        return CheckedFeed(candidate, result=result, problem="a web page, not a feed")
    try:
        parsed = read_feed(result)
    except ParseError as exc:
        return CheckedFeed(candidate, result=result, problem=exc.cause)
    return CheckedFeed(candidate, parsed=parsed, result=result)


# --- helpers --------------------------------------------------------------------------


def _text(tag: Tag, name: str) -> str | None:
    value = tag.get(name)
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


def _absolute(href: str, base: str) -> str | None:
    try:
        absolute = urljoin(base, href.strip())
    except ValueError:
        return None
    return absolute.split("#", 1)[0] if absolute.startswith(("http://", "https://")) else None
