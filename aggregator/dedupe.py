"""Deduplication rules: when two items are the same story.

Pure functions over plain data; the store asks them, never the reverse. They must never
read the clock, the database or the network. Two rules:

* the same item re-polled or edited is found by its identity key within its source
  (normalize.py builds the key: GUID, else canonical link, else content hash), so it is
  updated in place and keeps its story;
* the same story cross-posted by several members (`match_story`), on one of four kinds of
  evidence, always within a time window and never across languages:

  1. the same article link (a site's home or section page is not an article);
  2. the same title key (labels like "Press release:", site suffixes like "| Member",
     emoji, case, "&"/"and" and the writing of numbers ignored), when the title is
     specific (not "Weekly update") and the texts agree or the title names something;
  3. equivalent headlines: most distinctive title words shared (NewsBlur's rule, with
     numbers normalized so that $1.2M = 1.2 million) and no differing number, place or
     name (so Georgia never matches Colorado, nor one farm another);
  4. the same body under another headline or an excerpt of it, when the text is long
     enough to be specific and the titles are not generic templates.

`candidate_keys` says what the store must index to find the candidates these rules need;
`text_features` is what the rules compare of a text, computed once per item (the store keeps
it with each item, so a candidate's HTML is never read again to match it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from functools import cached_property
from urllib.parse import urlsplit

from aggregator.languages import STOP_WORDS
from aggregator.languages import detect_language

# A repost "a week or so later" is the same story; the same headline eleven days later is
# a follow-up. Link matches may be further apart (a late share of the same article).
CROSS_POST_WINDOW = timedelta(days=10)
LINK_WINDOW = timedelta(days=30)
MIN_TEXT_SIMILARITY = 0.5  # same title: texts that agree this much confirm it
MIN_BODY_SIMILARITY = 0.8  # different titles: the text alone must be nearly the same
MIN_BODY_WORDS = 25  # shorter texts are too unspecific to match on alone
THIN_TEXT_WORDS = 20  # a text this short (a teaser, a footer) says nothing either way
# With no text to compare, only a long, specific title is evidence of the same story.
MIN_TITLE_WORDS_WITHOUT_TEXT = 6
MIN_SPECIFIC_TITLE_WORDS = 4
MIN_SHARED_TOKENS = 3  # equivalent headlines: NewsBlur's "at least 3 shared words"
MIN_TOKEN_JACCARD = 0.5
MIN_DISTINCTIVE_TOKENS = 2  # fewer: the title is generic ("Weekly update", "Statement")
SHINGLE_SIZE = 3
MAX_TEXT_WORDS = 400

LEADING_LABELS = (
    "breaking",
    "breaking news",
    "update",
    "updated",
    "news",
    "press release",
    "news release",
    "media release",
    "statement",
    "joint statement",
    "press statement",
    "action alert",
    "alert",
    "new",
    "video",
    "photos",
    "op-ed",
    "opinion",
    "urgent",
    "just in",
    "must read",
    "read",
    "read this",
    "from our allies",
    "última hora",
    "comunicado",
    "comunicado de prensa",
    "declaración",
    "noticias",
)
_LABELS = "|".join(re.escape(label) for label in sorted(LEADING_LABELS, key=len, reverse=True))
# "Label:" / "Label —" / "[Label]" at the start, possibly several.
_LABEL_PATTERN = re.compile(
    rf"^\s*(?:(?:\[(?:{_LABELS})\]|\((?:{_LABELS})\))\s*[:|\-–—]?\s*|(?:{_LABELS})\s*[:|\-–—]\s*)+",
    re.IGNORECASE,
)
# A site suffix: " | Anything" at the end, or " – Org Name" / " - Org Name" in Title Case.
_PIPE_SUFFIX = re.compile(r"\s+\|\s+[^|]+$")
_DASH_SUFFIX = re.compile(
    r"\s+[-–—]\s+(?:(?:[A-Z0-9][\w'’.]*|of|and|for|the|de|la|del)(?:\s+|$)){2,6}$"
)
_NON_WORD = re.compile(r"[^\w.]+|(?<!\d)\.|\.(?!\d)", re.UNICODE)
# "$1.2M", "$1.2 million", "1.2 million dollars", "$20.00", "1,200": one form per amount.
_AMOUNT = re.compile(
    r"(?<![\w.])\$?\s?(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*"
    r"(million|millones|thousand|billion|mil|m|k|bn)?(?![\w])(\s+(?:dollars|dólares|usd))?",
    re.IGNORECASE,
)
_MULTIPLIERS = {
    "million": 1e6,
    "millones": 1e6,
    "m": 1e6,
    "thousand": 1e3,
    "mil": 1e3,
    "k": 1e3,
    "billion": 1e9,
    "bn": 1e9,
}


def _word_set(*lines: str) -> frozenset[str]:
    return frozenset(" ".join(lines).split())


# Words that say nothing about which story a title is: with stop words, they are left out
# of the distinctive tokens (and a title made only of them is generic).
GENERIC_WORDS = _word_set(
    "update updates weekly monthly daily newsletter news statement press release take action "
    "in the news alert today this week month year new our your we us join read more latest "
    "worker workers win wins won victory members member union unions says say said call "
    "committee senate house assembly council congress legislature lawmakers legislators "
    "state city county federal government bill law "
    "january february march april may june july august september october november "
    "december monday tuesday wednesday thursday friday saturday sunday "
    "boletin noticias actualizacion semanal mensual comunicado trabajadores trabajadoras",
)
# Words that make a title a different kind of item about the same event: a statement about
# a fire is not the fire, a fund for its victims is a new story.
STORY_KINDS = _word_set(
    "statement fund report petition vigil letter survey interview video photos podcast "
    "lawsuit verdict hearing comunicado declaracion informe",
)
PLACES = _word_set(
    "alabama alaska arizona arkansas california colorado connecticut delaware florida "
    "georgia hawaii idaho illinois indiana iowa kansas kentucky louisiana maine maryland "
    "massachusetts michigan minnesota mississippi missouri montana nebraska nevada "
    "new_hampshire new_jersey new_mexico new_york north_carolina north_dakota ohio "
    "oklahoma oregon pennsylvania rhode_island south_carolina south_dakota tennessee "
    "texas utah vermont virginia washington west_virginia wisconsin wyoming "
    "mexico guatemala honduras bangladesh cambodia vietnam india china "
    "sacramento olympia albany montpelier austin atlanta denver",
)
_TWO_WORD_PLACES = {place.replace("_", " ") for place in PLACES if "_" in place}
_STOP = (
    STOP_WORDS["en"]
    | STOP_WORDS["es"]
    | _word_set(
        "a an at to on in of for by with from after over under into out up as is are be was "
        "were its it their his her at vs via about than then de del la el en y a los las por con "
        "una un al",
    )
)
# Path segments of a site's listing pages rather than of one article.
SECTION_SEGMENTS = _word_set(
    "news blog blogs posts press media updates stories articles noticias prensa es en fr "
    "index.html index.php home about campaigns events actions reports statements resources",
)
LISTING_SEGMENTS = _word_set("category categories tag tags page author topics categoria")
# WordPress ends every feed item with this line: it is the site's, not the story's.
_WORDPRESS_FOOTER = re.compile(
    r"\s*The post .{1,400}? appeared first on .{1,200}?\.\s*$", re.DOTALL
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)


@dataclass(frozen=True)
class TextFeatures:
    """What the rules compare of an item's text (and, for its language, its heading).

    Computed once per item, never once per pair: the per-pair work is then set operations.
    `to_json`/`from_json` give the form the store keeps with each item.
    """

    words: int  # words in the whole text: a short text says nothing either way
    shingle_words: tuple[str, ...]  # the normalized words the 3-shingles are made of
    places: frozenset[str]
    names: frozenset[str]
    language: str | None  # of the heading and the text together

    @cached_property
    def shingles(self) -> frozenset[tuple[str, ...]]:
        words = self.shingle_words
        if len(words) < SHINGLE_SIZE:
            return frozenset({words}) if words else frozenset()
        return frozenset(words[i : i + SHINGLE_SIZE] for i in range(len(words) - SHINGLE_SIZE + 1))

    def to_json(self) -> dict[str, object]:
        return {
            "version": FEATURES_VERSION,
            "words": self.words,
            # Normalized words never contain a space: one string is the compact form.
            "shingle_words": " ".join(self.shingle_words),
            "places": sorted(self.places),
            "names": sorted(self.names),
            "language": self.language,
        }

    @classmethod
    def from_json(cls, value: object) -> TextFeatures | None:
        """The features stored by to_json, or None when absent or of another version (the
        caller then computes them from the text)."""
        if not isinstance(value, dict) or value.get("version") != FEATURES_VERSION:
            return None
        language = value["language"]
        return cls(
            words=int(value["words"]),
            shingle_words=tuple(str(value["shingle_words"]).split()),
            places=frozenset(value["places"]),
            names=frozenset(value["names"]),
            language=None if language is None else str(language),
        )


# Bumped whenever text_features changes what it computes: stored features of another
# version are recomputed from the text rather than trusted.
FEATURES_VERSION = 1


def text_features(text: str, heading: str) -> TextFeatures:
    """The features of an item's plain text; `heading` (its title as the item is compared:
    the published title for a new item, the title key for a stored candidate) counts for
    its language only."""
    return TextFeatures(
        words=len(text.split()),
        shingle_words=tuple(title_key(_WORDPRESS_FOOTER.sub("", text)).split()[:MAX_TEXT_WORDS]),
        places=_places(text),
        names=_names(text),
        language=detect_language(f"{heading} {text}"),
    )


def with_heading(features: TextFeatures, text: str, heading: str) -> TextFeatures:
    """The same text's features under another heading (only the language depends on it)."""
    return replace(features, language=detect_language(f"{heading} {text}"))


