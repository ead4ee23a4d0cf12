"""Tests for aggregator.config: reading feeds.yaml and reporting every problem precisely.

YAML cases are inline strings so the line numbers being checked can be read beside them.
"""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from aggregator.config import load_config
from aggregator.config import parse_config
from aggregator.config import parse_duration
from aggregator.errors import ConfigError
from aggregator.errors import ConfigProblem
from aggregator.models import FetchLimits
from aggregator.models import PageSelectors
from tests import paths

FIXTURES = paths.FIXTURES / "config"

# Four lines, so `members:` is line 5 and the first member starts on line 6.
HEADER = """\
network:
  title: WSR Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news/
members:
"""

EXAMPLE = """\
network:
  title: Worker-driven Social Responsibility Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news
  description: News from the members of the WSR Network
  language: en
  items_per_feed: 25
  interval: 2h
members:
  - id: ciw
    name: Coalition of Immokalee Workers
    url: https://ciw-online.org/
    tags: [Agriculture, fair-food, agriculture]
    language: en
    interval: 2h
    sources:
      - feed: https://ciw-online.org/feed/
        interval: 30m
      - page: https://example.org/news/
        selectors:
          item: article.news-card
          title: h2 a
          link: h2 a
          date: time
          summary: p
          image: img
"""


def with_members(members: str) -> str:
    """HEADER followed by a members list written at the left margin."""
    return HEADER + textwrap.dedent(members).lstrip("\n")


