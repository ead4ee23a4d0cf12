"""The CPU-bound middle of a poll (parse -> normalize) as one call a worker process can run.

poll.py runs it in a pool of worker processes when a round is big enough to use more than
one core, else in a thread. It lives apart from poll.py so that a worker imports only the
parse and normalize stages: not the HTTP client, the database or the web stack, which
would add tens of megabytes to every worker for nothing.

Pure: no network, no database, no clock (the fetch time travels in the FetchResult). It
must never import aggregator.ingest.poll, aggregator.ingest.fetch or aggregator.store.
"""

from __future__ import annotations

from dataclasses import replace

from aggregator.errors import ParseError
from aggregator.ingest.normalize import normalize_feed
from aggregator.ingest.parse import parse_source
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import ParsedFeed


def parse_and_normalize(result: FetchResult, language: str | None) -> tuple[ParsedFeed, list[Item]]:
    """The pure, CPU-bound middle of a poll."""
    parsed = parse_source(result)
    items = normalize_feed(parsed, result.source, result.fetched_at, language)
    skipped = len(parsed.entries) - len(items)
    if skipped:
        # Said on the poll report and /status: a feed that suddenly sends empty items is
        # broken or tampered with, and its stored stories were kept as they were.
        note = f"{skipped} items with nothing to show (no title, no text) were skipped"
        parsed = replace(parsed, warning=f"{parsed.warning}; {note}" if parsed.warning else note)
    return parsed, items


def parse_in_worker(
    result: FetchResult, language: str | None
) -> tuple[ParsedFeed | None, list[Item], str | None]:
    """parse_and_normalize as (parsed, items, None), or (None, [], cause) for a ParseError.

    The cause travels as a string because a ParseError does not survive pickling, and the
    parsed entries only when the source's `follow` needs them, so that a feed's raw HTML is
    not sent back beside its normalized items.
    """
    try:
        parsed, items = parse_and_normalize(result, language)
    except ParseError as exc:
        return None, [], exc.cause
    return (parsed if result.source.follow else replace(parsed, entries=())), items, None
