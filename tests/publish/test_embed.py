"""embed_script: the values it writes into /embed.js, and what the script may never do.

What the script does in a browser is tested in tests/browser/test_embed_browser.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aggregator.publish.embed import API_URL_PLACEHOLDER
from aggregator.publish.embed import FEED_PAGE_URL_PLACEHOLDER
from aggregator.publish.embed import embed_script
from aggregator.publish.embed import embed_template

API = "https://news.wsr-network.org/api/items"
PAGE = "https://news.wsr-network.org/"


def assigned_string(script: str, name: str) -> str:
    """The JSON string literal the script passes to url() for `const name`."""
    match = re.search(rf'const {name} = url\(("(?:[^"\\]|\\.)*"), here\);', script)
    assert match is not None, f"no `const {name} = url(...)` in the script"
    value: str = json.loads(match.group(1))
    return value


def test_placeholders_are_filled_with_json_strings() -> None:
    script = embed_script(API, PAGE)

    assert API_URL_PLACEHOLDER not in script
    assert FEED_PAGE_URL_PLACEHOLDER not in script
    assert assigned_string(script, "api") == API
    assert assigned_string(script, "page") == PAGE


def test_hostile_values_cannot_break_out_of_the_string() -> None:
    hostile = '");window.__pwned=1;("</script><script>window.__pwned=2</script>\u2028'

    script = embed_script(hostile, "page\\" + FEED_PAGE_URL_PLACEHOLDER)

    assert assigned_string(script, "api") == hostile
    assert assigned_string(script, "page") == "page\\" + FEED_PAGE_URL_PLACEHOLDER
    assert "</script>" not in script
    assert "\u2028" not in script  # a raw line separator ends an ES2017 string literal


def test_template_holds_each_placeholder_once() -> None:
    template = embed_template()

    assert template.count(API_URL_PLACEHOLDER) == 1
    assert template.count(FEED_PAGE_URL_PLACEHOLDER) == 1


def test_script_is_small() -> None:
    # Every page view of a host site downloads it.
    assert len(embed_script(API, PAGE).encode("utf-8")) < 5.5 * 1024


@pytest.mark.parametrize(
    "forbidden",
    ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function("],
)
def test_script_never_parses_data_as_html_or_code(forbidden: str) -> None:
    assert forbidden not in embed_template()


def test_script_uses_shadow_dom_and_a_timeout() -> None:
    script = embed_script(API, PAGE)

    assert 'attachShadow({ mode: "open" })' in script
    assert "5000" in script
    assert "News from the WSR Network" in script


def test_script_is_valid_javascript(tmp_path: Path) -> None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("no node to syntax-check with; tests/browser runs the script in Chromium")
    target = tmp_path / "embed.js"
    target.write_text(embed_script(API, PAGE), encoding="utf-8")

    checked = subprocess.run([node, "--check", str(target)], capture_output=True, text=True)

    assert checked.returncode == 0, checked.stderr