@dataclass(frozen=True)
class StoryCandidate:
    """A stored item that a new item might be a cross-post of."""

    story_id: int
    member_id: str
    url: str | None
    title_key: str
    published: datetime
    text: str
    item_id: int | None = None  # the stored item, named in a Match's evidence
    # Its text's features as stored; None computes them from `text` (heading: title_key).
    stored_features: TextFeatures | None = field(default=None, compare=False)

    @cached_property
    def features(self) -> TextFeatures:
        if self.stored_features is not None:
            return self.stored_features
        return text_features(self.text, self.title_key)


# What title_key normalizes, said in a merge's evidence so staff can see why titles matched.
TITLE_NORMALIZATIONS = (
    "leading labels (Press release:, [Statement], …)",
    "site suffix (| Member, – Member Name)",
    "case, accents, punctuation and emoji",
    "& = and",
    "amounts ($1.2M = 1.2 million)",
)


@dataclass(frozen=True)
class Match:
    """The story an item joins, the rule that decided it and the evidence, for staff.

    `others` are the other stories the rule also matched (one Match each, its best
    candidate by the same ranking): the store merges those that came in the same round of
    polls (store/stories.py merge_same_round), so a round's clusters do not depend on the
    order its polls finished. They never change which story is chosen.
    """

    story_id: int
    rule: str
    evidence: dict[str, object]
    others: tuple[Match, ...] = ()


