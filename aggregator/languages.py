"""Tell English from Spanish text by counting each language's commonest words.

Members publish in English and Spanish. This is the pure core that two stages share:
ingest fills in the language of an item whose source declares none
(`ingest.language.with_detected_language`) and the cross-post rules never merge two
items in different languages and leave both languages' stop words out of a headline's
distinctive words (`dedupe`). It lives in the base so that `dedupe` needs nothing above
it. Counting stop words is reliable for a headline and a summary and needs no model or
extra dependency.

Pure: no I/O, no clock. It must never guess from too little or too mixed text: no answer
is better than a wrong one.
"""

from __future__ import annotations

import re

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
