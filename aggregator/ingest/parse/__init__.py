"""The parse stage: a FetchResult's body -> ParsedFeed, by the source's kind and the body's format.

Feeds go to feeds.py (JSON Feed read directly, everything else through feedparser); news
pages go to pages.py (BeautifulSoup and the member's CSS selectors), or to heuristics.py when
the page has no selectors. A `url:` source arrives here with its discovered feed's body.

It must never fetch, clean, absolutize or date-clamp (normalize does that), and never raise
anything but ParseError, whatever bytes arrive: one member's broken body must not stop a poll.
"""

from __future__ import annotations

from aggregator.errors import ParseError
from aggregator.ingest.parse.feeds import FormatError
from aggregator.ingest.parse.feeds import parse_feed
from aggregator.ingest.parse.heuristics import parse_page_heuristically
from aggregator.ingest.parse.pages import parse_page
from aggregator.models import FetchResult
from aggregator.models import ParsedFeed

__all__ = ["parse_feed", "parse_page", "parse_page_heuristically", "parse_source"]


def parse_source(result: FetchResult) -> ParsedFeed:
    """Read a fetched body as its source's kind says: a feed, or a page scraped by selectors."""
    source = result.source
    url = result.final_url
    if result.content is None:
        raise ParseError(source.member_id, url, "nothing to read: the fetch returned no body")
    try:
        if source.kind == "page":
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
