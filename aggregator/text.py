"""Small pure text helpers shared by every stage: accent folding, slugs and short ids.

One slug for the whole project: member ids suggested by `check`, `preview --yaml` and
`import-opml`, and the tag slugs the store keeps and publishes (/tags/<slug>/feed.atom)
all come from `slugify`, so "Migración Unida" is "migracion-unida" everywhere.

How accents are folded: the text is casefolded and decomposed (Unicode NFKD) and the
combining marks are dropped, so "á" is "a", "ñ" is "n", "ß" is "ss" and the ligature "ﬁ" is
"fi". What is then not an ASCII letter or digit (spaces, punctuation, "_", and letters of
scripts with no Latin decomposition) separates words; words are joined by one "-". ASCII
text therefore keeps the slug it always had ("Fair Food" and "fair_food" are "fair-food").

Pure: no I/O. It must never return anything but lowercase ASCII letters, digits and single
inner hyphens (or ""), and never cut a word in half unless a single word is too long.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

SLUG_MAX = 40  # member ids and feeds.yaml tags (config.check_base.ID_PATTERN)
SHORT_ID_MAX = 24  # a suggested id longer than this is shortened (short_id)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# Words left out of initials: "Coalition of Immokalee Workers" is "ciw".
_MINOR_WORDS = frozenset(
    {"a", "an", "and", "at", "de", "del", "des", "du", "el", "en", "for", "in", "la", "las"}
    | {"le", "les", "los", "of", "on", "the", "to", "y"}
)
_IP_ADDRESS = re.compile(r"[0-9.]+|\[.*\]")


def fold(text: str) -> str:
    """Text as matching sees it: casefolded, accents gone ("Migración" -> "migracion")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def slugify(text: str, max_length: int = SLUG_MAX) -> str:
    """ "Migración Unida" -> "migracion-unida"; "" when no letter or digit is left.

    Longer than `max_length`: cut at the last whole word that fits (a single longer
    word is cut at `max_length`).
    """
    slug = _NOT_SLUG.sub("-", fold(text)).strip("-")
    if len(slug) <= max_length:
        return slug
    cut = slug[: max_length + 1].rfind("-")
    return slug[:cut] if cut > 0 else slug[:max_length].strip("-")


def short_id(name: str, url: str | None = None) -> str:
    """A member id to suggest: the name's slug, or something shorter when that is long.

    A long name gives way to the first label of the site's domain ("ctul.net" -> "ctul"),
    else to the initials of the name's main words ("Coalition of Immokalee Workers" ->
    "ciw"); "" when the name and the address give no letter or digit.
    """
    slug = slugify(name)
    if len(slug) <= SHORT_ID_MAX:
        return slug
    label = _domain_label(url)
    if 2 <= len(label) <= SHORT_ID_MAX:
        return label
    initials = "".join(word[0] for word in slug.split("-") if word not in _MINOR_WORDS)
    if len(initials) >= 2:
        return initials[:SHORT_ID_MAX]
    return slugify(slug, SHORT_ID_MAX)


def _domain_label(url: str | None) -> str:
    """ "https://www.ctul.net/en/" -> "ctul"; "" for an IP address or no address."""
    if not url:
        return ""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    if not host or _IP_ADDRESS.fullmatch(host) or "." not in host:
        return ""
    return slugify(host.removeprefix("www.").split(".")[0])


TAG_SLUG_MAX = 100  # tags are matched and published by slug, with room for long tags


def tag_slug(tag: str) -> str:
    """A tag as it is matched and published in paths: "Fair Food" and "fair-food" agree.

    The project's one slug rule (slugify: accents folded, "Capacitación" is "capacitacion"),
    with room for longer tags than ids have; safe as a path segment and as a file name.
    """
    return slugify(tag, TAG_SLUG_MAX)
