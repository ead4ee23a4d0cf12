"""What a fetched body is, from its first bytes and its Content-Type: HTML, JSON, or a feed.

A body that opens as a feed is one, whatever Content-Type a misconfigured server gave it.
It must never parse a whole document or decide anything but the body's kind.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aggregator.models import FetchResult

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_HTML_START = re.compile(
    rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])",
    re.IGNORECASE | re.DOTALL,
)
UTF8_BOM = b"\xef\xbb\xbf"
# A body that opens as a feed is one, whatever Content-Type a misconfigured server gave it.
_FEED_START = re.compile(
    rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*|<\?[^>]*>\s*|<!DOCTYPE[^>\[]*>\s*)*"
    rb"<(rss|feed|rdf:RDF|RDF)[\s>]",
    re.DOTALL,
)


def split_content_type(content_type: str | None) -> tuple[str, str | None]:
    """`text/xml; charset="ISO-8859-1"` -> ("text/xml", "iso-8859-1"); missing parts empty/None."""
    if not content_type:
        return "", None
    media_type, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'").strip().lower() or None
    return media_type.strip().lower(), charset


def looks_like_html(content: bytes, content_type: str | None) -> bool:
    """Whether a body that is no feed is a web page (by its start or its media type)."""
    start = content[:4096].removeprefix(UTF8_BOM)
    if _HTML_START.match(start):
        return True
    if _FEED_START.match(start) or start.lstrip()[:1] == b"{":
        return False
    media_type, _ = split_content_type(content_type)
    return media_type in HTML_TYPES


def is_json(content: bytes, content_type: str | None) -> bool:
    """JSON Feed is recognised by its media type or by a body that opens an object."""
    start = content[:4096].removeprefix(UTF8_BOM).lstrip()[:1]
    if start == b"{":
        return True
    media_type, _ = split_content_type(content_type)
    # A server that labels everything JSON but sends XML is still sending XML.
    return "json" in media_type and start != b"<"


def is_html_page(result: FetchResult) -> bool:
    """Whether a fetched source body is a web page (so its feed must be discovered)."""
    return result.content is not None and looks_like_html(result.content, result.content_type)