def problems_of(text: str) -> tuple[ConfigProblem, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def only_problem(text: str) -> ConfigProblem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


def where(problem: ConfigProblem) -> tuple[int | None, str | None, str | None]:
    return (problem.line, problem.member, problem.field)


# --- valid files ----------------------------------------------------------------------


def test_example_from_the_brief_is_read_into_typed_config() -> None:
    config = parse_config(EXAMPLE, path="somewhere/feeds.yaml")

    assert config.path == "somewhere/feeds.yaml"
    network = config.network
    assert network.title == "Worker-driven Social Responsibility Network"
    assert network.url == "https://wsr-network.org/"
    assert network.feed_url == "https://wsr-network.org/news/"
    assert network.description == "News from the members of the WSR Network"
    assert network.language == "en"
    assert network.items_per_feed == 25
    assert network.interval == timedelta(hours=2)

    [ciw] = config.members
    assert ciw.id == "ciw"
    assert ciw.name == "Coalition of Immokalee Workers"
    assert ciw.url == "https://ciw-online.org/"
    assert ciw.tags == ("agriculture", "fair-food")
    assert ciw.language == "en"
    assert ciw.interval == timedelta(hours=2)
    assert ciw.line == 10

    feed, page = ciw.sources
    assert feed.kind == "feed"
    assert feed.member_id == "ciw"
    assert feed.url == "https://ciw-online.org/feed/"
    assert feed.interval == timedelta(minutes=30)
    assert feed.selectors is None
    assert feed.line == 17
    assert page.kind == "page"
    assert page.member_id == "ciw"
    assert page.url == "https://example.org/news/"
    assert page.interval is None
    assert page.line == 19
    assert page.selectors == PageSelectors(
        item="article.news-card",
        title="h2 a",
        link="h2 a",
        date="time",
        summary="p",
        image="img",
    )
    assert config.member("ciw") is ciw


def test_optional_network_keys_fall_back_to_the_defaults() -> None:
    config = parse_config(
        with_members("""
            - id: ciw
              name: CIW
              url: https://ciw-online.org/
              sources:
                - feed: https://ciw-online.org/feed/
            """)
    )
    assert config.network.description == ""
    assert config.network.language == "en"
    assert config.network.items_per_feed == 50
    assert config.network.interval == timedelta(hours=1)
    [member] = config.members
    assert member.tags == ()
    assert member.language is None
    assert member.interval is None


def test_values_are_plain_strings_even_when_quoted_or_folded() -> None:
    config = parse_config(
        with_members("""
            - id: "truah"
              name: >-
                T'ruah: The Rabbinic
                Call for Human Rights
              url: 'https://truah.org/'
              sources:
                - feed: "https://truah.org/feed/"
            """)
    )
    [member] = config.members
    assert member.name == "T'ruah: The Rabbinic Call for Human Rights"
    assert type(member.name) is str
    assert type(member.sources[0].url) is str


def test_load_config_reads_a_file() -> None:
    config = load_config(FIXTURES / "two_members_feed_and_page.yaml")
    assert config.path == str(FIXTURES / "two_members_feed_and_page.yaml")
    assert [member.id for member in config.members] == ["ciw", "example-center"]
    assert config.network.feed_url == "https://wsr-network.org/news/"
    center = config.member("example-center")
    assert center.language == "es"
    assert center.interval == timedelta(days=1)
    [page] = center.sources
    assert page.kind == "page"
    assert page.selectors is not None
    assert page.selectors.image == "img"


def test_load_config_accepts_notepad_byte_order_mark_and_crlf() -> None:
    config = load_config(FIXTURES / "utf8_bom_crlf_notepad.yaml")
    assert config.network.title == "WSR Network"
    [member] = config.members
    assert member.id == "wrc"
    assert member.line == 7
    assert member.sources[0].url == "https://www.workersrights.org/feed/"


def test_localhost_and_upper_case_addresses_are_allowed() -> None:
    config = parse_config(
        with_members("""
            - id: local
              name: Local test site
              url: HTTPS://Example.ORG/
              sources:
                - feed: http://127.0.0.1:8000/feed.xml
                - feed: http://localhost/feed/
            """)
    )
    assert [source.url for source in config.members[0].sources] == [
        "http://127.0.0.1:8000/feed.xml",
        "http://localhost/feed/",
    ]


# --- the shipped config/feeds.yaml ----------------------------------------------------

FOUNDING_MEMBERS = {
    "bhrrc": "Business and Human Rights Resource Centre",
    "ctul": "Centro de Trabajadores Unidos en la Lucha",
    "ciw": "Coalition of Immokalee Workers",
    "ffsc": "Fair Food Standards Council",
    "migrant-justice": "Migrant Justice",
    "nesri": "National Economic and Social Rights Initiative",
    "truah": "T'ruah: The Rabbinic Call for Human Rights",
    "wrc": "Worker Rights Consortium",
}


def test_shipped_config_loads_with_the_eight_founding_members() -> None:
    config = load_config(paths.ROOT / "config" / "feeds.yaml")

    ids = [member.id for member in config.members]
    assert len(ids) == len(set(ids)) == 8
    assert {member.id: member.name for member in config.members} == FOUNDING_MEMBERS
    assert config.network.title == "Worker-driven Social Responsibility Network"
    assert config.network.url == "https://wsr-network.org/"
    assert config.network.feed_url == "https://wsr-network.org/news/"
    for member in config.members:
        assert member.sources, member.id
        assert member.url.startswith("https://"), member.id
        for source in member.sources:
            assert source.member_id == member.id
            assert source.url.startswith("https://"), source.url
    assert config.member("ciw").sources[0].url == "https://ciw-online.org/feed/"
    # Bilingual members leave the language unset.
    assert config.member("ctul").language is None
    assert config.member("migrant-justice").language is None


def test_shipped_config_finds_unconfirmed_feeds_instead_of_guessing_them() -> None:
    config = load_config(paths.ROOT / "config" / "feeds.yaml")

    kinds = {member.id: [source.kind for source in member.sources] for member in config.members}
    # Only CIW's feed is confirmed; every other founding member is found from its website.
    assert kinds == {
        member_id: ["feed" if member_id == "ciw" else "url"] for member_id in FOUNDING_MEMBERS
    }
    for member in config.members:
        if member.id != "ciw":
            assert member.sources[0].url == member.url, member.id


def test_shipped_config_header_documents_every_kind_of_source_and_key() -> None:
    text = (paths.ROOT / "config" / "feeds.yaml").read_text(encoding="utf-8")
    header = text[: text.index("\nmembers:")]  # the opening notes and the MEMBER KEYS
    for documented in (
        "- feed:",
        "- url:",
        "- page:",
        "follow:",
        "selectors:",
        "include:",
        "exclude:",
        "max_age:",
        "interval:",
        "tags:",
        "language:",
    ):
        assert documented in header, documented
    assert "read by its shape" in header  # a page: needs no selectors


# --- reading the file -----------------------------------------------------------------


def test_missing_file_is_one_problem_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == str(path)
    [problem] = info.value.problems
    # The message names the full path it looked for and how to point at another file, so
    # that `aggregator check` run from another folder says what to do.
    assert problem.message == (
        f"the file does not exist (looked for {path}); point at your feeds.yaml with"
        " --config PATH or the AGGREGATOR_CONFIG environment variable"
    )
    assert str(path) in str(info.value)


def test_a_folder_instead_of_a_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    [problem] = info.value.problems
    assert "folder" in problem.message


def test_file_not_saved_as_utf8_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(FIXTURES / "windows_1252_encoded.yaml")
    [problem] = info.value.problems
    assert "UTF-8" in problem.message
    assert problem.line == 7


# --- YAML syntax ----------------------------------------------------------------------


def test_tab_indentation_is_a_syntax_problem_on_its_line() -> None:
    problem = only_problem("network:\n  title: WSR\n\turl: https://wsr-network.org/\n")
    assert problem.line == 3
    assert "tab" in problem.message
    assert problem.member is None


def test_unclosed_quote_says_where_it_began() -> None:
    text = textwrap.dedent("""\
        network:
          title: "WSR Network
          url: https://wsr-network.org/
        members: []
        """)
    problem = only_problem(text)
    assert problem.line == 5
    assert "quote is opened but never closed" in problem.message
    assert "line 2" in problem.message


def test_colon_inside_an_unquoted_value_is_explained() -> None:
    problem = only_problem("network:\n  title: T'ruah: The Rabbinic Call\n")
    assert problem.line == 2
    assert "quotes" in problem.message


def test_duplicate_key_names_the_key_and_its_second_line() -> None:
    text = with_members("""
        - id: ciw
          name: CIW
          name: Coalition of Immokalee Workers
        """)
    problem = only_problem(text)
    assert problem.line == 8
    assert "'name' appears twice" in problem.message


def test_selector_starting_with_star_needs_quotes() -> None:
    text = with_members("""
        - id: ciw
          sources:
            - page: https://example.org/
              selectors:
                item: * > li
        """)
    problem = only_problem(text)
    assert problem.line == 10
    assert "quotes" in problem.message


@pytest.mark.parametrize("value", ["-_", "._", "+_"])
def test_values_the_yaml_reader_mistakes_for_numbers(value: str) -> None:
    text = with_members(f"""
        - id: ciw
          name: CIW
          url: https://ciw-online.org/
          tags: [labor, {value}]
        """)
    problem = only_problem(text)
    assert problem.line == 9
    assert "put it in quotes" in problem.message


def test_control_character_is_located() -> None:
    problem = only_problem("network:\n  title: WSR\x07\n")
    assert problem.line == 2
    assert "control character" in problem.message


def test_python_tags_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    text = textwrap.dedent(f"""\
        network:
          title: !!python/object/apply:os.system ["touch {marker}"]
          url: https://wsr-network.org/
          feed_url: https://wsr-network.org/news/
        members: []
        """)
    problems = problems_of(text)
    assert not marker.exists()
    assert (2, None, "network.title") in [where(problem) for problem in problems]


# --- the top level --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    problem = only_problem(text)
    assert "empty" in problem.message
    assert problem.line == 1


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("- network\n- members\n", "a list"),
        ("just some text\n", "text"),
        ("42\n", "a number"),
    ],
)
def test_top_level_must_be_a_mapping(text: str, kind: str) -> None:
    problem = only_problem(text)
    assert problem.line == 1
    assert f"holds {kind}" in problem.message


