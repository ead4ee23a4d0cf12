"""network.limits: what one poll of one source may store, cut from its normalized items.

Apart from normalize, which it follows in the poll, because the polling process applies it
to what the parse processes send back: it must not import normalize, whose sanitizer and
page cleaners load the parse stack (nh3, bs4 and its builders, 11 MB and 0.1 s) into a
process that leaves parsing to its parse processes. Pure: no I/O.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import replace
from typing import TypeVar

from aggregator.models import FetchLimits
from aggregator.models import Item
from aggregator.text import excerpt
from aggregator.text import html_to_text

# Characters of text in a summary normalize derives from the content, and at most in one
# limit_items cuts to an excerpt.
SUMMARY_LENGTH = 300

Entry = TypeVar("Entry")


def limit_items(
    pairs: Sequence[tuple[Entry, Item]], limits: FetchLimits
) -> tuple[list[tuple[Entry, Item]], list[str]]:
    """One poll's items within network.limits, each beside its entry, and a note in plain
    words for every limit that cut something (the poll's warning shows them on /status).

    The newest items_per_poll items stay, in the feed's order; each keeps its first
    tags_per_item tags; a title over title_length characters is cut at a word; a summary
    over summary_length characters of HTML becomes a plain-text excerpt. One hostile item
    with 1,000 tags once made `export` write 3,013 files; a 4.5 MB title was published on
    every page.
    """
    notes = []
    kept = list(pairs)
    if len(kept) > limits.items_per_poll:
        newest = sorted(
            range(len(kept)), key=lambda index: kept[index][1].published, reverse=True
        )
        chosen = set(newest[: limits.items_per_poll])
        notes.append(f"kept the newest {limits.items_per_poll:,} of {len(kept):,} items")
        kept = [pair for index, pair in enumerate(kept) if index in chosen]
    most_tags = tagged = titled = summarized = 0
    limited = []
    for entry, item in kept:
        # A cut item keeps no entry digest: its entry is then normalized at every poll
        # and the cut noted again, as it would be if nothing were skipped.
        if len(item.tags) > limits.tags_per_item:
            most_tags, tagged = max(most_tags, len(item.tags)), tagged + 1
            item = replace(item, tags=item.tags[: limits.tags_per_item], entry_digest=None)
        if len(item.title) > limits.title_length:
            titled += 1
            item = replace(item, title=excerpt(item.title, limits.title_length), entry_digest=None)
        if len(item.summary) > limits.summary_length:
            summarized += 1
            text = html_to_text(item.summary)
            short = excerpt(text, min(SUMMARY_LENGTH, limits.summary_length))
            item = replace(item, summary=html.escape(short), entry_digest=None)
        limited.append((entry, item))
    if tagged:
        on = "an item" if tagged == 1 else f"each of {tagged:,} items"
        notes.append(f"kept {limits.tags_per_item:,} of up to {most_tags:,} tags on {on}")
    if titled:
        notes.append(f"shortened {_count(titled, 'title')} to {limits.title_length:,} characters")
    if summarized:
        notes.append(f"shortened {_count(summarized, 'summary', 'summaries')} to an excerpt")
    return limited, notes


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number:,} {singular if number == 1 else plural or singular + 's'}"
