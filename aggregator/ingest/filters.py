"""Which normalized items a member or source contributes: feeds.yaml include/exclude/max_age.

A large member that publishes on many topics can be limited to the network's: `include:`
keeps only items that mention one of its words or phrases, `exclude:` drops items that
mention any of its; both look at the title, the summary and the tags, ignoring case and
accents, and match whole words ("strike" does not match "strikeout"; "heat stress" is a
phrase). `max_age` leaves out a new member's old backlog.

Pure: no I/O, no clock (`now` is passed in). It must never change an item, only choose.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from aggregator.models import Item
from aggregator.models import ItemFilter
from aggregator.text import fold
from aggregator.text import html_to_text


@dataclass(frozen=True)
class FilterResult:
    """The items kept, and for each one left out the rule that did it (for reports)."""

    kept: list[Item]
    dropped: list[tuple[Item, str]]


@lru_cache(maxsize=1024)
def keyword_pattern(keyword: str) -> re.Pattern[str]:
    """A whole-word (or whole-phrase) pattern; spaces in a phrase match any whitespace."""
    words = fold(keyword).split()
    body = r"\s+".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w){body}(?!\w)")


def item_text(item: Item) -> str:
    """What include/exclude look at: title, summary text and tags, folded."""
    parts = [item.title, html_to_text(item.summary), *item.tags]
    return fold("\n".join(parts))


def mentions(text: str, keywords: Iterable[str]) -> str | None:
    """The first keyword `text` (already folded) mentions, or None."""
    for keyword in keywords:
        if keyword_pattern(keyword).search(text):
            return keyword
    return None


def too_old(rule: ItemFilter, published: datetime, date_from_source: bool, now: datetime) -> bool:
    """Whether `rule`'s max_age leaves out an item of these dates (an undated item never:
    its date is when it was first seen)."""
    return rule.max_age is not None and date_from_source and published < now - rule.max_age


def rejection(item: Item, rule: ItemFilter, now: datetime) -> str | None:
    """Why `rule` leaves `item` out, in words for staff, or None when it keeps it."""
    if too_old(rule, item.published, item.date_from_source, now):
        return f"older than max_age ({rule.max_age})"
    if not rule.include and not rule.exclude:
        return None
    text = item_text(item)
    if rule.exclude:
        found = mentions(text, rule.exclude)
        if found is not None:
            return f"mentions excluded {found!r}"
    if rule.include and mentions(text, rule.include) is None:
        return "mentions none of the included words"
    return None


def filter_items(items: Sequence[Item], rules: Sequence[ItemFilter], now: datetime) -> FilterResult:
    """Keep the items every rule lets through, in their order."""
    kept: list[Item] = []
    dropped: list[tuple[Item, str]] = []
    for item in items:
        reason = next(
            (why for why in (rejection(item, rule, now) for rule in rules) if why is not None),
            None,
        )
        if reason is None:
            kept.append(item)
        else:
            dropped.append((item, reason))
    return FilterResult(kept=kept, dropped=dropped)