def test_missing_network_and_members_are_both_reported() -> None:
    problems = problems_of("netwrok:\n  title: WSR\n")
    assert [where(problem) for problem in problems] == [
        (None, None, "network"),
        (None, None, "members"),
        (1, None, "netwrok"),
    ]
    assert problems[2].message == "unknown key 'netwrok' (did you mean 'network'?)"


def test_network_that_is_not_a_block() -> None:
    problem = only_problem(
        "network: WSR Network\nmembers:\n  - id: a\n    name: A\n    url: https://a.org/\n"
        "    sources:\n      - feed: https://a.org/feed/\n"
    )
    assert where(problem) == (1, None, "network")
    assert "block of keys" in problem.message


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ("members:\n", "'members:' is empty"),
        ("members: []\n", "'members:' is empty"),
        ("members:\n  ciw: Coalition\n", "should be a list"),
        ("members: ciw\n", "should be a list"),
    ],
)
def test_members_must_be_a_non_empty_list(members: str, message: str) -> None:
    text = HEADER.removesuffix("members:\n") + members
    problem = only_problem(text)
    assert where(problem) == (5, None, "members")
    assert message in problem.message


# --- the network block ----------------------------------------------------------------


def test_network_problems_are_all_reported_together() -> None:
    text = textwrap.dedent("""\
        network:
          description: News
          language: english
          items_per_feed: 0
          interval: soon
          feed_url: https://wsr-network.org/news/?page=2
        members:
          - id: ciw
            name: CIW
            url: https://ciw-online.org/
            sources:
              - feed: https://ciw-online.org/feed/
        """)
    problems = problems_of(text)
    assert [where(problem) for problem in problems] == [
        (1, None, "network.title"),
        (1, None, "network.url"),
        (3, None, "network.language"),
        (4, None, "network.items_per_feed"),
        (5, None, "network.interval"),
        (6, None, "network.feed_url"),
    ]
    assert "no 'title:'" in problems[0].message
    assert "language code" in problems[2].message
    assert "at least 1" in problems[3].message
    assert "'soon' is not a length of time" in problems[4].message
    assert "without '?' or '#'" in problems[5].message