def _fold(text: str) -> str:
    if text.isascii():
        return text.casefold()  # nothing to decompose: most texts, and the fast path
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()


def _amount(match: re.Match[str]) -> str:
    number, unit, dollars = match.group(1), match.group(2), match.group(3)
    if unit is None and dollars is None and "$" not in match.group(0):
        return number.replace(",", "")  # a plain number ("350"), not money
    value = float(number.replace(",", "")) * _MULTIPLIERS.get((unit or "").casefold(), 1.0)
    return f" {value:.0f} "


def strip_title(title: str) -> str:
    """The title without its leading labels and its trailing site suffix."""
    # Labels first: "Joint Statement — Title Case Headline" is a label, not a suffix.
    stripped = _LABEL_PATTERN.sub("", title.strip()) or title.strip()
    stripped = _PIPE_SUFFIX.sub("", stripped) or stripped
    head = _DASH_SUFFIX.sub("", stripped)
    # A suffix leaves a headline before it; "Monthly newsletter — March" keeps its month.
    return head if len(head.split()) >= MIN_SPECIFIC_TITLE_WORDS else stripped


def title_key(title: str) -> str:
    """The title reduced to what identifies a story: no case, accents, punctuation, label,
    site suffix or emoji; "&" is "and", and amounts are written one way ($1.2M = 1.2 million)."""
    without_label = strip_title(title).replace("&", " and ")
    with_amounts = _AMOUNT.sub(_amount, without_label)
    return " ".join(_NON_WORD.sub(" ", _fold(with_amounts)).split())


