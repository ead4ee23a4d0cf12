"""Fill in the language of items whose source does not say.

Readers filter the combined feed by language (`?lang=es`). The feed's or page's own
declaration always wins (normalize keeps it); this fills only the gaps, from the item's
headline and plain-text summary, with the one detector (`aggregator.languages`).

Pure. It must never override a declared language, and never guess from too little text:
no answer is better than a wrong one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from aggregator.languages import detect_language
from aggregator.models import Item
from aggregator.text import html_to_text


def with_detected_language(items: Iterable[Item]) -> list[Item]:
    """The items, each without a language given one when its text makes it clear."""
    result = []
    for item in items:
        if item.language is None:
            text = " ".join((item.title, html_to_text(item.summary or item.content_html)))
            detected = detect_language(text)
            if detected is not None:
                item = replace(item, language=detected)
        result.append(item)
    return result