@pytest.mark.parametrize("value", ["fifty", "true", "2.5", "[50]"])
def test_items_per_feed_must_be_a_whole_number(value: str) -> None:
    text = HEADER.replace("members:", f"  items_per_feed: {value}\nmembers:") + (
        "  - id: a\n    name: A\n    url: https://a.org/\n    sources:\n"
        "      - feed: https://a.org/feed/\n"
    )
    problem = only_problem(text)
    assert where(problem) == (5, None, "network.items_per_feed")
    assert "whole number" in problem.message


# --- members --------------------------------------------------------------------------


def test_member_written_as_plain_text() -> None:
    problem = only_problem(with_members("- ciw\n"))
    assert where(problem) == (6, None, "members")
    assert "only the text 'ciw'" in problem.message


def test_empty_member_entry() -> None:
    problems = problems_of(
        with_members("""
            -
            - id: ciw
              name: CIW
              url: https://ciw-online.org/
              sources:
                - feed: https://ciw-online.org/feed/
            """)
    )
    assert [where(problem) for problem in problems] == [(6, None, "members")]
    assert "empty '-' entry" in problems[0].message


def test_member_missing_id_name_url_and_sources() -> None:
    problems = problems_of(with_members("- tags: [labor]\n"))
    assert [where(problem) for problem in problems] == [
        (6, None, "id"),
        (6, None, "name"),
        (6, None, "url"),
        (6, None, "sources"),
    ]
    assert "no 'id:'" in problems[0].message
    assert "no 'name:'" in problems[1].message
    assert "no 'url:'" in problems[2].message
    assert "no 'sources:'" in problems[3].message


@pytest.mark.parametrize(
    ("member_id", "suggestion"),
    [
        ("CIW", "'ciw'"),
        ("migrant justice", "'migrant-justice'"),
        ("-ciw", "'ciw'"),
        ("ciw.org", "'ciw-org'"),
        ("a" * 41, "'" + "a" * 40 + "'"),
    ],
)
def test_badly_formed_id_suggests_one(member_id: str, suggestion: str) -> None:
    problem = only_problem(
        with_members(f"""
            - id: "{member_id}"
              name: CIW
              url: https://ciw-online.org/
              sources:
                - feed: https://ciw-online.org/feed/
            """)
    )
    assert where(problem) == (6, member_id, "id")
    assert "lowercase letters" in problem.message
    assert f"(try {suggestion})" in problem.message


def test_id_written_as_a_number() -> None:
    problem = only_problem(
        with_members("""
            - id: 42
              name: Forty-two
              url: https://42.org/
              sources:
                - feed: https://42.org/feed/
            """)
    )
    assert where(problem) == (6, None, "id")
    assert "should be text, not a number" in problem.message


