"""Which image stands for a story: tracking pixels and decorative images told apart from
illustrations, and the one thumbnail chosen among everything a source offers.

An item's thumbnail may come from the feed's media:content and media:thumbnail, an image
enclosure, the <img> elements of its content (with their srcset) or, for `follow: true`
page sources, the story page's Open Graph image. `choose_thumbnail` is the one place that
ranks them: the largest reasonable image by its declared width and height, never a tracking
pixel, an avatar, a share-button icon or an emoji.

Pure: no I/O. It must never fetch an image to measure it (only declared sizes count), and
never return anything but an absolute http(s) URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import urlsplit

from aggregator.models import ImageCandidate
from aggregator.urls import absolute_url
from aggregator.urls import canonical_url
from aggregator.urls import is_http_url

# Hosts that serve nothing but tracking images and share buttons (suffix match).
PIXEL_HOSTS = frozenset(
    {
        "pixel.wp.com",
        "stats.wordpress.com",
        "feeds.feedburner.com",
        "feedsportal.com",
        "api.flattr.com",
        "pixel.quantserve.com",
        "scorecardresearch.com",
        "google-analytics.com",
        "doubleclick.net",
        "pixel.mathtag.com",
        "pixel.facebook.com",
    }
)
_PIXEL_FILE = re.compile(
    r"/(?:pixel|1x1|spacer|blank|transparent|beacon|tracking|open)\.(?:gif|png)$", re.IGNORECASE
)
# Images that decorate the page rather than illustrate the story.
_DECORATIVE_HOSTS = ("gravatar.com", "s.w.org", "wp.com/i/emoji", "feedburner.com")
_DECORATIVE_PATH = re.compile(
    r"avatar|emoji|smiley|share[_-]?(?:button|icon)|social[_-]?icon|/icons?/|"
    r"(?:facebook|twitter|linkedin|whatsapp|email|print)[_-]?(?:icon|button|share)",
    re.IGNORECASE,
)

# A thumbnail smaller than this on either side is an icon, a button or an avatar.
MIN_SIDE = 100
# Longer than this many times its other side: a banner, a divider or a button strip.
MAX_ASPECT = 4
# The size assumed for an image that declares none: a typical feed thumbnail, so that a
# declared large image outranks it and a declared small one does not.
UNDECLARED_AREA = 480 * 270
# The content's images are read up to here (normalize refuses to parse more anyway).
MAX_SCAN_LENGTH = 2_000_000
_LEADING_NUMBER = re.compile(r"\s*(\d+)")


def is_tracking_pixel(url: str) -> bool:
    """Whether an image address is a tracker's (by host, or a pixel/spacer file name)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return True
    host = (parts.hostname or "").lower()
    if any(host == pixel or host.endswith("." + pixel) for pixel in PIXEL_HOSTS):
        return True
    if host.endswith("facebook.com") and parts.path == "/tr":
        return True
    return bool(_PIXEL_FILE.search(parts.path))


def is_decorative_image(url: str) -> bool:
    """Whether an image address is an avatar, emoji or share icon (never a thumbnail)."""
    parts = urlsplit(url)
    address = f"{parts.hostname or ''}{parts.path}".lower()
    return any(host in address for host in _DECORATIVE_HOSTS) or bool(
        _DECORATIVE_PATH.search(parts.path)
    )


def pixels(value: str | None) -> int | None:
    """A declared size ("900", "900px") as a number of pixels; None when there is none."""
    match = _LEADING_NUMBER.match(value or "")
    return int(match.group(1)) if match else None


def srcset_widths(srcset: str) -> list[tuple[str, int | None]]:
    """Each address of a srcset with its width descriptor ("800w"); None for "2x" or none."""
    found: list[tuple[str, int | None]] = []
    for candidate in srcset.split(","):
        parts = candidate.split()
        if not parts:
            continue
        descriptor = parts[1].lower() if len(parts) > 1 else ""
        digits = descriptor.removesuffix("w")
        width = int(digits) if descriptor.endswith("w") and digits.isdigit() else None
        found.append((parts[0], width))
    return found


def content_images(content_html: str) -> list[ImageCandidate]:
    """The <img> elements of an entry's content, each src and srcset entry with its size.

    A srcset entry's height is scaled from the element's declared proportions, so a
    "1024w" variant of a 300×200 image counts as 1024×683.
    """
    reader = _ImageReader()
    reader.feed(content_html[:MAX_SCAN_LENGTH])
    reader.close()
    return reader.found


def choose_thumbnail(candidates: Iterable[ImageCandidate], base_url: str | None) -> str | None:
    """The largest reasonable image among `candidates`, as a canonical absolute URL.

    Refused: anything that is not http(s) once resolved against `base_url` (data: URLs,
    placeholders), tracking pixels, avatars, emoji and share icons, images that declare a
    side under MIN_SIDE or a shape longer than MAX_ASPECT to one. The rest are ranked by
    declared area (UNDECLARED_AREA when none is declared); on a tie the earlier wins, so the
    order of `candidates` is the order of preference.
    """
    best: str | None = None
    best_area = -1
    for candidate in candidates:
        area = _area(candidate)
        if area is None or area <= best_area:
            continue
        url = _usable_url(candidate.url, base_url)
        if url is not None:
            best, best_area = url, area
    return best


def _usable_url(url: str, base_url: str | None) -> str | None:
    resolved = absolute_url(url, base_url)
    if (
        resolved is None
        or not is_http_url(resolved)
        or is_tracking_pixel(resolved)
        or is_decorative_image(resolved)
    ):
        return None
    return canonical_url(resolved)


def _area(candidate: ImageCandidate) -> int | None:
    """The declared area (a missing side assumed 3:2), or None for an unreasonable size."""
    width, height = candidate.width, candidate.height
    if width is None and height is None:
        return UNDECLARED_AREA
    if width is None:
        width = (height or 0) * 3 // 2
    if height is None:
        height = width * 2 // 3
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_ASPECT * min(width, height):
        return None
    return width * height


class _ImageReader(HTMLParser):
    """Collects <img> candidates; the standard library's parser, so it never builds a tree."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[ImageCandidate] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "img":
            return
        values = {name: value or "" for name, value in attrs}
        width, height = pixels(values.get("width")), pixels(values.get("height"))
        src = values.get("src", "").strip()
        if src:
            self.found.append(ImageCandidate(src, width, height))
        self.found.extend(self._from_srcset(values.get("srcset", ""), width, height))

    def _from_srcset(
        self, srcset: str, width: int | None, height: int | None
    ) -> Iterator[ImageCandidate]:
        for url, variant_width in srcset_widths(srcset):
            if variant_width is None:
                continue
            variant_height = (
                variant_width * height // width if width and height is not None else None
            )
            yield ImageCandidate(url, variant_width, variant_height)
