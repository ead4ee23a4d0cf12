"""Tests for aggregator.urls: resolving, canonicalizing and recognising http(s) URLs."""

from __future__ import annotations

from urllib.parse import unquote_plus
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aggregator.urls import TRACKING_PARAMETERS
from aggregator.urls import absolute_url
from aggregator.urls import canonical_url
from aggregator.urls import is_http_url

BASE = "https://www.example.org/news/2024/feed.xml"


# --- absolute_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("story.html", "https://www.example.org/news/2024/story.html"),
        ("../about/", "https://www.example.org/news/about/"),
        ("/press/", "https://www.example.org/press/"),
        ("//cdn.example.net/a.jpg", "https://cdn.example.net/a.jpg"),
        ("?p=123", "https://www.example.org/news/2024/feed.xml?p=123"),
        ("  https://other.example/x  ", "https://other.example/x"),
        ("http://other.example/x", "http://other.example/x"),
    ],
)
def test_absolute_url_resolves_against_base(url: str, expected: str) -> None:
    assert absolute_url(url, BASE) == expected


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "   ",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "java\tscript:alert(1)",
        " \x01javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "mailto:press@example.org",
        "ftp://files.example.org/a.pdf",
        "http:no-host",
    ],
)
def test_absolute_url_rejects_what_is_not_an_http_link(url: str | None) -> None:
    assert absolute_url(url, BASE) is None


def test_absolute_url_without_base_keeps_absolute_and_drops_relative() -> None:
    assert absolute_url("https://example.org/a", None) == "https://example.org/a"
    assert absolute_url("/a", None) is None
    assert absolute_url("/a", "") is None


# --- is_http_url -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/", True),
        ("HTTP://example.org", True),
        ("https:///path-only", False),
        ("/relative", False),
        ("mailto:a@example.org", False),
        ("javascript:alert(1)", False),
        ("http://[broken", False),
        ("urn:uuid:1234", False),
    ],
)
def test_is_http_url(url: str, expected: bool) -> None:
    assert is_http_url(url) is expected


# --- canonical_url ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # scheme and host case, default ports, empty path
        ("HTTPS://WWW.Example.ORG", "https://www.example.org/"),
        ("http://example.org:80/a", "http://example.org/a"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("http://example.org:443/a", "http://example.org:443/a"),
        ("https://example.org:8443/a", "https://example.org:8443/a"),
        # path case is the server's business
        ("https://example.org/News/Item", "https://example.org/News/Item"),
        # IDNA
        ("https://Bücher.example/", "https://xn--bcher-kva.example/"),
        # fragments go, except "#!" routes
        ("https://example.org/a#comments", "https://example.org/a"),
        ("https://example.org/#!/story/42", "https://example.org/#!/story/42"),
        # tracking parameters go, meaningful ones stay in order
        (
            "https://example.org/?p=123&utm_source=rss&utm_medium=feed",
            "https://example.org/?p=123",
        ),
        (
            "https://example.org/item?id=9&fbclid=abc&page=2&gclid=x&mc_cid=1&mc_eid=2",
            "https://example.org/item?id=9&page=2",
        ),
        ("https://example.org/a?UTM_Campaign=x&Utm_Term=y", "https://example.org/a"),
        ("https://example.org/a?utm%5Fsource=x&b=1", "https://example.org/a?b=1"),
        ("https://example.org/a?z=1&a=2", "https://example.org/a?z=1&a=2"),
        ("https://example.org/a?", "https://example.org/a"),
        ("https://example.org/a?&&p=1&", "https://example.org/a?p=1"),
        ("https://example.org/a?ref=main", "https://example.org/a?ref=main"),
        # percent-encoding: uppercase escapes, unreserved characters decoded
        ("https://example.org/a%2fb%3a", "https://example.org/a%2Fb%3A"),
        ("https://example.org/%7Euser/%41", "https://example.org/~user/A"),
        ("https://example.org/café", "https://example.org/caf%C3%A9"),
        ("https://example.org/a b", "https://example.org/a%20b"),
        # different resources are not merged
        ("https://www.example.org/a/", "https://www.example.org/a/"),
        ("https://example.org/a", "https://example.org/a"),
        # surrounding whitespace
        ("  https://example.org/a\n", "https://example.org/a"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_leaves_non_http_urls_alone() -> None:
    assert canonical_url(" mailto:Press@Example.org ") == "mailto:Press@Example.org"
    assert canonical_url("/relative/Path") == "/relative/Path"
    assert canonical_url("http://[broken") == "http://[broken"


def test_tracking_parameters_cover_the_well_known_ones() -> None:
    expected = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_hsenc", "_hsmi"}
    expected |= {"mkt_tok", "igshid", "yclid", "ref_src"}
    assert isinstance(TRACKING_PARAMETERS, frozenset)
    assert expected <= TRACKING_PARAMETERS
    assert not {"p", "id", "page", "q", "ref"} & TRACKING_PARAMETERS


# --- properties --------------------------------------------------------------------------

_label = st.text(alphabet=st.sampled_from("abcXYZ019-_ü한ß.İ"), min_size=1, max_size=12).filter(
    lambda label: not label.startswith(".")
)
_host = st.lists(_label, min_size=1, max_size=3).map(".".join)
_component_text = st.text(
    alphabet=st.sampled_from("aZ09-._~!$&'()*+,;=:@/%?#é 한\x01\\[]{}|^`\"<>") | st.characters(),
    max_size=20,
)
_parameter = st.one_of(
    st.sampled_from(["utm_source", "UTM_MEDIUM", "fbclid", "gclid", "p", "id", "page", "ref"]),
    st.text(alphabet="abc_%5F", min_size=1, max_size=6),
).flatmap(
    lambda name: st.one_of(st.just(name), _component_text.map(lambda value: f"{name}={value}"))
)
_urls = st.builds(
    lambda scheme, userinfo, host, port, path, params, fragment: (
        f"{scheme}://{userinfo}{host}{port}{path}"
        + ("?" + "&".join(params) if params else "")
        + (f"#{fragment}" if fragment is not None else "")
    ),
    st.sampled_from(["http", "https", "HTTP", "HttpS"]),
    st.sampled_from(["", "user@", "user:pw@"]),
    _host,
    st.sampled_from(["", ":80", ":443", ":8080", ":0080", ":", ":x"]),
    _component_text.map(lambda text: "/" + text if text else ""),
    st.lists(_parameter, max_size=4),
    st.none() | _component_text,
)


@settings(max_examples=400)
@given(_urls)
def test_canonical_url_is_idempotent_for_generated_urls(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_canonical_url_is_idempotent_for_arbitrary_text(suffix: str) -> None:
    for url in (suffix, "http://" + suffix, "https://example.org/" + suffix):
        once = canonical_url(url)
        assert canonical_url(once) == once


@settings(max_examples=300)
@given(_urls)
def test_canonical_url_removes_every_tracking_parameter(url: str) -> None:
    canonical = canonical_url(url)
    if not is_http_url(canonical):
        return
    query = urlsplit(canonical).query
    for parameter in filter(None, query.split("&")):
        name = unquote_plus(parameter.partition("=")[0]).strip().lower()
        assert not name.startswith("utm_")
        assert name not in TRACKING_PARAMETERS
