"""Small pure text helpers shared by every stage: accent folding, slugs, short ids and
the plain text of an HTML fragment.

One slug for the whole project: member ids suggested by `check`, `preview --yaml` and
`import-opml`, and the tag slugs the store keeps and publishes (/tags/<slug>/feed.atom)
all come from `slugify`, so "Migración Unida" is "migracion-unida" everywhere.

How accents are folded: the text is casefolded and decomposed (Unicode NFKD) and the
combining marks are dropped, so "á" is "a", "ñ" is "n", "ß" is "ss" and the ligature "ﬁ" is
"fi". What is then not an ASCII letter or digit (spaces, punctuation, "_", and letters of
scripts with no Latin decomposition) separates words; words are joined by one "-". ASCII
text therefore keeps the slug it always had ("Fair Food" and "fair_food" are "fair-food").

`terminal_safe` is the one rule for text shown on a terminal or written to a log: what a
member's site wrote (an address, a title, an error it provoked) may carry escape sequences.

Pure: no I/O. It must never return anything but lowercase ASCII letters, digits and single
inner hyphens (or ""), and never cut a word in half unless a single word is too long.

nh3 (html_to_text's HTML parser) is imported when html_to_text first runs, not with this
module: aggregator.config and so every command import this module, and the polling process
of `aggregator fetch` must not load the parse stack before it parses (tests/cli/
test_polling_imports.py).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from html import unescape as _unescape
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


# Every control character (Unicode category Cc: C0, DEL and C1) but line feed and tab. ESC
# starts the sequences that retitle the window, clear the screen or write the clipboard
# (OSC 52); CSI (U+009B) and OSC (U+009D) start them alone on some terminals.
_CONTROL_CODES = frozenset((*range(0x00, 0x20), *range(0x7F, 0xA0)))
_CONTROL = {code: None for code in _CONTROL_CODES if code not in (0x09, 0x0A)}


def has_control_character(text: str) -> bool:
    """Whether `text` holds any control character (NUL, ESC, tab, line feed, C1 …)."""
    return any(ord(char) in _CONTROL_CODES for char in text)


def terminal_safe(text: str) -> str:
    """`text` without control characters (line feeds and tabs kept), to print or log.

    A hostile address such as "https://x.example/\x1b]0;pwned\x07" must not retitle the
    staff member's terminal, clear it, or set their clipboard when `fetch` prints it.
    """
    return text.translate(_CONTROL)


class TerminalSafeFormatter(logging.Formatter):
    """A log formatter whose lines (tracebacks included) pass through terminal_safe."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


# --- HTML to plain text ------------------------------------------------------------------
# Here, below every stage, because the store (cross-post matching), publish (summaries)
# and ingest (titles, filters, language) all need the same plain text of a fragment.

# The tags ingest's sanitizer keeps (normalize.sanitize_html); html_to_text keeps the
# block-level ones for a moment so that their ends separate words.
ALLOWED_TAGS = frozenset(
    {
        "p", "br", "a", "strong", "em", "b", "i", "u", "blockquote", "q", "cite",
        "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "code",
        "figure", "figcaption", "img", "table", "thead", "tbody", "tr", "th", "td",
        "hr", "sub", "sup", "abbr", "span", "div", "dl", "dt", "dd",
    }
)  # fmt: skip

# Removed together with everything inside: their content is code, controls or a fallback
# that would read as garbage once the element around it is gone (noscript is parsed as
# raw text, so its <img> would otherwise show up as literal markup).
REMOVED_WITH_CONTENT = frozenset(
    {
        "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet",
        "form", "svg", "math", "template", "noscript", "noembed", "noframes",
        "textarea", "select", "button", "title",
    }
)  # fmt: skip

# Characters XML 1.0 cannot carry (the published Atom/RSS would be rejected) and C1
# controls, which in feeds are only ever mis-decoded bytes.
INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")
_TAG = re.compile(r"<[^>]*>")
_INLINE_TAGS = frozenset({"a", "strong", "em", "b", "i", "u", "q", "cite", "code", "sub", "sup"})
_TEXT_BREAKS = ALLOWED_TAGS - _INLINE_TAGS - {"abbr", "span"}


def html_to_text(html: str) -> str:
    """The text of an HTML fragment on one line: tags gone, entities decoded, spaces collapsed."""
    # Deferred (see the module's docstring): only a process that reads HTML loads nh3.
    import nh3

    # nh3 first, so that the text is what a browser would show (HTML5 parsing, script and
    # friends gone with their content); the reader then only sees well-formed markup.
    well_formed = nh3.clean(
        INVALID_CHARS.sub("", html),
        tags=_TEXT_BREAKS,
        clean_content_tags=REMOVED_WITH_CONTENT,
        attributes={},
        strip_comments=True,
        link_rel=None,
    )
    # nh3 left only attribute-free tags and escaped every "<" of the text, so each "<…>" is
    # a tag: a space for it, then entities decoded, reads it as html.parser did (same text
    # on the fixtures, feedparser's test corpus and 30,000 random fragments), in half the time.
    return clean_line(_unescape(_TAG.sub(" ", well_formed)))


ELLIPSIS = "…"


def excerpt(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters at most, cut at the last space that fits
    (inside a word only when one word would leave less than half), then an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit + 1)
    if cut < limit // 2:  # one enormous word: cut inside it rather than lose most text
        cut = limit
    return text[:cut].rstrip(" ,;:.-–—") + ELLIPSIS


def clean_line(text: str) -> str:
    """Plain text on one line: control characters dropped, whitespace runs made one space."""
    return " ".join(INVALID_CHARS.sub(_space_or_nothing, text).split())


def _space_or_nothing(match: re.Match[str]) -> str:
    # Vertical tab, form feed, NEL and the information separators still separate words.
    return " " if match.group().isspace() else ""