def distinctive_tokens(key: str) -> frozenset[str]:
    """The title key's words that say which story it is: no stop words, no generic words."""
    return frozenset(
        word for word in key.split() if word not in _STOP and word not in GENERIC_WORDS
    )


def is_generic(key: str) -> bool:
    """Whether a title key could head many different stories ("Weekly update")."""
    return len(distinctive_tokens(key)) < MIN_DISTINCTIVE_TOKENS


def is_article_url(url: str) -> bool:
    """Whether a link names one article rather than a site's home or a section page.

    "/", "/news/", "/es/blog/", "/category/heat/" are not articles: two different stories
    may both link a coalition's home page, and that says nothing about them.
    """
    parts = urlsplit(url)
    segments = [segment.casefold() for segment in parts.path.split("/") if segment]
    if re.search(r"(?:^|&)(?:p|page_id|id)=\d", parts.query):
        return True
    if not segments:
        return False
    if len(segments) >= 2 and segments[-2] in LISTING_SEGMENTS:
        return False  # /category/heat/, /tag/dairy/, /news/page/2/
    return not all(segment in SECTION_SEGMENTS for segment in segments)


def candidate_keys(title: str, url: str | None) -> list[str]:
    """What the store must index each item under, and look a new item up by (within
    CROSS_POST_WINDOW, LINK_WINDOW for links), to give `match_story` every candidate."""
    key = title_key(title)
    keys = [f"title\n{key}"]
    if not is_generic(key):
        keys += [f"token\n{token}" for token in sorted(distinctive_tokens(key))]
    if url is not None and is_article_url(url):
        keys.append(f"url\n{url}")
    return keys


def text_similarity(first: str, second: str) -> float:
    """Containment of word 3-shingles: 1.0 same text, 0.0 nothing in common.

    Uses the shorter text's coverage rather than the union so that a member which
    republishes an excerpt of another's post still matches it.
    """
    return _similarity(text_features(first, "").shingles, text_features(second, "").shingles)


