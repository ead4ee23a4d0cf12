"""Deduplication rules: when two items are the same story.

Pure functions over plain data; the store asks them, never the reverse. Two rules:

* the same item re-polled or edited is found by its identity key within its source
  (normalize.py builds the key: GUID, else canonical link, else content hash), so it is
  updated in place and keeps its story;
* the same story cross-posted by several members is found by canonical link, or by a
  near-identical title (case, punctuation and a leading label like "Breaking:" ignored)
  published within a week *and* with similar text, so that two members' different posts
  titled "Weekly update" stay two stories.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

CROSS_POST_WINDOW = timedelta(days=7)
MIN_TEXT_SIMILARITY = 0.5
# With no text to compare, only a long, specific title is evidence of the same story.
MIN_TITLE_WORDS_WITHOUT_TEXT = 6
SHINGLE_SIZE = 3
MAX_TEXT_WORDS = 400

LEADING_LABELS = (
    "breaking",
    "breaking news",
    "update",
    "updated",
    "news",
    "press release",
    "statement",
    "action alert",
    "alert",
    "new",
    "video",
    "photos",
    "op-ed",
    "opinion",
    "urgent",
    "just in",
    "última hora",
    "comunicado",
    "noticias",
)
_LABEL_PATTERN = re.compile(
    r"^\s*(?:\[?(?:"
    + "|".join(re.escape(label) for label in LEADING_LABELS)
    + r")\]?\s*[:|\-–—]\s*)+",
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


@dataclass(frozen=True)
class StoryCandidate:
    """A stored item that a new item might be a cross-post of."""

    story_id: int
    member_id: str
    url: str | None
    title_key: str
    published: datetime
    text: str


def title_key(title: str) -> str:
    """The title reduced to what identifies a story: no case, accents, punctuation, label."""
    without_label = _LABEL_PATTERN.sub("", title)
    decomposed = unicodedata.normalize("NFKD", without_label)
    ascii_folded = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(_NON_WORD.sub(" ", ascii_folded.casefold()).split())


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = title_key(text).split()[:MAX_TEXT_WORDS]
    if len(words) < SHINGLE_SIZE:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + SHINGLE_SIZE]) for i in range(len(words) - SHINGLE_SIZE + 1)}


def text_similarity(first: str, second: str) -> float:
    """Jaccard similarity of word 3-shingles: 1.0 same text, 0.0 nothing in common.

    Uses the shorter text's coverage rather than the union so that a member which
    republishes an excerpt of another's post still matches it.
    """
    a, b = _shingles(first), _shingles(second)
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def same_story(
    *,
    url: str | None,
    key: str,
    published: datetime,
    text: str,
    candidate: StoryCandidate,
) -> bool:
    if url is not None and candidate.url == url:
        return True
    if not key or key != candidate.title_key:
        return False
    if abs(published - candidate.published) > CROSS_POST_WINDOW:
        return False
    if not text.strip() or not candidate.text.strip():
        both_empty = not text.strip() and not candidate.text.strip()
        return both_empty and len(key.split()) >= MIN_TITLE_WORDS_WITHOUT_TEXT
    return text_similarity(text, candidate.text) >= MIN_TEXT_SIMILARITY


def match_story(
    *,
    url: str | None,
    title: str,
    published: datetime,
    text: str,
    candidates: Sequence[StoryCandidate],
) -> int | None:
    """The story an item belongs to among the candidates, or None for a new story.

    An exact canonical-link match wins over a title match; among title matches the
    closest in time wins.
    """
    key = title_key(title)
    for candidate in candidates:
        if url is not None and candidate.url == url:
            return candidate.story_id
    matches = [
        candidate
        for candidate in candidates
        if same_story(url=url, key=key, published=published, text=text, candidate=candidate)
    ]
    if not matches:
        return None
    return min(matches, key=lambda candidate: abs(candidate.published - published)).story_id
