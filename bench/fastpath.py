"""Would fastfeedparser do as a fast path in front of feedparser? Compare, never adopt blindly.

    python -m bench.fastpath            # tests/fixtures + ../shared/corpora/feedparser-tests
    python -m bench.fastpath --smoke    # tests/fixtures only

For every RSS/Atom/RDF document it builds a ParsedFeed twice, with the aggregator's
parser (feedparser) and with fastfeedparser through the mapping
below (its dicts resemble feedparser's but are not the same), normalizes both with the same
`now`, and compares the Items field by field. The rule from issue 6: a fast path is only
acceptable if the normalized items are the same on every document. It prints how many
documents agree, which Item fields differ most, examples, and the speed of each parser.

fastfeedparser is not a dependency of the project; without it this script says so and stops.
It never fetches anything: documents are passed as bytes (fastfeedparser fetches a str URL).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from aggregator.ingest.normalize import normalize_feed
from aggregator.ingest.parse import parse_feed
from aggregator.models import Item
from aggregator.models import ParsedEntry
from aggregator.models import ParsedFeed
from aggregator.models import SourceConfig
from bench.harness import exit_on_sigterm
from bench.harness import say

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
FEEDPARSER_TESTS = REPO.parent / "shared" / "corpora" / "feedparser-tests"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URL = "https://member.example.org/feed/"
# JSON Feed is read directly (json.loads) already; a fast path is about the XML formats.
SUFFIXES = (".xml", ".rss", ".atom", ".rdf")
EXAMPLES = 8


def fast_parsed_feed(content: bytes, url: str) -> ParsedFeed:
    """fastfeedparser's result mapped onto the aggregator's ParsedFeed, as closely as it allows."""
    import fastfeedparser  # type: ignore[import-untyped,unused-ignore]

    data: Mapping[str, Any] = fastfeedparser.parse(content)
    feed: Mapping[str, Any] = data.get("feed") or {}
    language = _text(feed.get("language"))
    entries = tuple(_fast_entry(entry, language) for entry in data.get("entries") or [])
    return ParsedFeed(
        url=url,
        format=str(feed.get("version") or "unknown"),
        title=_text(feed.get("title")),
        link=_text(feed.get("link")),
        language=language,
        entries=entries,
    )


def _fast_entry(entry: Mapping[str, Any], feed_language: str | None) -> ParsedEntry:
    contents = [c for c in entry.get("content") or [] if isinstance(c, Mapping)]
    content = max(contents, key=lambda c: len(c.get("value") or ""), default=None)
    content_html = _text(content.get("value")) if content else None
    summary = _text(entry.get("description"))
    image = _text(entry.get("image"))
    for media in entry.get("media_content") or []:
        if image is None and isinstance(media, Mapping):
            image = _text(media.get("url"))
    return ParsedEntry(
        guid=_text(entry.get("id")),
        link=_text(entry.get("link")),
        title=_text(entry.get("title")),
        content_html=content_html,
        summary_html=None if summary == content_html else summary,
        published=_date(entry.get("published")),
        updated=_date(entry.get("updated")),
        authors=tuple(
            str(a["name"])
            for a in entry.get("authors") or []
            if isinstance(a, Mapping) and a.get("name")
        ),
        tags=tuple(
            str(t["term"])
            for t in entry.get("tags") or []
            if isinstance(t, Mapping) and t.get("term")
        ),
        image=image,
        language=feed_language,
        base_url=_text(content.get("base")) if content else None,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _date(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def normalized(parsed: ParsedFeed) -> list[Item]:
    source = SourceConfig(member_id="m", kind="feed", url=URL)
    return normalize_feed(parsed, source, NOW)


def documents(include_corpus: bool) -> list[Path]:
    found = sorted(p for p in FIXTURES.rglob("*") if p.suffix in SUFFIXES and p.is_file())
    if include_corpus and FEEDPARSER_TESTS.is_dir():
        found += sorted(
            p for p in FEEDPARSER_TESTS.rglob("*") if p.suffix in SUFFIXES and p.is_file()
        )
    return found


def compare(path: Path) -> tuple[str, list[str]]:
    """("same" | "differ" | "only-feedparser" | "only-fast" | "neither", differing fields)."""
    content = path.read_bytes()
    try:
        reference: list[Item] | None = normalized(parse_feed(content, URL, None))
    except Exception:  # noqa: BLE001 (any failure is a result here)
        reference = None
    try:
        fast: list[Item] | None = normalized(fast_parsed_feed(content, URL))
    except Exception:  # noqa: BLE001
        fast = None
    if reference is None and fast is None:
        return "neither", []
    if reference is None:
        return "only-fast", []
    if fast is None:
        return "only-feedparser", []
    if reference == fast:
        return "same", []
    differing: set[str] = set()
    if len(reference) != len(fast):
        differing.add("number of items")
    for ours, theirs in zip(reference, fast, strict=False):
        for field in fields(Item):
            if getattr(ours, field.name) != getattr(theirs, field.name):
                differing.add(field.name)
    return "differ", sorted(differing)


def speed(paths: Sequence[Path]) -> tuple[float, float]:
    """Milliseconds per document: aggregator's parse_feed, and the fastfeedparser mapping."""
    bodies = [p.read_bytes() for p in paths]
    timings = []
    parsers: tuple[Callable[[bytes], ParsedFeed], ...] = (
        lambda b: parse_feed(b, URL, None),
        lambda b: fast_parsed_feed(b, URL),
    )
    for parse in parsers:
        started = time.process_time()
        for body in bodies:
            try:
                parse(body)
            except Exception:  # noqa: BLE001
                continue
        timings.append((time.process_time() - started) / max(len(bodies), 1) * 1000)
    return timings[0], timings[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fastfeedparser vs feedparser (bench/README.md)")
    parser.add_argument("--smoke", action="store_true", help="tests/fixtures only")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if importlib.util.find_spec("fastfeedparser") is None:
        say("fastfeedparser is not installed (`pip install fastfeedparser`): nothing to compare")
        return 0
    import fastfeedparser  # type: ignore[import-untyped,unused-ignore]

    paths = documents(include_corpus=not args.smoke)
    if not args.smoke and not FEEDPARSER_TESTS.is_dir():
        say(f"{FEEDPARSER_TESTS} is absent: comparing the fixtures only")
    outcomes: Counter[str] = Counter()
    by_field: Counter[str] = Counter()
    examples: list[str] = []
    fixture_outcomes: Counter[str] = Counter()
    for path in paths:
        outcome, differing = compare(path)
        outcomes[outcome] += 1
        if path.is_relative_to(FIXTURES):
            fixture_outcomes[outcome] += 1
        by_field.update(differing)
        if outcome != "same" and len(examples) < EXAMPLES:
            where = path.relative_to(REPO.parent) if path.is_relative_to(REPO.parent) else path
            examples.append(f"  {where}: {outcome} {', '.join(differing)}")
    version = getattr(fastfeedparser, "__version__", "?")
    say(f"fastfeedparser {version} vs the aggregator's feedparser path, normalized Items compared")
    say(f"documents: {len(paths)} ({sum(fixture_outcomes.values())} fixtures)")
    say(f"fixtures: {dict(fixture_outcomes)}")
    say(f"all: {dict(outcomes)}")
    say(f"Item fields that differ (documents): {dict(by_field.most_common())}")
    say("examples:\n" + "\n".join(examples))
    slow, fast = speed(paths)
    say(f"speed on these documents: feedparser path {slow:.2f} ms, fastfeedparser {fast:.2f} ms")
    adopt = outcomes["same"] == len(paths)
    say(
        "verdict: "
        + (
            "identical everywhere: adoptable as a fast path"
            if adopt
            else "NOT adoptable: the normalized items differ (rule: identical on every document)"
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
