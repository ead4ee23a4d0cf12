"""include/exclude/max_age: the rules, their feeds.yaml keys, and their place in a poll."""

from __future__ import annotations

import asyncio
import textwrap
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from aggregator.config import parse_config
from aggregator.errors import ConfigError
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.filters import filter_items
from aggregator.ingest.filters import rejection
from aggregator.ingest.poll import poll_all
from aggregator.models import Item
from aggregator.models import ItemFilter
from aggregator.store import Store
from aggregator.text import fold
from tests.site_fixtures import serve_sites

NOW = datetime(2025, 3, 20, 12, 0, tzinfo=UTC)


def item(title: str, summary: str = "", tags: tuple[str, ...] = (), days_old: int = 1) -> Item:
    published = NOW - timedelta(days=days_old)
    return Item(
        member_id="m",
        source_url="https://m.example.org/feed/",
        key=f"guid:{title}",
        url=None,
        title=title,
        content_html="",
        summary=summary,
        published=published,
        updated=published,
        date_from_source=True,
        tags=tags,
    )


def test_include_keeps_only_items_mentioning_a_keyword() -> None:
    rule = ItemFilter(include=("farmworkers", "heat stress"))
    assert rejection(item("Farmworkers march in Immokalee"), rule, NOW) is None
    assert (
        rejection(item("Quarterly report", "<p>On <b>heat   stress</b> rules</p>"), rule, NOW)
        is None
    )
    assert rejection(item("Board meeting", tags=("farmworkers",)), rule, NOW) is None
    reason = rejection(item("Bake sale on Sunday"), rule, NOW)
    assert reason == "mentions none of the included words"


def test_whole_words_only() -> None:
    rule = ItemFilter(include=("strike",))
    assert rejection(item("Strike at the plant"), rule, NOW) is None
    assert rejection(item("Baseball: three strikeouts"), rule, NOW) is not None
    assert rejection(item("Strike-breakers hired"), rule, NOW) is None  # a hyphen ends a word


def test_case_and_accents_do_not_matter() -> None:
    rule = ItemFilter(include=("migracion",))
    assert rejection(item("Reforma de MIGRACIÓN"), rule, NOW) is None
    assert fold("Trabajadoras Agrícolas") == "trabajadoras agricolas"


def test_exclude_wins_over_include() -> None:
    rule = ItemFilter(include=("workers",), exclude=("fundraiser",))
    assert rejection(item("Workers fundraiser gala"), rule, NOW) == "mentions excluded 'fundraiser'"


def test_max_age_leaves_out_the_backlog_but_not_undated_items() -> None:
    rule = ItemFilter(max_age=timedelta(days=30))
    assert rejection(item("Old news", days_old=45), rule, NOW) is not None
    assert rejection(item("Fresh news", days_old=3), rule, NOW) is None
    undated = item("Undated", days_old=45)
    undated = Item(**{**undated.__dict__, "date_from_source": False})
    assert rejection(undated, rule, NOW) is None


def test_every_rule_must_let_an_item_through() -> None:
    member_rule = ItemFilter(exclude=("sports",))
    source_rule = ItemFilter(include=("union",))
    items = [item("Union wins vote"), item("Union sports day"), item("Garden party")]
    result = filter_items(items, [member_rule, source_rule], NOW)
    assert [kept.title for kept in result.kept] == ["Union wins vote"]
    assert [(dropped.title, why) for dropped, why in result.dropped] == [
        ("Union sports day", "mentions excluded 'sports'"),
        ("Garden party", "mentions none of the included words"),
    ]


# --- feeds.yaml -----------------------------------------------------------------------

HEADER = """\
network:
  title: WSR Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news/
members:
  - id: big
    name: Big Union
    url: https://big.example.org/
"""


def test_config_reads_member_and_source_filters() -> None:
    config = parse_config(
        HEADER
        + textwrap.indent(
            textwrap.dedent("""\
                include: [farmworkers, "heat stress"]
                max_age: 30d
                sources:
                  - feed: https://big.example.org/feed/
                    exclude: [Sports]
                  - feed: https://big.example.org/es/feed/
                """),
            "    ",
        )
    )
    member = config.members[0]
    assert member.item_filter == ItemFilter(
        include=("farmworkers", "heat stress"), max_age=timedelta(days=30)
    )
    first, second = member.sources
    assert first.filters == (member.item_filter, ItemFilter(exclude=("Sports",)))
    assert second.filters == (member.item_filter,)


@pytest.mark.parametrize(
    ("lines", "field", "words"),
    [
        ("include: farmworkers\n", "include", "square brackets"),
        ("exclude: []\n", "exclude", "list of words or phrases"),
        ("include: [farm, 12]\n", "include", "word or phrase"),
        ("max_age: 30\n", "max_age", "has no unit"),
        ("max_age: a month\n", "max_age", "not a length of time"),
        ("inclde: [farm]\n", "inclde", "did you mean 'include'"),
    ],
)
def test_config_problems_with_filters(lines: str, field: str, words: str) -> None:
    text = HEADER + textwrap.indent(
        lines + "sources:\n  - feed: https://big.example.org/feed/\n", "    "
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text)
    [problem] = raised.value.problems
    assert problem.field == field
    assert words in problem.message


# --- in a poll ------------------------------------------------------------------------


def test_a_poll_stores_only_what_the_filters_let_through(store: Store) -> None:
    with serve_sites() as server:
        config = parse_config(f"""\
network:
  title: WSR Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news/
members:
  - id: gfc
    name: Greenway Farmworker Coalition
    url: {server.url("/wordpress/")}
    exclude: [radio]
    sources:
      - feed: {server.url("/wordpress/feed/")}
""")
        store.sync_config(config)

        async def run() -> None:
            async with Fetcher() as fetcher:
                [report] = await poll_all(config, store, fetcher)
            assert report.new == 1
            assert report.filtered == 1

        asyncio.run(run())
    assert [story.title for story in store.latest_stories(10)] == [
        "Greenhouse workers sign first code of conduct"
    ]
