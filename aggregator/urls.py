"""URL rules: resolving relative links, and the one canonical form used for identity.

Every stage that needs to resolve, compare or clean a URL calls this module, so that an
item link, a content link and a dedupe key all agree on what "the same URL" means.

It must never fetch anything, and never rewrite a URL into a different resource: it keeps
"www.", trailing slashes, path case and meaningful query parameters exactly as given.
"""

from __future__ import annotations

import re
from encodings import idna
from urllib.parse import unquote_plus
from urllib.parse import urljoin
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

HTTP_SCHEMES = frozenset({"http", "https"})

DEFAULT_PORTS = {"http": 80, "https": 443}

# Query parameters that only say where a click came from. Compared lowercased, after
# percent-decoding the name. Deliberately absent: "ref", "source", "id", "si", which are
# the actual resource on some sites.
TRACKING_PARAMETERS = frozenset(
    {
        # Google, Microsoft, Yandex ad click ids
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "_ga",
        "_gl",
        "msclkid",
        "yclid",
        "_openstat",
        # social networks
        "fbclid",
        "fb_action_ids",
        "fb_action_types",
        "fb_ref",
        "fb_source",
        "igshid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "ref_src",
        "ref_url",
        # mail and marketing platforms
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "__hstc",
        "__hssc",
        "__hsfp",
        "hsctatracking",
        "mkt_tok",
        "_ke",
        "__s",
        "vero_conv",
        "vero_id",
        "wickedid",
        "oly_anon_id",
        "oly_enc_id",
        "rb_clickid",
        "s_cid",
        "srsltid",
        # Matomo / Piwik campaign parameters that do not share a prefix
        "pk_campaign",
        "pk_kwd",
        "pk_keyword",
        "pk_source",
        "pk_medium",
        "pk_content",
        "pk_cid",
    }
)

TRACKING_PARAMETER_PREFIXES = ("utm_", "mtm_")

# RFC 3986 characters allowed unencoded in a path, query or fragment, plus "%" so that
# existing escapes are never escaped twice (which keeps canonical_url idempotent).
_SAFE_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/?%"
)
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# The WHATWG URL parser drops these anywhere in a URL; browsers would follow "java\tscript:".
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_HOST_LABEL = re.compile(r"[a-z0-9_-]*")


def is_http_url(url: str | None) -> bool:
    """True for an absolute http(s) URL with a host (False for None or "")."""
    if not url:
        return False
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in HTTP_SCHEMES and bool(parts.netloc)


def absolute_url(url: str | None, base: str | None) -> str | None:
    """Resolve `url` against `base`; None unless the result is an absolute http(s) URL.

    None also for empty input and for a relative URL with no base to resolve it against:
    javascript:, data: and mailto: addresses are never item links.
    """
    if url is None:
        return None
    cleaned = _TAB_OR_NEWLINE.sub("", url).strip()
    if not cleaned:
        return None
    if base:
        try:
            cleaned = urljoin(_TAB_OR_NEWLINE.sub("", base).strip(), cleaned)
        except ValueError:
            return None
    return cleaned if is_http_url(cleaned) else None


def canonical_url(url: str) -> str:
    """The form of an http(s) URL used for identity and republishing.

    Lowercases scheme and host, converts the host to IDNA, drops default ports, the
    fragment (unless it is a "#!" route) and tracking parameters, normalises percent
    escapes, and makes an empty path "/". Idempotent. Anything that is not an absolute
    http(s) URL comes back only stripped of surrounding whitespace.
    """
    stripped = url.strip()
    try:
        parts = urlsplit(stripped)
    except ValueError:
        return stripped
    scheme = parts.scheme.lower()
    if scheme not in HTTP_SCHEMES or not parts.netloc:
        return stripped

    netloc = _canonical_netloc(parts.netloc, scheme)
    path = _normalize_escapes(parts.path) or "/"
    query = _canonical_query(parts.query)
    result = f"{scheme}://{netloc}{path}"
    if query:
        result += "?" + query
    # "#!" fragments are routes of old single-page sites: the fragment is the resource.
    if parts.fragment.startswith("!"):
        result += "#" + _normalize_escapes(parts.fragment)
    return result


def slash_variants(url: str) -> tuple[str, str]:
    """The canonical `url`, then the same with its path's trailing slash added or removed.

    For looking up an address a person typed ("…/story" or "…/story/"), never for storing
    one: the two may be different pages, so a caller tries them in this order.
    """
    canonical = canonical_url(url)
    parts = urlsplit(canonical)
    if parts.scheme not in HTTP_SCHEMES or parts.path == "/":
        return canonical, canonical
    path = parts.path[:-1] if parts.path.endswith("/") else parts.path + "/"
    other = parts._replace(path=path).geturl()
    return canonical, other


def _canonical_netloc(netloc: str, scheme: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        close = hostport.find("]")
        host, port_part = hostport[: close + 1], hostport[close + 1 :]
        host = host.lower()
        port = port_part[1:] if port_part.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
        host = _idna_host(host.lower())
    if port.isascii() and port.isdigit():
        port = "" if int(port) == DEFAULT_PORTS[scheme] else str(int(port))
    return f"{userinfo}{at}{host}{':' + port if port else ''}"


def _idna_host(host: str) -> str:
    if host.isascii():
        return host
    labels = []
    for label in host.split("."):
        if label.isascii():
            labels.append(label)
            continue
        try:
            encoded = idna.ToASCII(label).decode("ascii").lower()
        except UnicodeError:
            encoded = label
        # Name preparation maps e.g. a fullwidth colon to ":"; such a label would move the
        # port boundary on the next pass, so it is kept as written instead.
        labels.append(encoded if _HOST_LABEL.fullmatch(encoded) else label)
    return ".".join(labels)


def _canonical_query(query: str) -> str:
    kept = []
    for parameter in query.split("&"):
        if not parameter:
            continue
        name = unquote_plus(parameter.partition("=")[0]).strip().lower()
        if name in TRACKING_PARAMETERS or name.startswith(TRACKING_PARAMETER_PREFIXES):
            continue
        kept.append(_normalize_escapes(parameter))
    return "&".join(kept)


def _normalize_escapes(component: str) -> str:
    """Escape what must be escaped; uppercase escapes; decode escaped unreserved characters."""
    escaped = "".join(char if char in _SAFE_CHARS else _percent_encode(char) for char in component)
    return _ESCAPE.sub(_normalize_escape, escaped)


def _percent_encode(char: str) -> str:
    # surrogatepass: a lone surrogate still gets a stable escape rather than an exception.
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def _normalize_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def address_key(url: str) -> str:
    """What makes two source addresses the same for duplicate detection: http/https,
    host case, a default port and a trailing slash do not matter."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and port not in (80, 443):
        host = f"{host}:{port}"
    return urlunsplit(("", host, parts.path.rstrip("/"), parts.query, ""))