def test_duplicate_id_names_the_line_of_the_first() -> None:
    problem = only_problem(
        with_members("""
            - id: ciw
              name: CIW
              url: https://ciw-online.org/
              sources:
                - feed: https://ciw-online.org/feed/
            - id: ciw
              name: Someone else
              url: https://else.org/
              sources:
                - feed: https://else.org/feed/
            """)
    )
    assert where(problem) == (11, "ciw", "id")
    assert "already used by the member on line 6" in problem.message


@pytest.mark.parametrize(
    "address",
    [
        "file:///etc/passwd",
        "ftp://ciw-online.org/feed.xml",
        "/news/",
        "news/feed.xml",
        "javascript:alert(1)",
        "ciw-online.org/feed/",
        "https://",
        "https://ciw online.org/",
        "http://ciw-online.org:99999/",
        "http://[::1/feed/",
        "mailto:news@ciw-online.org",
    ],
)
def test_only_full_http_addresses_are_allowed(address: str) -> None:
    problems = problems_of(
        with_members(f"""
            - id: ciw
              name: CIW
              url: "{address}"
              sources:
                - feed: "{address}"
            """)
    )
    assert [where(problem) for problem in problems] == [
        (8, "ciw", "url"),
        (10, "ciw", "feed"),
    ]
    for problem in problems:
        assert "only http and https addresses are allowed" in problem.message


def test_name_that_is_not_text() -> None:
    problem = only_problem(
        with_members("""
            - id: y2k
              name: 2000
              url: https://y2k.org/
              sources:
                - feed: https://y2k.org/feed/
            """)
    )
    assert where(problem) == (7, "y2k", "name")
    assert "put it in quotes" in problem.message


def test_empty_name_is_reported() -> None:
    problem = only_problem(
        with_members("""
            - id: ciw
              name:
              url: https://ciw-online.org/
              sources:
                - feed: https://ciw-online.org/feed/
            """)
    )
    assert where(problem) == (7, "ciw", "name")
    assert "nothing after it" in problem.message


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ("agriculture", "should be a list in square brackets, like: tags: [agriculture]"),
        ("{a: b}", "should be a list"),
        ("", "nothing after it"),
    ],
)
def test_tags_must_be_a_list(tags: str, message: str) -> None:
    problem = only_problem(
        with_members(f"""
            - id: ciw
              name: CIW
              url: https://ciw-online.org/
              tags: {tags}
              sources:
                - feed: https://ciw-online.org/feed/
            """)
    )
    assert where(problem) == (9, "ciw", "tags")
    assert message in problem.message


def test_each_bad_tag_is_reported_on_its_own_line() -> None:
    problems = problems_of(
        with_members("""
            - id: ciw
              name: CIW
              url: https://ciw-online.org/
              tags:
                - fair food
                - 7
                - Agriculture
              sources:
                - feed: https://ciw-online.org/feed/
            """)
    )
    assert [where(problem) for problem in problems] == [
        (10, "ciw", "tags"),
        (11, "ciw", "tags"),
    ]
    assert "(try 'fair-food')" in problems[0].message
    assert "not a number" in problems[1].message


def test_unknown_member_keys_suggest_the_right_one() -> None:
    problems = problems_of(
        with_members("""
            - id: ciw
              nmae: CIW
              url: https://ciw-online.org/
              sorces:
                - feed: https://ciw-online.org/feed/
              colour: red
            """)
    )
    messages = {where(problem): problem.message for problem in problems}
    assert messages[(7, "ciw", "nmae")] == "unknown key 'nmae' (did you mean 'name'?)"
    assert messages[(9, "ciw", "sorces")] == "unknown key 'sorces' (did you mean 'sources'?)"
    assert "keys allowed here are: id, name, url" in messages[(11, "ciw", "colour")]
    # The misspelt keys also leave the real ones missing; both are said.
    assert (6, "ciw", "name") in messages
    assert (6, "ciw", "sources") in messages


