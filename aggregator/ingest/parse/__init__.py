"""The parse stage: a FetchResult's body -> ParsedFeed, by the source's kind and the body's format.

This module only dispatches (like Miniflux's parser.go): a feed body is sniffed (sniff.py)
and goes to jsonfeed.py (read directly) or rss_atom.py (feedparser, after xml_guard.py has
dropped any entity declarations); fields.py holds what those readers share. News pages go to
pages.py (BeautifulSoup and the member's CSS selectors), or to heuristics.py when
the page has no selectors. A `url:` source arrives here with its discovered feed's body.

It must never fetch, clean, absolutize or date-clamp (normalize does that), and never raise
anything but ParseError, whatever bytes arrive: one member's broken body must not stop a poll.

The readers that need feedparser or BeautifulSoup (rss_atom, pages, heuristics) are imported
when a body of their kind is first read, not with this package: importing any of its
modules (sniff, which the polling process asks whether a body is a web page) runs this file
first, and the polling process must not load the parse stack (11 MB and 0.1 s of every
`aggregator fetch`) before it parses itself, which in a big round it never does.
"""

from __future__ import annotations

from aggregator.errors import ParseError
from aggregator.ingest.parse.fields import FormatError
from aggregator.ingest.parse.jsonfeed import parse_json_feed
from aggregator.ingest.parse.sniff import is_json
from aggregator.models import FetchResult
from aggregator.models import ParsedFeed

__all__ = ["parse_feed", "parse_source"]


def parse_feed(content: bytes, url: str, content_type: str | None) -> ParsedFeed:
    """Read a feed body fetched from `url` (after redirects) with its Content-Type header."""
    if not content.strip():
        raise FormatError("not a feed: the address returned an empty body")
    if is_json(content, content_type):
        return parse_json_feed(content, url)
    # Deferred (see the package's docstring): feedparser loads with the first XML feed.
    from aggregator.ingest.parse.rss_atom import parse_xml_feed

    return parse_xml_feed(content, url, content_type)


def parse_source(result: FetchResult) -> ParsedFeed:
    """Read a fetched body as its source's kind says: a feed, or a page scraped by selectors."""
    source = result.source
    url = result.final_url
    if result.content is None:
        raise ParseError(source.member_id, url, "nothing to read: the fetch returned no body")
    try:
        if source.kind == "page":
            # Deferred (see the package's docstring): BeautifulSoup loads with the first page.
            from aggregator.ingest.parse.heuristics import parse_page_heuristically
            from aggregator.ingest.parse.pages import parse_page

            if source.selectors is None:
                return parse_page_heuristically(result.content, url, result.content_type)
            return parse_page(result.content, url, result.content_type, source.selectors)
        return parse_feed(result.content, url, result.content_type)
    except FormatError as exc:
        raise ParseError(source.member_id, url, str(exc)) from exc
    except Exception as exc:
        # feedparser, lxml and soupsieve have raised odd things on odd bytes over the years;
        # whatever it is, it is this source's problem, reported as such, not the poll's.
        cause = f"the parser failed on this body ({type(exc).__name__}: {exc})"
        raise ParseError(source.member_id, url, cause) from exc