def _similarity(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def _places(text: str) -> frozenset[str]:
    folded = " ".join(_NON_WORD.sub(" ", _fold(text)).split())
    found = {place for place in _TWO_WORD_PLACES if f" {place} " in f" {folded} "}
    for place in found:
        folded = folded.replace(place, " ")
    found |= {word for word in folded.split() if word in PLACES}
    return frozenset(place.replace(" ", "_") for place in found)


def _names(text: str) -> frozenset[str]:
    """Capitalized words inside sentences (not their first word): the names a text uses."""
    names: set[str] = set()
    for sentence in _SENTENCE.split(text):
        words = _WORD.findall(sentence)
        names.update(_fold(word) for word in words[1:] if word[:1].isupper())
    return frozenset(names)


def _title_names(title: str) -> frozenset[str]:
    """Names in a title, when its case tells them apart (not Title Case or capitals)."""
    words = _WORD.findall(strip_title(title))
    long_words = [word for word in words if len(word) > 3]
    if not long_words or sum(word[:1].isupper() for word in long_words) / len(long_words) > 0.6:
        return frozenset()
    return frozenset(_fold(word) for word in words[1:] if word[:1].isupper())


def _languages_differ(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a != b


def _conflict(differing: frozenset[str], names: frozenset[str]) -> bool:
    """Whether title words found on one side only name a different number, place, name or
    kind of item (Georgia vs Colorado, two farms, a fire vs the statement about it)."""
    for word in differing:
        if word[:1].isdigit() or word in PLACES or word in STORY_KINDS:
            return True
        if word in names and word not in GENERIC_WORDS:
            return True
    return False


@dataclass(frozen=True)
class _Item:
    url: str | None
    title: str
    key: str
    published: datetime
    features: TextFeatures

    @cached_property
    def title_names(self) -> frozenset[str]:
        return _title_names(self.title)


def same_story(
    *,
    url: str | None,
    key: str,
    published: datetime,
    text: str,
    candidate: StoryCandidate,
    title: str | None = None,
) -> bool:
    """Whether the item (its canonical link, title key, date and text) is a cross-post of
    the candidate. `title`, the item's title as published, lets names be told apart by case."""
    shown = title if title is not None else key
    features = text_features(text, shown)
    item = _Item(url=url, title=shown, key=key, published=published, features=features)
    return _why(item, candidate) is not None


def _why(item: _Item, candidate: StoryCandidate) -> str | None:
    """The rule that makes the item a cross-post of the candidate, or None."""
    mine_text, their_text = item.features, candidate.features
    if _languages_differ(mine_text.language, their_text.language):
        return None
    gap = abs(item.published - candidate.published)
    if (
        item.url is not None
        and candidate.url == item.url
        and is_article_url(item.url)
        and gap <= LINK_WINDOW
    ):
        return "link"
    if gap > CROSS_POST_WINDOW:
        return None
    generic = is_generic(item.key) or is_generic(candidate.title_key)
    if generic:
        # Templated posts share titles and boilerplate: only a shared link merges them.
        return None
    places_differ = _places_differ(mine_text.places, their_text.places)
    words, other_words = mine_text.words, their_text.words
    similarity = _similarity(mine_text.shingles, their_text.shingles)
    names = mine_text.names | their_text.names | item.title_names
    if item.key == candidate.title_key:
        if similarity >= MIN_TEXT_SIMILARITY:
            return "title+text"
        if places_differ:
            return None
        long_title = len(item.key.split()) >= MIN_TITLE_WORDS_WITHOUT_TEXT
        if (words < THIN_TEXT_WORDS or other_words < THIN_TEXT_WORDS) and long_title:
            return "title, no text to compare"
        tokens = distinctive_tokens(item.key)
        if len(item.key.split()) >= MIN_SPECIFIC_TITLE_WORDS and tokens & names:
            return "title naming " + ", ".join(sorted(tokens & names))
        return None
    if places_differ:
        return None
    mine, theirs = distinctive_tokens(item.key), distinctive_tokens(candidate.title_key)
    shared = mine & theirs
    # Generic words do not make two titles alike, but they can make them differ: "Statement
    # on the fire" is not "the fire".
    differing = frozenset(item.key.split()) ^ frozenset(candidate.title_key.split())
    # Without texts that agree, one headline must say nothing the other does not: two that
    # each name something else ("Textile workers call for shade and water breaks in
    # Immokalee" / "Seafood processors gain shade and water breaks in Immokalee") share a
    # campaign's words, not a story; a network whose members campaign together writes many.
    if (
        len(shared) >= MIN_SHARED_TOKENS
        and len(shared) / len(mine | theirs) >= MIN_TOKEN_JACCARD
        and not _conflict(differing - _STOP, names)
        and (similarity >= MIN_TEXT_SIMILARITY or not (mine - shared and theirs - shared))
    ):
        return "equivalent title"
    # The same body under another headline, unless both headlines carry numbers and they
    # disagree: "Joint statement 5 …" and "Joint statement 7 …" over one template text are
    # two statements.
    mine_numbers, their_numbers = _numbers(item.key), _numbers(candidate.title_key)
    numbers_disagree = bool(mine_numbers) and bool(their_numbers) and mine_numbers != their_numbers
    if (
        not numbers_disagree
        and min(words, other_words) >= MIN_BODY_WORDS
        and similarity >= MIN_BODY_SIMILARITY
    ):
        return "same text"
    return None


def _numbers(key: str) -> frozenset[str]:
    """The numbers a title key holds (amounts are already written one way by title_key)."""
    return frozenset(word for word in key.split() if word[:1].isdigit())


def _places_differ(a: frozenset[str], b: frozenset[str]) -> bool:
    return bool(a) and bool(b) and not (a & b)


def match_story(
    *,
    url: str | None,
    title: str,
    published: datetime,
    text: str,
    candidates: Sequence[StoryCandidate],
    member_id: str | None = None,
) -> int | None:
    """The story an item belongs to among the candidates, or None for a new story.

    An article-link match wins over the other rules; among the others the closest in time
    wins. Given the item's `member_id`, that member's other items are not candidates: a
    member's two posts are two stories (the same post re-polled is found by its key).
    """
    found = find_match(
        url=url,
        title=title,
        published=published,
        text=text,
        candidates=candidates,
        member_id=member_id,
    )
    return None if found is None else found.story_id


def find_match(
    *,
    url: str | None,
    title: str,
    published: datetime,
    text: str,
    candidates: Sequence[StoryCandidate],
    member_id: str | None = None,
    features: TextFeatures | None = None,
) -> Match | None:
    """match_story with its reason: the rule and the evidence (shared link, the title keys
    after which normalizations, shared title words, text similarity, days apart).
    `features`, when the caller has them, are text_features(text, title)."""
    if features is None:
        features = text_features(text, title)
    item = _Item(url=url, title=title, key=title_key(title), published=published, features=features)
    reasons = [
        (candidate, _why(item, candidate))
        for candidate in candidates
        if member_id is None or candidate.member_id != member_id
    ]
    matches = [(candidate, why) for candidate, why in reasons if why is not None]
    if not matches:
        return None
    # A shared article link first, then the nearest in time: the order the choice uses,
    # and the one each other story's own best candidate is picked by.
    ranked = sorted(
        matches, key=lambda pair: (pair[1] != "link", abs(pair[0].published - published))
    )
    chosen, rule = ranked[0]
    best: dict[int, tuple[StoryCandidate, str]] = {}
    for candidate, why in ranked:
        best.setdefault(candidate.story_id, (candidate, why))
    others = tuple(
        Match(story_id=story_id, rule=why, evidence=_evidence(item, candidate, why))
        for story_id, (candidate, why) in best.items()
        if story_id != chosen.story_id
    )
    return Match(
        story_id=chosen.story_id,
        rule=rule,
        evidence=_evidence(item, chosen, rule),
        others=others,
    )


def _evidence(item: _Item, candidate: StoryCandidate, rule: str) -> dict[str, object]:
    shared = distinctive_tokens(item.key) & distinctive_tokens(candidate.title_key)
    evidence: dict[str, object] = {
        "rule": rule,
        "matched_item": candidate.item_id,
        "matched_member": candidate.member_id,
        "title_key": item.key,
        "matched_title_key": candidate.title_key,
        "normalizations": list(TITLE_NORMALIZATIONS),
        "shared_title_words": sorted(shared),
        "text_similarity": round(
            _similarity(item.features.shingles, candidate.features.shingles), 3
        ),
        "days_apart": round(abs(item.published - candidate.published).total_seconds() / 86400, 1),
    }
    if rule == "link":
        evidence["shared_link"] = item.url
    return evidence


def evidence_in_words(evidence: Mapping[str, object]) -> str:
    """A merge's rule and key evidence in one line staff can read (/status lists them)."""
    rule = str(evidence.get("rule", "unknown rule"))
    bridge = evidence.get("bridge")
    if isinstance(bridge, Mapping):
        return (
            f"{rule}: {evidence.get('bridging_member')}'s {evidence.get('bridging_url')} "
            f"matched both stories in one round of polls ({evidence_in_words(bridge)})"
        )
    if "shared_link" in evidence:
        return f"{rule}: both link to {evidence['shared_link']}"
    if "merge_with" in evidence:
        reason = f" ({evidence['reason']})" if evidence.get("reason") else ""
        return f"{rule}: staff listed it with {evidence['merge_with']}{reason}"
    words = evidence.get("shared_title_words")
    shared = ", ".join(map(str, words)) if isinstance(words, list) and words else "none"
    return (
        f"{rule}: titles {evidence.get('title_key')!r} and {evidence.get('matched_title_key')!r}"
        f"; shared title words: {shared}; text similarity {evidence.get('text_similarity')}"
        f"; {evidence.get('days_apart')} days apart"
    )
