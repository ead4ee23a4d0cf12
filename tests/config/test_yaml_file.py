"""The quick reader of feeds.yaml (C parser) against the round-trip reader of record.

`parse_config` uses the quick reader's data only when the checks find no problem in it; these
tests hold that what it then returns is exactly what the round-trip reader gives (lines
included), that it refuses what it must leave to the round-trip reader, and that a hostile
file cannot crash it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aggregator.config import parse_config
from aggregator.config.load import Checker
from aggregator.config.yaml_file import MAX_QUICK_DEPTH
from aggregator.config.yaml_file import load_quickly
from aggregator.config.yaml_file import load_yaml
from aggregator.demo import demo_config_text
from aggregator.errors import ConfigError
from aggregator.errors import ConfigProblem
from aggregator.models import Config
from tests import paths
from tests.config.test_config import HEADER

GOOD = HEADER + textwrap.dedent(
    """\
      - id: ciw  # a comment
        name: "Coalition of Immokalee Workers"
        url: https://ciw-online.org/
        tags: [agriculture, 'fair-food']
        include:
          - farmworkers
          - "heat stress"
        max_age: 30d
        sources:
          - feed: https://ciw-online.org/feed/
            interval: 30m
          - page: https://example.org/news/
            follow: true
            selectors: {item: article.news-card, title: h2 a, date: time}
      - id: ctul
        name: >-
          Centro de Trabajadores
          Unidos en la Lucha
        url: https://ctul.net/
        sources:
          - url: https://ctul.net/es/
    hidden:
      - item: https://example.org/news/2025/03/old-story/
        reason: |
          legal request
    """
)


def both_readers(text: str, path: str = "feeds.yaml") -> tuple[object, object]:
    """What the checks make of each reader's data: a Config, or the problems found."""

    def check(root: object) -> object:
        checker = Checker()
        config = checker.config(root, path)
        return checker.problems or config

    quick = load_quickly(text)
    return (None if quick is None else check(quick)), check(load_yaml(text, path))


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        (paths.ROOT / "config" / "feeds.yaml").read_text(encoding="utf-8"),
        demo_config_text("http://127.0.0.1:8000"),
    ],
    ids=["inline", "config/feeds.yaml", "demo"],
)
def test_a_good_file_reads_quickly_to_the_same_config_lines_included(text: str) -> None:
    quick, round_trip = both_readers(text)
    assert isinstance(round_trip, Config)
    assert quick == round_trip
    assert [member.line for member in quick.members] == [
        member.line for member in round_trip.members
    ]
    assert [s.line for m in quick.members for s in m.sources] == [
        s.line for m in round_trip.members for s in m.sources
    ]


@pytest.mark.parametrize(
    "text",
    [
        "network:\n\ttitle: x\n",  # tabs: the C parser and ruamel's disagree on some
        HEADER + "  - &m {id: a, name: A, url: https://a.org/}\n  - <<: *m\n    id: b\n",
        "%YAML 1.1\n---\n" + GOOD,  # 1.1 reads yes/no as booleans
        GOOD.replace("legal request", "legal\x07request"),  # a control character
        GOOD.replace("farmworkers", "farm: workers: twice"),  # a syntax error
        GOOD.replace("max_age: 30d", "max_age: 30d\n    max_age: 20d"),  # a duplicate key
        "",
        "a: " + "[" * (MAX_QUICK_DEPTH + 1) + "]" * (MAX_QUICK_DEPTH + 1) + "\n",
    ],
    ids=["tab", "merge", "directive", "control", "syntax", "duplicate", "empty", "deep"],
)
def test_what_only_the_round_trip_reader_may_say_is_left_to_it(text: str) -> None:
    assert load_quickly(text) is None


def test_an_alias_bomb_is_left_to_the_round_trip_reader() -> None:
    lines = ["x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 8)]
    assert load_quickly(GOOD + "\n".join(lines) + "\n") is None
    assert load_quickly(GOOD + "x0: &a0 [1, 2]\nx1: [*a0, *a0]\n") is not None


def test_a_nesting_that_would_crash_the_c_parser_is_refused() -> None:
    # 30,000 brackets overflow the C composer's stack: a crash, not an exception, so the
    # read runs in a process of its own.
    code = (
        "from aggregator.config import parse_config\n"
        "from aggregator.errors import ConfigError\n"
        "text = 'network: ' + '[' * 30000 + ']' * 30000\n"
        "try:\n"
        "    parse_config(text)\n"
        "except (ConfigError, RecursionError):\n"
        "    print('refused')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "refused"


def test_a_problem_found_in_the_quick_read_is_reported_by_the_round_trip_reader() -> None:
    text = GOOD.replace("    sources:\n      - feed", "    sorces:\n      - feed", 1)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "feeds.yaml")
    line = text.splitlines().index("    sorces:") + 1
    assert ConfigProblem(
        "unknown key 'sorces' (did you mean 'sources'?)", line=line, member="ciw", field="sorces"
    ) in caught.value.problems


# Plain scalars whose reading differs between YAML versions, readers or types.
SCALARS = [
    "yes", "no", "on", "off", "y", "n", "true", "False", "~", "null", "", "0", "0o17", "0x1f",
    "017", "1_000", "1e3", ".5", ".inf", "-.inf", ".nan", "1:30", "2025-03-14",
    "2025-03-14 10:00:00", "'quoted'", '"double \\u00e9"', "é", "https://a.org/x?y=1#z",
    "[a, b]", "{k: v}", "- x", "*", "&a x", "!!str 12", "!!binary aGVsbG8=", "!custom x",
    "!!set {a, b}", "!!omap [a: 1]", "|\n      block", ">-\n      folded", "2h", "30d", "-_",
    "@x", "`x", "a: b", "'", "# comment", "?", ": x", "-", "[", "\u00a0x",
]


# Where a value goes in GOOD: each line, and the same line with {value} for its value.
PLACES = [
    ("  title: WSR Network", "  title: WSR Network\n  description: {value}"),
    ('    name: "Coalition of Immokalee Workers"', "    name: {value}"),
    ("    tags: [agriculture, 'fair-food']", "    tags: {value}"),
    ("        interval: 30m", "        interval: {value}"),
]


@settings(max_examples=150, deadline=None)
@given(value=st.sampled_from(SCALARS), place=st.sampled_from(PLACES))
def test_a_value_the_quick_reader_accepts_reads_the_same_with_both(
    value: str, place: tuple[str, str]
) -> None:
    line, replacement = place
    text = GOOD.replace(line, replacement.format(value=value), 1)
    quick = load_quickly(text)
    if quick is None:
        return  # parse_config reads it with the round-trip reader only
    checker = Checker()
    config = checker.config(quick, "feeds.yaml")
    if checker.problems or config is None:
        return  # parse_config reads it again with the round-trip reader, which reports it
    # Accepted on the quick read: the round-trip reader must accept it too, identically.
    _, round_trip = both_readers(text)
    assert round_trip == config


def test_the_corpus_generator_file_reads_quickly(tmp_path: Path) -> None:
    members = "".join(
        f"  - id: m{i:04d}\n    name: \"Member {i}\"\n    url: https://m{i}.example.org/\n"
        f"    sources:\n      - feed: http://127.0.0.1:8080/m{i:04d}/feed.xml\n"
        for i in range(300)
    )
    quick, round_trip = both_readers(HEADER + members)
    assert isinstance(quick, Config)
    assert quick == round_trip
