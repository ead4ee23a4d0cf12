"""Site debris cleaning: what WordPress, page builders and their plugins leave in feeds.

Small organizations' sites run on WordPress or a hosted builder, and their feeds carry the
tools' leftovers: raw shortcodes (`[caption …]`, `[embed]`, Divi `[et_pb_…]`, WPBakery
`[vc_…]`), plugin footers (Yoast's "The post … appeared first on …", Jetpack's "Share
this:" and "Related" blocks, copyright lines), teaser tails (`[…]`, "Continue reading →",
"Leer más"), lazy-loaded images whose `src` is a placeholder, WordPress emoji images and
double-escaped titles. `clean_entry` turns a ParsedEntry into the one a reader should have
seen; the normalize stage calls it once per entry, *before* sanitizing, because the
sanitizer removes exactly what the repairs read (data-src attributes, classes, <noscript>).

Parsing a body is the expensive part of the normalize stage: a body is parsed only when a
cheap check says one of the repairs could change it, and must otherwise be returned as it
came, never parsed and written back.

Pure: no I/O. It must never touch text that is not recognisable tool syntax: square
brackets in prose ("[sic]", "[1]", "[Statement]") stay, and a title about "&lt;b&gt;" stays
literal. It must never make markup unsafe either: its output still goes through the
sanitizer.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from dataclasses import replace

from bs4 import BeautifulSoup
from bs4 import Tag
from bs4.dammit import EntitySubstitution
from bs4.element import NavigableString
from bs4.formatter import HTMLFormatter

from aggregator.ingest.images import srcset_widths
from aggregator.models import ParsedEntry

ELLIPSIS = "…"
# The DOM repairs parse the HTML in pure Python; past this size a body is left as it is
# (the sanitizer still makes it safe) so that one huge entry cannot stall a poll.
MAX_REPAIR_LENGTH = 300_000

# --- shortcodes ------------------------------------------------------------------------

# Only these names are shortcodes; anything else in brackets is prose. WordPress
# shortcode names are lowercase as registered.
_BUILDER = r"et_pb_[a-z0-9_]+|vc_[a-z0-9_]+|fusion_[a-z0-9_]+"
_MEDIA = r"video|audio|playlist|gallery|contact-form-7|contact-form"
_ATTRS = r"""(?:\s+[a-z0-9_-]+(?:=(?:"[^"\[\]]*"|'[^'\[\]]*'|[^\s"'\[\]]+))?)"""
# The paragraph WordPress's editor wraps around a caption goes with it: a <figure> cannot
# sit inside a <p>, and the sanitizer would leave two empty paragraphs.
_CAPTION = re.compile(
    rf"(<p>\s*)?\[(?:caption|wp_caption)({_ATTRS}*)\s*\](.*?)\[/(?:caption|wp_caption)\]"
    r"(?(1)\s*</p>)",
    re.DOTALL,
)
_EMBED = re.compile(rf"\[embed{_ATTRS}*\s*\]\s*(.*?)\s*\[/embed\]", re.DOTALL)
# A media shortcode is only recognised with attributes or with its closing tag: a bare
# "[video]" at the start of a title is a label, not a shortcode.
_MEDIA_PAIRED = re.compile(rf"\[({_MEDIA})({_ATTRS}*)\s*/?\](.*?)\[/\1\]", re.DOTALL)
_MEDIA_SINGLE = re.compile(rf"\[({_MEDIA})({_ATTRS}+)\s*/?\]")
_BUILDER_TAG = re.compile(rf"\[(/?)({_BUILDER})({_ATTRS}*)\s*/?\]")
_ATTRIBUTE = re.compile(r"""([a-z0-9_-]+)=(?:"([^"]*)"|'([^']*)'|([^\s"'\]]+))""")
_LEADING_MEDIA = re.compile(
    r"^\s*((?:<a\b[^>]*>\s*)?<img\b[^>]*>(?:\s*</a>)?)(.*)$", re.DOTALL | re.IGNORECASE
)
_MEDIA_FILE_ATTRIBUTES = ("src", "mp4", "m4v", "webm", "ogv", "mp3", "m4a", "ogg", "wav")


def strip_shortcodes(text: str, *, as_html: bool) -> str:
    """`text` with recognised WordPress shortcodes turned into HTML (or plain text).

    With `as_html`, a caption becomes a <figure> with its image and <figcaption>, embeds and
    audio/video become links; without (titles, plain-text summaries), a caption leaves its
    text, embeds and media leave nothing. Page-builder tags leave their content and media.
    Text outside recognised shortcode syntax is returned unchanged, character for character.
    """
    if "[" not in text:
        return text
    text = _CAPTION.sub(lambda match: _caption(match, as_html), text)
    text = _EMBED.sub(lambda match: _link(match.group(1).strip(), as_html), text)
    text = _MEDIA_PAIRED.sub(lambda match: _media(match.group(2), as_html), text)
    text = _MEDIA_SINGLE.sub(lambda match: _media(match.group(2), as_html), text)
    return _BUILDER_TAG.sub(lambda match: _builder(match, as_html), text)


def _caption(match: re.Match[str], as_html: bool) -> str:
    attributes = _attributes(match.group(2))
    inner = match.group(3)
    found = _LEADING_MEDIA.match(inner)
    media, caption = (found.group(1), found.group(2)) if found else ("", inner)
    caption = caption.strip() or attributes.get("caption", "")
    if not as_html:
        return f"{caption} " if caption else " "
    figcaption = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f"<figure>{media}{figcaption}</figure>"


def _media(attribute_text: str, as_html: bool) -> str:
    attributes = _attributes(attribute_text)
    for name in _MEDIA_FILE_ATTRIBUTES:
        if attributes.get(name):
            return _link(attributes[name], as_html)
    return " "  # gallery, contact form, playlist: nothing a feed reader could show


def _builder(match: re.Match[str], as_html: bool) -> str:
    closing, name, attribute_text = match.groups()
    if closing or not as_html:
        return " "
    attributes = _attributes(attribute_text)
    if name == "et_pb_image" and attributes.get("src"):
        alt = html.escape(attributes.get("alt", ""))
        return f'<img src="{html.escape(attributes["src"])}" alt="{alt}">'
    if name in ("et_pb_video", "et_pb_audio") and attributes.get("src"):
        return _link(attributes["src"], as_html)
    if name == "et_pb_button" and attributes.get("button_url"):
        text = attributes.get("button_text") or attributes["button_url"]
        return f'<p><a href="{html.escape(attributes["button_url"])}">{html.escape(text)}</a></p>'
    return " "


def _link(url: str, as_html: bool) -> str:
    if not as_html or not url.startswith(("http://", "https://", "/")):
        return " "
    return f'<p><a href="{html.escape(url)}">{html.escape(url)}</a></p>'


def _attributes(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, double, single, bare in _ATTRIBUTE.findall(text):
        # WordPress stores attribute values with entities ("&#8221;" for a typed quote).
        found[name] = html.unescape(double or single or bare).strip("“”″")
    return found


# --- titles ----------------------------------------------------------------------------

_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ESCAPED_ENTITY = re.compile(r"&amp;(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# Markup characters: a title that shows "&lt;b&gt;" is about markup and must stay literal.
_MARKUP = frozenset("<>")
# Windows-1252 smart quotes and dashes read as Latin-1 arrive as C1 controls, which the
# normalize stage would drop ("Its" for "It’s"); these are what the writer typed.
_CP1252_PUNCTUATION = str.maketrans(
    {"\x91": "‘", "\x92": "’", "\x93": "“", "\x94": "”", "\x85": "…", "\x96": "–", "\x97": "—"}
)


def clean_title(title: str, *, is_html: bool) -> str:
    """The title with double escaping undone once, smart quotes mended, shortcodes gone.

    An entity left in the text after the feed's own decoding (`&#8217;`, `&amp;`) is
    decoded once more when that gives a real character other than "<" or ">"; in an HTML
    title the same applies one level down (`&amp;#8217;`).
    """
    title = title.translate(_CP1252_PUNCTUATION).replace("\xa0", " ")
    pattern = _ESCAPED_ENTITY if is_html else _ENTITY

    def decode(match: re.Match[str]) -> str:
        entity = f"&{match.group(1)};"
        character = html.unescape(entity)
        if character == entity or character in _MARKUP or not character.isprintable():
            return match.group(0)
        if is_html:
            # Still HTML: hand the decoder below one clean level of escaping.
            return entity
        return character

    return strip_shortcodes(pattern.sub(decode, title), as_html=is_html)


# --- HTML bodies -----------------------------------------------------------------------

# Cheap markers: a body with none of these is left byte for byte as it is.
_DOM_MARKERS = re.compile(
    r"data-(?:lazy-)?src|data-srcset|data-original|<noscript|wp-smiley|emoji|sharedaddy|"
    r"jp-relatedposts|jp-post-flair|sd-sharing|elementor|appeared first on|"
    r"this entry was posted|share this|like this|copyright|©|&copy;|&#169;|more-link|"
    r"read more|read the rest|continue reading|leer más|leer m&aacute;s|seguir leyendo|"
    r"\[(?:…|&#8230;|&hellip;|\.\.\.)\]",
    re.IGNORECASE,
)
# The markers above match prose too ("read more about", "copyright law", an "emoji" in a
# sentence), and parsing a body costs far more than everything else the normalize stage
# does. So each repair also has its own check, run on the lowercased source, that is true
# whenever the repair could change anything (and may be true when it would not): a body
# none of them flags is returned as it is instead of parsed and re-serialised unchanged.
# bench/debris_equivalence.py checks on the corpora that nothing a reader sees differs.
_IMAGE_MARKERS = ("data-src", "data-lazy-src", "data-srcset", "data-original", "wp-smiley", "emoji")
_FOOTER_CLASS_MARKERS = ("sharedaddy", "sd-sharing", "jp-relatedposts", "jp-post-flair", "sd-like")
# Between two words of a footer's text there can be spaces, entities and inline tags.
_GAP = r"(?:\s|&[#\w]+;|<[^<>]*>)+"
# Each footer text has a word a body must contain (a cheap `in` test) before the pattern
# that allows for spaces, entities and inline tags between its words is worth running.
_FOOTER_TEXTS = (
    ("appeared", re.compile(rf"appeared{_GAP}first")),
    ("posted", re.compile(rf"posted{_GAP}in")),
    ("share", re.compile(rf"share{_GAP}this")),
    ("like", re.compile(rf"like{_GAP}(?:this|loading)")),
    ("related", re.compile(r"(?:^|[>\"'])(?:\s|&[#\w]+;)*related(?:\s|&[#\w]+;)*(?:[<\"']|$)")),
    ("&#", re.compile(r"&#0*169|&#x0*a9")),
)
_FOOTER_SYMBOLS = ("copyright", "©", "&copy", "(c)")
# The words of _FOOTER_TEXT: a block whose text matches has a string with one of them
# (get_text puts a space between strings, so a word cannot span two).
_FOOTER_WORDS = re.compile(r"appeared|posted|share|like|related|©|\(c\)|copyright", re.I)
_TEASER_WORDS = (
    "continue reading", "read more", "read the rest", "keep reading", "leer más",
    "seguir leyendo", "lire la suite",
)
_BRACKETED_DOTS = re.compile(r"\[\s*(?:…|\.\.\.)\s*\]")
_LINK_START = re.compile(r"<a[\s>/]")
_LINK_END = re.compile(r"</a\s*>")
_IMAGE_START = re.compile(r"<img[\s/>]")
# A teaser tail sits in the last few words of the body's last text.
_TAIL_WINDOW = 400
# The same, run on the lowercased body: several times faster than the case-insensitive
# search. Only these letters match an ASCII letter of a marker case-insensitively without
# lowercasing to it; a body with one of them takes the old, slow, exact path.
_DOM_MARKERS_LOWERCASE = re.compile(_DOM_MARKERS.pattern)
_FOLDING_APART = ("ı", "ſ", "İ")
_PHRASE = (
    r"(?:continue reading|read more|read the rest|keep reading|leer más|seguir leyendo|"
    r"lire la suite)"
)
_ARROW = r"(?:>>|»|›|→)"
_DOTS = r"(?:\[\s*(?:…|\.\.\.)\s*\]|…|\.\.\.)"
# A "Read more" link: the phrase with nothing but arrows and dots around it.
_READ_MORE = re.compile(rf"\s*{_DOTS}?\s*{_ARROW}?\s*{_PHRASE}\s*{_ARROW}?\s*{_DOTS}?\s*", re.I)
# Dead teaser text at the end of a body: "[…]", or the phrase after a sentence's end, an
# arrow or dots, or alone ("to read more" inside a sentence is prose and stays).
_TEASER_TAIL = re.compile(
    rf"(?:\s*\[\s*(?:…|\.\.\.)\s*\]|(?:^|[.!?…\]]|{_ARROW})\s*{_ARROW}?\s*{_PHRASE}"
    rf"\s*{_ARROW}?\s*{_DOTS}?)\s*$",
    re.IGNORECASE,
)
_BRACKET_ELLIPSIS = re.compile(r"\s*\[\s*(?:…|\.\.\.)\s*\]\s*$")
_FOOTER_TEXT = re.compile(
    r"^(?:the post .+ appeared first on .+|this entry was posted in .+|"
    r"share this:.*|like this:.*|like loading\W*|related|"
    r"(?:©|\(c\)|copyright)\s*©?\s*(?:\d{4}|all rights).{0,200})$",
    re.IGNORECASE | re.DOTALL,
)
_FOOTER_CLASSES = ("sharedaddy", "sd-sharing", "jp-relatedposts", "jp-post-flair", "sd-like")
_BLOCKS = frozenset({"p", "div", "section", "footer", "aside", "ul", "h3", "h4", "h5", "h6"})
_PLACEHOLDER = re.compile(r"^data:|placeholder|lazy[_-]?load|/blank\.|/1x1\.|spacer\.", re.I)
_EMOJI_SOURCE = "s.w.org/images/core/emoji"


class _SourceOrder(HTMLFormatter):
    """bs4's "minimal" formatter (text escaped), keeping attributes in the source's order."""

    def __init__(self) -> None:
        super().__init__(entity_substitution=EntitySubstitution.substitute_xml)

    def attributes(self, tag: Tag) -> list[tuple[str, str | None]]:
        # bs4 sorts attributes; the sanitizer keeps whatever order it is given, and readers
        # (and tests) expect the order the member's site wrote.
        return [(name, value if isinstance(value, str) else " ".join(value))
                for name, value in tag.attrs.items()]


_FORMATTER = _SourceOrder()


@dataclass(frozen=True)
class CleanedBody:
    html: str
    more_link: str | None = None  # where a removed "Read more" link pointed


def clean_body(raw: str, *, as_html: bool = True) -> CleanedBody:
    """An entry's content or summary HTML without the site tools' debris.

    Shortcodes are converted; lazy images get their real address; emoji images become the
    emoji; plugin footers go; a teaser tail becomes one ellipsis, and a "Read more" link's
    address is returned so that it can serve as the story's link. `as_html=False` is for
    summaries read as text: a caption leaves its text, not a figure.
    """
    text = strip_shortcodes(raw, as_html=as_html)
    if len(text) > MAX_REPAIR_LENGTH:
        return CleanedBody(text)
    if any(letter in text for letter in _FOLDING_APART):
        if not _DOM_MARKERS.search(text):
            return CleanedBody(text)
        return _repaired(text, EVERY_REPAIR)
    lowered = text.lower()
    repairs = _Repairs(
        images=any(marker in lowered for marker in _IMAGE_MARKERS),
        noscript="<noscript" in lowered,
        elementor="elementor" in lowered,
        footer_classes=any(marker in lowered for marker in _FOOTER_CLASS_MARKERS),
        footer_text=any(symbol in lowered for symbol in _FOOTER_SYMBOLS)
        or any(word in lowered and pattern.search(lowered) for word, pattern in _FOOTER_TEXTS),
    )
    if not (repairs.needed() or _tail_flagged(lowered)):
        return CleanedBody(text)  # parsing and writing it back would change nothing
    if not _DOM_MARKERS_LOWERCASE.search(lowered):
        return CleanedBody(text)
    return _repaired(text, repairs)


@dataclass(frozen=True)
class _Repairs:
    """Which of the optional repairs a body may need (the tail repairs always run)."""

    images: bool
    noscript: bool
    elementor: bool
    footer_classes: bool
    footer_text: bool

    def needed(self) -> bool:
        return self.images or self.noscript or self.elementor or self.footer_classes or (
            self.footer_text
        )


EVERY_REPAIR = _Repairs(True, True, True, True, True)


def _repaired(text: str, repairs: _Repairs) -> CleanedBody:
    soup = BeautifulSoup(text, "html.parser")
    if repairs.images:
        for image in soup.find_all("img"):
            _repair_image(image)
    if repairs.noscript:
        for element in soup.find_all("noscript"):
            _unwrap_noscript(element)
    if repairs.elementor:
        for element in soup.find_all(class_=re.compile("^elementor")):
            # Elementor wraps every paragraph in sections, columns and widget containers.
            if element.name in ("div", "section"):
                element.unwrap()
    _remove_footers(soup, by_class=repairs.footer_classes, by_text=repairs.footer_text)
    more_link = _remove_teaser_tail(soup)
    return CleanedBody(soup.decode(formatter=_FORMATTER).strip(), more_link)


def _tail_flagged(lowered: str) -> bool:
    """Whether the end of a body could hold a teaser tail, a "Read more" link or an empty
    block, <br> or <hr> that the soup repairs would drop (lowercased source; may say yes
    when they would not, never no when they would)."""
    end = len(lowered)
    # Skip the closing tags and whitespace that end the body: the last leaf comes before.
    closing = False
    while True:
        while end and lowered[end - 1].isspace():
            end -= 1
        if not lowered.endswith(">", 0, end):
            break
        start = lowered.rfind("<", 0, end)
        if start >= 0 and _IMAGE_START.match(lowered, start):
            # An image is a leaf the repairs keep (a tracking pixel, a last photo), unless
            # it is a "Read more" link's.
            return closing or _open_link(lowered[:start])
        if start < 0 or not lowered.startswith("</", start):
            return True  # an element, comment or void tag ends the body: look closer
        closing = closing or lowered.startswith("</a", start)
        end = start
    if closing:
        return True  # the last text is a link's: a "Read more" link?
    before = lowered[:end]
    text = html.unescape(before[before.rfind(">") + 1 :])
    if not text.strip():
        return True  # an empty block ("<p>&nbsp;</p>") ends the body
    window = html.unescape(before[-_TAIL_WINDOW:])
    if _BRACKETED_DOTS.search(window) or any(word in window for word in _TEASER_WORDS):
        return True
    return _open_link(before)


def _open_link(before: str) -> bool:
    """Whether a link opened in `before` (lowercased source) is still open at its end."""
    start = len(before)
    while (start := before.rfind("<a", 0, start)) >= 0:
        if _LINK_START.match(before, start):
            return _LINK_END.search(before, start) is None
    return False


def clean_entry(entry: ParsedEntry) -> ParsedEntry:
    """The entry as a reader should see it: every text field cleaned of site debris."""
    content = clean_body(entry.content_html) if entry.content_html else None
    summary = clean_body(entry.summary_html, as_html=False) if entry.summary_html else None
    more_link = (content.more_link if content else None) or (
        summary.more_link if summary else None
    )
    return replace(
        entry,
        title=clean_title(entry.title, is_html=entry.title_is_html) if entry.title else None,
        content_html=content.html if content else entry.content_html,
        summary_html=summary.html if summary else entry.summary_html,
        link=entry.link or more_link,
    )


def _attribute(tag: Tag, name: str) -> str:
    value = tag.get(name)
    return value.strip() if isinstance(value, str) else ""


def _classes(tag: Tag) -> list[str]:
    value = tag.get("class")
    return value.split() if isinstance(value, str) else list(value or [])


def _repair_image(image: Tag) -> None:
    classes = _classes(image)
    src = _attribute(image, "src")
    if "wp-smiley" in classes or "emoji" in classes or _EMOJI_SOURCE in src:
        alt = _attribute(image, "alt")
        # An emoji's alt text is the emoji itself; anything longer is not one.
        image.replace_with(alt if 0 < len(alt) <= 8 else "")
        return
    real = _attribute(image, "data-lazy-src") or _attribute(image, "data-src")
    real = real or _attribute(image, "data-original")
    if not real and (not src or _PLACEHOLDER.search(src)):
        srcset = _attribute(image, "data-lazy-srcset") or _attribute(image, "data-srcset")
        real = _largest_in_srcset(srcset)
    if real and not real.startswith("data:"):
        image["src"] = real
        # A placeholder's 1x1 size would make the real image look like a tracking pixel.
        for size in ("width", "height"):
            if _attribute(image, size) in ("1", "1px"):
                del image[size]


def _largest_in_srcset(srcset: str) -> str:
    variants = list(enumerate(srcset_widths(srcset)))
    if not variants:
        return ""
    # The widest variant; without width descriptors ("1x, 2x") the last, by convention the
    # densest.
    _, (url, _) = max(variants, key=lambda pair: (pair[1][1] or 0, pair[0]))
    return url


def _unwrap_noscript(noscript: Tag) -> None:
    fallback = noscript.find("img")
    if not isinstance(fallback, Tag):
        return  # the sanitizer removes noscript with its content
    previous = noscript.find_previous_sibling()
    if isinstance(previous, Tag) and previous.name == "img":
        src = _attribute(previous, "src")
        if src and not _PLACEHOLDER.search(src):
            noscript.decompose()  # the lazy image was repaired: one copy is enough
            return
        previous.decompose()
    noscript.unwrap()


def _remove_footers(soup: BeautifulSoup, *, by_class: bool, by_text: bool) -> None:
    if by_class:
        classes = soup.find_all(class_=lambda value: bool(value) and _is_footer_class(value))
        for element in classes:
            if not element.decomposed:
                element.decompose()
    for element in _footer_candidates(soup) if by_text else ():
        if element.decomposed:
            continue
        text = " ".join(element.get_text(" ").split())
        # Only short blocks: an article that quotes "Share this:" is not a footer.
        if text and len(text) <= 300 and _FOOTER_TEXT.match(text):
            element.decompose()
    _drop_trailing_rules(soup)


def _footer_candidates(soup: BeautifulSoup) -> list[Tag]:
    """The blocks _FOOTER_TEXT could match, in document order: those holding a string
    with one of its words (the text of every other block cannot match)."""
    found: dict[int, Tag] = {}
    for node in soup.descendants:
        if isinstance(node, NavigableString) and _FOOTER_WORDS.search(node):
            for parent in node.parents:
                if parent.name in _BLOCKS:
                    found.setdefault(id(parent), parent)
    blocks = list(found.values())
    if any(block.sourceline is None or block.sourcepos is None for block in blocks):
        return [block for block in soup.find_all(sorted(_BLOCKS)) if id(block) in found]
    # Where the parser met their start tags: the order find_all would give.
    return sorted(blocks, key=lambda block: (block.sourceline or 0, block.sourcepos or 0))


def _is_footer_class(value: str) -> bool:
    return any(name in value for name in _FOOTER_CLASSES)


def _drop_trailing_rules(soup: BeautifulSoup) -> None:
    # A plugin footer usually sits below an <hr>; with the footer gone it would end the post.
    while True:
        last = _last_leaf(soup)
        if isinstance(last, Tag) and last.name in ("hr", "br"):
            last.decompose()
            continue
        return


def _last_leaf(parent: Tag) -> Tag | NavigableString | None:
    """The last text or void element, dropping the empty blocks the removals left."""
    for child in reversed(list(parent.children)):
        if isinstance(child, NavigableString):
            if child.strip():
                return child
            continue
        if not isinstance(child, Tag) or child.name in ("img", "hr", "br"):
            return child if isinstance(child, Tag) else None
        # Whether any string has a visible character: get_text().strip() without joining
        # the text of a whole article to find out.
        if not any(string.strip() for string in child.strings) and child.find("img") is None:
            child.decompose()
            continue
        return _last_leaf(child) or child
    return None


def _remove_teaser_tail(soup: BeautifulSoup) -> str | None:
    last = _last_leaf(soup)
    if last is None:
        return None
    found = last if isinstance(last, Tag) and last.name == "a" else last.find_parent("a")
    if isinstance(found, Tag) and _is_read_more_link(found):
        more_link = _attribute(found, "href") or None
        found.decompose()
        _end_with_ellipsis(soup)
        return more_link
    if isinstance(last, NavigableString) and _TEASER_TAIL.search(str(last)):
        _end_with_ellipsis(soup)
    return None


def _is_read_more_link(link: Tag) -> bool:
    classes = " ".join(_classes(link))
    text = link.get_text(" ")
    reader_only = link.find(class_="screen-reader-text")
    if isinstance(reader_only, Tag):
        # WordPress names the post for screen readers inside the link.
        text = text.replace(reader_only.get_text(" "), " ", 1)
    text = " ".join(text.split())
    return bool(_READ_MORE.fullmatch(text)) or ("more" in classes and len(text) < 60)


def _end_with_ellipsis(soup: BeautifulSoup) -> None:
    last = _last_leaf(soup)
    if isinstance(last, NavigableString):
        text = _BRACKET_ELLIPSIS.sub("", _TEASER_TAIL.sub("", str(last)))
        last.replace_with(text.rstrip(" ,;:.-–—…") + ELLIPSIS)
