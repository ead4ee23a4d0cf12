"""The XML entity defence: drop a DOCTYPE that declares entities before any XML parser runs.

Entity declarations are how billion-laughs bombs and XXE get in. This module also tells a
cut-off download from a complete document. It must never resolve an entity, never fetch
anything, and never scan a DOCTYPE in more than linear time.
"""

import re

# Byte signatures of XML in UTF-32/UTF-16 (with and without a BOM), longest first, and the
# codec that reads each back to the same bytes.
_WIDE_SIGNATURES = (
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16"),
    (b"\xff\xfe", "utf-16"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)
_DTD_SPECIAL = re.compile(r"[\"'\[\]>]|<!--")
_ELEMENT_START = re.compile(r"<[A-Za-z_:]")
# A real feed's internal DTD subset has a handful of declarations; past this many tokens
# the rest of the document is taken as DTD (and dropped) rather than scanned further.
_MAX_DTD_TOKENS = 10_000


def without_entity_declarations(content: bytes) -> bytes:
    """The document without its DOCTYPE when that declares entities.

    Entity declarations are how billion-laughs and quadratic-blowup bombs and XXE
    (`<!ENTITY x SYSTEM "file:///etc/passwd">`) get in; feedparser keeps "safe" ones
    and its loose parser expands them without limit (a 50 kB entity used 20,000 times
    took 3 GB). Feeds have no legitimate need for them: the references left behind are
    undefined, so feedparser falls back to its loose parser and reports the feed as broken.
    """
    for signature, codec in _WIDE_SIGNATURES:
        if content.startswith(signature):
            text = content.decode(codec, errors="replace")
            if "<!ENTITY" not in text:
                return content
            return _strip_entity_doctype(text).encode(codec, errors="replace")
    if b"<!ENTITY" not in content:
        return content
    # Latin-1 maps bytes to characters one to one, so positions found in it are byte
    # positions in any ASCII-compatible encoding (UTF-8 included) and nothing is altered.
    return _strip_entity_doctype(content.decode("latin-1")).encode("latin-1")


_DOCUMENT_END = re.compile(rb"</[A-Za-z_][\w:.-]*\s*>\s*$")


def looks_truncated(content: bytes) -> bool:
    """Whether the body stops before its root element's end tag (a cut-off download)."""
    tail = content[-512:]
    if any(content.startswith(signature) for signature, _ in _WIDE_SIGNATURES):
        tail = tail.replace(b"\x00", b"")  # the end tag is ASCII in UTF-16/32 too
    return _DOCUMENT_END.search(tail) is None


def _strip_entity_doctype(text: str) -> str:
    start = text.find("<!DOCTYPE")
    if start == -1 or _ELEMENT_START.search(text, 0, start):
        return text  # no DOCTYPE, or "<!DOCTYPE" is text inside the document
    end = _doctype_end(text, start + len("<!DOCTYPE"))
    if "<!ENTITY" not in text[start:end]:
        return text
    return text[:start] + text[end:]


def _doctype_end(text: str, position: int) -> int:
    """Where the DOCTYPE declaration ends: its closing ">" outside quotes, comments and
    the [internal subset]; the end of the text if it never closes. Linear in the text."""
    depth = 0
    for _ in range(_MAX_DTD_TOKENS):
        match = _DTD_SPECIAL.search(text, position)
        if match is None:
            break
        token = match.group()
        if token in ('"', "'", "<!--"):
            closing = "-->" if token == "<!--" else token
            close = text.find(closing, match.end())
            if close == -1:
                break
            position = close + len(closing)
            continue
        position = match.end()
        if token == "[":
            depth += 1
        elif token == "]":
            depth = max(depth - 1, 0)
        elif depth == 0:
            return position
    return len(text)
