"""The /embed.js script that a host page includes to show the network's latest items.

A host page (the network's CMS, a member's site) adds two lines:

    <div data-wsr-news data-limit="5" data-member="ciw" data-tag="farmworkers" data-lang="es"></div>
    <script src="https://news.example.org/embed.js" async></script>

The script itself is the static file publish/static/embed.js; this module fills in its two
placeholders: where the items come from and where the news page is. Where the script gets
its data, in order:

1. a `data-source="URL"` attribute on the div: any JSON with the /api/items shape;
2. `api_url` given here when it ends in ".json" (the static export, `api/items.json`): read
   as is, or `members/{id}/items.json` beside it for `data-member`; limit, member, tag (as
   a slug: "Fair Food" is "fair-food") and language are then applied in the browser, as
   they are for `data-source`;
3. otherwise `api_url` is the live endpoint (/api/items), which gets
   `?limit=&member=&tag=&lang=` and does the filtering itself.

Relative URLs (e.g. "api/items.json" in the static export) are resolved against the
script's own address, so an exported directory works wherever it is hosted.

Pure: reads only the packaged script template (cached); never reads the clock, the network
or the database. Values are JSON-encoded into the script, never pasted in raw.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

from aggregator.errors import PublishError

EMBED_TEMPLATE = "embed.js"
EMBED_SCRIPT_PATH = "embed.js"  # where the script is published, relative to the feed base
API_URL_PLACEHOLDER = '"__WSR_API_URL__"'
FEED_PAGE_URL_PLACEHOLDER = '"__WSR_FEED_PAGE_URL__"'

_PLACEHOLDERS = re.compile(
    "|".join(re.escape(p) for p in (API_URL_PLACEHOLDER, FEED_PAGE_URL_PLACEHOLDER))
)


def embed_script(api_url: str, feed_page_url: str) -> str:
    """The text of /embed.js, reading items from `api_url` and falling back to a link to
    `feed_page_url`. Either may be relative to where the script itself is served."""
    values = {
        API_URL_PLACEHOLDER: _js_string(api_url),
        FEED_PAGE_URL_PLACEHOLDER: _js_string(feed_page_url),
    }
    # One pass, so a value that happens to contain the other placeholder stays as it is.
    return _PLACEHOLDERS.sub(lambda match: values[match.group(0)], _compact(embed_template()))


@cache
def embed_template() -> str:
    """The packaged embed.js with its placeholders still in it."""
    try:
        template = resources.files("aggregator.publish").joinpath("static").joinpath(EMBED_TEMPLATE)
        text = template.read_text(encoding="utf-8")
    except OSError as exc:
        raise PublishError(f"the packaged embed script is missing: {exc}") from exc
    for placeholder in (API_URL_PLACEHOLDER, FEED_PAGE_URL_PLACEHOLDER):
        if text.count(placeholder) != 1:
            raise PublishError(f"the packaged embed script must hold {placeholder} exactly once")
    return text


def _compact(source: str) -> str:
    # Every page view of a host site downloads this: indentation and the line comments are
    # a fifth of it. Safe for embed.js as written: no line comment shares a line with code
    # and no string spans lines except the CSS, where leading blanks mean nothing.
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


def _js_string(value: str) -> str:
    # JSON is a JavaScript string literal; ASCII-only output also escapes U+2028/U+2029,
    # which ES2017 does not allow raw in strings, and escaping "<" keeps "</script>" inert
    # should someone inline the script in a page.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")