def test_feed_written_directly_under_the_member_points_to_sources() -> None:
    problems = problems_of(
        with_members("""
            - id: ciw
              name: CIW
              url: https://ciw-online.org/
              feed: https://ciw-online.org/feed/
            """)
    )
    assert [where(problem) for problem in problems] == [
        (6, "ciw", "sources"),
        (9, "ciw", "feed"),
    ]
    assert "go in the 'sources:' list" in problems[1].message


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        ("sources:", "'sources:' is empty"),
        ("sources: []", "'sources:' is empty"),
        ("sources:\n  feed: https://ciw-online.org/feed/", "should be a list"),
        ("sources: https://ciw-online.org/feed/", "should be a list"),
    ],
)
def test_member_without_usable_sources(sources: str, message: str) -> None:
    members = """
        - id: ciw
          name: CIW
          url: https://ciw-online.org/
        """
    problem = only_problem(with_members(members) + textwrap.indent(sources, "  ") + "\n")
    assert where(problem) == (9, "ciw", "sources")
    assert message in problem.message


# --- sources --------------------------------------------------------------------------


def source_text(source: str) -> str:
    """A file whose one member 'ciw' (line 6) has `source` as its list of sources (line 10)."""
    return with_members("""
        - id: ciw
          name: CIW
          url: https://ciw-online.org/
          sources:
        """) + textwrap.indent(textwrap.dedent(source).lstrip("\n"), "    ")


def test_source_with_both_feed_and_page() -> None:
    problem = only_problem(
        source_text("""
            - feed: https://ciw-online.org/feed/
              page: https://ciw-online.org/news/
            """)
    )
    assert where(problem) == (10, "ciw", None)
    assert "both 'feed:' and 'page:'" in problem.message


def test_source_with_neither_feed_nor_page_still_checks_its_other_keys() -> None:
    problems = problems_of(source_text("- address: https://ciw-online.org/feed/\n  interval: 5\n"))
    assert [where(problem) for problem in problems] == [
        (10, "ciw", "address"),
        (10, "ciw", None),
        (11, "ciw", "interval"),
    ]
    assert "write the address after 'feed:'" in problems[0].message
    assert "neither 'feed:', 'page:' nor 'url:'" in problems[1].message
    assert "has no unit" in problems[2].message


def test_source_written_as_a_bare_address() -> None:
    problem = only_problem(source_text("- https://ciw-online.org/feed/\n"))
    assert where(problem) == (10, "ciw", "sources")
    assert "'- feed: <address>'" in problem.message


def test_page_without_selectors_is_read_heuristically() -> None:
    # Selectors are optional since pages can be read without them (parse/heuristics.py);
    # when 'selectors:' is given it still needs 'item:' (next test).
    config = parse_config(source_text("- page: https://ciw-online.org/news/\n"))
    [source] = config.members[0].sources
    assert source.kind == "page"
    assert source.selectors is None


def test_page_selectors_without_item() -> None:
    problem = only_problem(
        source_text("""
            - page: https://ciw-online.org/news/
              selectors:
                title: h2 a
            """)
    )
    assert where(problem) == (11, "ciw", "selectors.item")
    assert "no 'item:'" in problem.message


def test_selectors_that_are_not_a_block() -> None:
    problem = only_problem(
        source_text("""
            - page: https://ciw-online.org/news/
              selectors: article
            """)
    )
    assert where(problem) == (11, "ciw", "selectors")
    assert "block of keys" in problem.message


def test_invalid_css_selectors_name_their_field() -> None:
    problems = problems_of(
        source_text("""
            - page: https://ciw-online.org/news/
              selectors:
                item: "article >> h2"
                title: h2 a
                date: "time["
                image: "img:nth-child(x)"
            """)
    )
    assert [where(problem) for problem in problems] == [
        (12, "ciw", "selectors.item"),
        (14, "ciw", "selectors.date"),
        (15, "ciw", "selectors.image"),
    ]
    assert "'article >> h2' is not a valid CSS selector" in problems[0].message


def test_selector_starting_with_hash_must_be_quoted() -> None:
    problem = only_problem(
        source_text("""
            - page: https://ciw-online.org/news/
              selectors:
                item: #news li
            """)
    )
    assert where(problem) == (12, "ciw", "selectors.item")
    assert "starts with '#' must be put in quotes" in problem.message


def test_unknown_selector_key_suggests_one() -> None:
    problem = only_problem(
        source_text("""
            - page: https://ciw-online.org/news/
              selectors:
                item: article
                summmary: p
            """)
    )
    assert where(problem) == (13, "ciw", "selectors.summmary")
    assert problem.message == "unknown key 'summmary' (did you mean 'summary'?)"


