"""Guess whether an item is in English or Spanish when its source does not say.

Members publish in English and Spanish; readers filter the combined feed by language
(`?lang=es`). The feed's or page's own declaration always wins (normalize keeps it); this
fills only the gaps, by counting each language's commonest words, which is reliable for
a headline and a summary and needs no model or extra dependency.

Pure. It must never override a declared language, and never guess from too little text:
no answer is better than a wrong one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from aggregator.models import Item
from aggregator.text import html_to_text

# Words that are common in one language and rare in the other ("a", "no", "me" are both).
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        re.findall(
            r"\S+",
            "the and of to in is are was were for on with that this from by at as be have has "
            "it its their they we our you will would not but or an after about who which what "
            "new more workers",
        )
    ),
    "es": frozenset(
        re.findall(
            r"\S+",
            "el la los las de del y en que por para con una un es son fue se su sus al lo como "
            "más pero sobre este esta entre también nuestra nuestro trabajadores trabajadoras "
            "sin ya hay",
        )
    ),
}
MIN_HITS = 3  # stop words needed before any guess
MIN_MARGIN = 2.0  # the winner must have at least this many times the other's hits
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect_language(text: str) -> str | None:
    """ "en", "es" or None when the text is too short or too mixed to tell."""
    counts = dict.fromkeys(STOP_WORDS, 0)
    for word in _WORD.findall(text.casefold()):
        for language, words in STOP_WORDS.items():
            if word in words:
                counts[language] += 1
    ranked = sorted(counts.items(), key=lambda pair: pair[1], reverse=True)
    (best, hits), (_, runner_up) = ranked[0], ranked[1]
    if hits < MIN_HITS or hits < MIN_MARGIN * runner_up:
        return None
    return best


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