def test_selector_key_written_directly_under_the_page() -> None:
    problems = problems_of(
        source_text("""
            - page: https://ciw-online.org/news/
              item: article
            """)
    )
    assert [where(problem) for problem in problems] == [(11, "ciw", "item")]
    assert "go inside 'selectors:'" in problems[0].message


def test_selectors_on_a_feed_are_refused() -> None:
    problem = only_problem(
        source_text("""
            - feed: https://ciw-online.org/feed/
              selectors:
                item: article
            """)
    )
    assert where(problem) == (11, "ciw", "selectors")
    assert "only apply to '- page:' sources" in problem.message


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        ("soon", "'soon' is not a length of time"),
        ("30", "has no unit"),
        ("0m", "longer than zero"),
        ("1.5h", "is not a length of time"),
        ("", "nothing after it"),
    ],
)
def test_bad_source_interval(interval: str, message: str) -> None:
    problem = only_problem(
        source_text(f"- feed: https://ciw-online.org/feed/\n  interval: {interval}\n")
    )
    assert where(problem) == (11, "ciw", "interval")
    assert message in problem.message


def test_bad_member_interval() -> None:
    problem = only_problem(
        with_members("""
            - id: ciw
              name: CIW
              url: https://ciw-online.org/
              interval: every day
              sources:
                - feed: https://ciw-online.org/feed/
            """)
    )
    assert where(problem) == (9, "ciw", "interval")


def test_same_source_address_twice_in_the_file() -> None:
    problems = problems_of(
        with_members("""
            - id: ciw
              name: CIW
              url: https://ciw-online.org/
              sources:
                - feed: https://ciw-online.org/feed/
            - id: ffsc
              name: Fair Food Standards Council
              url: https://www.fairfoodstandards.org/
              sources:
                - feed: http://CIW-online.org/feed
                - feed: https://www.fairfoodstandards.org/feed/
                - page: https://www.fairfoodstandards.org/feed/
                  selectors:
                    item: article
            """)
    )
    assert [where(problem) for problem in problems] == [
        (15, "ffsc", "feed"),
        (17, "ffsc", "page"),
    ]
    assert "already on line 10 (member 'ciw')" in problems[0].message
    assert "already on line 16 (member 'ffsc')" in problems[1].message


def test_a_different_query_is_a_different_address() -> None:
    config = parse_config(
        source_text("""
            - feed: https://ciw-online.org/?feed=rss2
            - feed: https://ciw-online.org/?feed=atom
            """)
    )
    assert len(config.members[0].sources) == 2


# --- everything at once ---------------------------------------------------------------


def test_every_problem_is_reported_together_in_line_order() -> None:
    text = textwrap.dedent("""\
        network:
          title: Worker-driven Social Responsibility Network
          url: ftp://wsr-network.org/
          feed_url: https://wsr-network.org/news/
          interval: 2 hours
        members:
          - id: ciw
            name: Coalition of Immokalee Workers
            url: https://ciw-online.org/
            tags: agriculture
            sorces:
              - feed: https://ciw-online.org/feed/
          - id: CTUL
            name: Centro de Trabajadores Unidos en la Lucha
            url: https://ctul.net/
            sources:
              - page: ctul.net/news/
          - id: ciw
            url: /relative/
            sources:
              - feed: https://ciw-online.org/feed/
                page: https://ciw-online.org/news/
              - interval: 1h
        """)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    error = info.value
    assert [where(problem) for problem in error.problems] == [
        (3, None, "network.url"),
        (5, None, "network.interval"),
        (7, "ciw", "sources"),
        (10, "ciw", "tags"),
        (11, "ciw", "sorces"),
        (13, "CTUL", "id"),
        (17, "CTUL", "page"),
        (18, "ciw", "id"),
        (18, "ciw", "name"),
        (19, "ciw", "url"),
        (21, "ciw", None),
        (23, "ciw", None),
    ]
    assert len(error.problems) == 12
    rendered = str(error)
    assert rendered.startswith("config/feeds.yaml has 12 problem(s):")
    assert "line 11, member 'ciw', field 'sorces': unknown key 'sorces'" in rendered


def test_both_kinds_source_is_still_checked_for_duplicate_addresses() -> None:
    problems = problems_of(
        source_text("""
            - feed: https://ciw-online.org/feed/
            - feed: https://ciw-online.org/feed/
              page: https://ciw-online.org/news/
            """)
    )
    assert [where(problem) for problem in problems] == [
        (11, "ciw", "feed"),
        (11, "ciw", None),
    ]
    assert "already on line 10" in problems[0].message


# --- robustness ----------------------------------------------------------------------

# Scalars staff might type anywhere, including ones YAML reads as numbers, dates and nothing.
_SCALARS = st.sampled_from(
    [
        "",
        "ciw",
        "CIW",
        "https://a.org/",
        "file:///x",
        "30m",
        "0",
        "-1",
        "2024-01-01",
        "~",
        "[]",
        "{}",
        "'#x'",
        "h2 >> a",
        "null",
        "true",
        "3.5",
    ]
)
_KEYS = st.sampled_from(
    [
        "network",
        "members",
        "title",
        "url",
        "feed_url",
        "id",
        "name",
        "tags",
        "sources",
        "feed",
        "page",
        "selectors",
        "item",
        "interval",
        "items_per_feed",
        "language",
        "sorces",
    ]
)
_YAML_TREES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
        st.dictionaries(_KEYS, children, max_size=4).map(
            lambda mapping: "{" + ", ".join(f"{k}: {v}" for k, v in mapping.items()) + "}"
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _YAML_TREES))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as error:
        assert error.problems
        assert all(problem.message for problem in error.problems)


# --- durations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        (" 1h 30m ", timedelta(hours=1, minutes=30)),
        ("2H", timedelta(hours=2)),
        ("0m", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "  ", "h", "30", "1.5h", "-1h", "1x", "1h30", "30m2h", "1hh", "1 hour", "99999999999d"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="time"):
        parse_duration(text)


# --- sources as staff meet them (issue 4): url:, follow: ------------------------------


def test_a_url_source_is_a_site_whose_feed_is_discovered() -> None:
    config = parse_config(source_text("- url: https://ciw-online.org/\n"))
    [source] = config.members[0].sources
    assert (source.kind, source.url, source.selectors) == ("url", "https://ciw-online.org/", None)


def test_selectors_on_a_url_source_are_refused() -> None:
    problem = only_problem(
        source_text("""
            - url: https://ciw-online.org/
              selectors:
                item: article
            """)
    )
    assert where(problem) == (11, "ciw", "selectors")
    assert "a 'url:' source needs none" in problem.message


def test_follow_is_read_on_pages_and_refused_elsewhere() -> None:
    config = parse_config(source_text("- page: https://ciw-online.org/news/\n  follow: true\n"))
    assert config.members[0].sources[0].follow is True
    problem = only_problem(source_text("- feed: https://ciw-online.org/feed/\n  follow: true\n"))
    assert where(problem) == (11, "ciw", "follow")
    assert "only applies to '- page:' sources" in problem.message
    problem = only_problem(source_text("- page: https://ciw-online.org/news/\n  follow: often\n"))
    assert "true or false" in problem.message


def test_a_url_and_a_feed_in_one_source_are_refused() -> None:
    problem = only_problem(
        source_text("- url: https://ciw-online.org/\n  feed: https://ciw-online.org/feed/\n")
    )
    assert where(problem) == (10, "ciw", None)
    assert "both 'feed:' and 'url:'" in problem.message


def test_network_limits_are_read_with_defaults_for_absent_keys() -> None:
    config = parse_config(
        EXAMPLE.replace(
            "  language: en\n",
            "  language: en\n  limits:\n    max_megabytes: 2\n    total_timeout: 90s\n"
            "    per_host: 1\n",
            1,
        )
    )
    limits = config.network.limits
    assert limits.max_bytes == 2 * 1024 * 1024
    assert limits.total_timeout == 90.0
    assert limits.per_host == 1
    assert limits.max_redirects == FetchLimits().max_redirects


def test_bad_network_limits_are_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            EXAMPLE.replace(
                "  language: en\n",
                "  language: en\n  limits:\n    max_megabytes: lots\n    total_timout: 90s\n",
                1,
            )
        )
    messages = [str(problem) for problem in caught.value.problems]
    assert any(
        "field 'network.limits.max_megabytes'" in m and "whole number" in m for m in messages
    )
    assert any("did you mean 'total_timeout'" in m for m in messages)
