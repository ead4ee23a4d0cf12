"""Does a change to site_debris.clean_body change what is stored? Old tree against this one.

    python -m bench.debris_equivalence --baseline TREE --corpus DIR [--rounds N]
    python -m bench.debris_equivalence --smoke   # this tree against itself, 10 sites, no timing

It normalizes every document of three corpora — tests/fixtures, the shared feedparser test
corpus (read in place, never copied) and a bench corpus (`python -m bench.corpus DIR`) —
once with TREE's aggregator and once with this tree's, each in its own subprocess, and
compares the normalized Items field by field (content_html, summary, url, image, title,
content_hash, ...: what the store keeps). It also compares the intermediate clean_entry
output and sorts each difference: "re-serialisation only" (one tree returned the body as it
was, the other the same body parsed and written back by bs4 with no repair applied) or a
real repair difference. With `--rounds N` it then times `bench.poll.pipeline_middle` over
the whole bench corpus in each tree, alternating, N rounds each (CPU seconds, in-process).

It never fetches anything and never writes outside a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import asdict
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
FEEDPARSER_TESTS = REPO.parent / "shared" / "corpora" / "feedparser-tests"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
URL = "https://member.example.org/feed/"


def _documents(corpus_dir: Path, smoke: bool) -> list[tuple[str, str, str, bytes, str]]:
    """(corpus, name, kind, body, url) for every document of the three corpora (two when
    `smoke`: not the shared corpus)."""
    from bench import corpus

    found: list[tuple[str, str, str, bytes, str]] = []
    shared = () if smoke else (("feedparser-tests", FEEDPARSER_TESTS),)
    for label, root in (("fixtures", FIXTURES), *shared):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            found.append((label, str(path.relative_to(root)), "feed", path.read_bytes(), URL))
    urls = corpus.source_urls(corpus_dir)
    for (kind, path), url in zip(corpus.source_files(corpus_dir), urls, strict=True):
        found.append(("bench", str(path.relative_to(corpus_dir)), kind, path.read_bytes(), url))
    return found


def _content_type(kind: str, name: str) -> str:
    if kind == "page":
        return "text/html; charset=utf-8"
    if name.endswith(".json") or kind == "jsonfeed":
        return "application/feed+json"
    return "application/xml"


def emit(corpus_dir: Path, out: Path, smoke: bool) -> None:
    """Write, for every document, the cleaned entries and the normalized Items (this
    process's aggregator, whichever tree PYTHONPATH names)."""
    from aggregator.errors import AggregatorError
    from aggregator.ingest.normalize import normalize_feed
    from aggregator.ingest.parse import parse_source
    from aggregator.ingest.site_debris import clean_entry
    from aggregator.models import FetchResult
    from aggregator.models import PageSelectors
    from aggregator.models import SourceConfig
    from bench import corpus

    selectors = PageSelectors(**corpus.PAGE_SELECTORS)
    records: list[dict[str, Any]] = []
    for label, name, kind, body, url in _documents(corpus_dir, smoke):
        source = SourceConfig(
            member_id="debris",
            kind="page" if kind == "page" else "feed",
            url=url,
            selectors=selectors if kind == "page" else None,
        )
        result = FetchResult(
            source=source,
            fetched_at=NOW,
            final_url=url,
            status=200,
            content=body,
            content_type=_content_type(kind, name),
        )
        record: dict[str, Any] = {"corpus": label, "name": name}
        try:
            parsed = parse_source(result)
            record["entries"] = [
                {
                    "content_in": entry.content_html,
                    "summary_in": entry.summary_html,
                    "content": cleaned.content_html,
                    "summary": cleaned.summary_html,
                    "link": cleaned.link,
                }
                for entry in parsed.entries
                for cleaned in (clean_entry(entry),)
            ]
            items = normalize_feed(parsed, source, NOW)
            record["items"] = [
                {key: str(value) for key, value in asdict(item).items()} for item in items
            ]
        except (AggregatorError, ValueError) as exc:
            record["error"] = type(exc).__name__
        records.append(record)
    out.write_text(json.dumps(records), encoding="utf-8")


def time_middle(corpus_dir: Path) -> None:
    """Print the CPU seconds of this tree's pipeline_middle over the whole bench corpus."""
    from aggregator.models import PageSelectors
    from bench import corpus
    from bench.poll import pipeline_middle

    bodies = [(kind, path.read_bytes()) for kind, path in corpus.source_files(corpus_dir)]
    result = pipeline_middle(
        bodies, corpus.source_urls(corpus_dir), PageSelectors(**corpus.PAGE_SELECTORS)
    )
    print(json.dumps({"seconds": result.seconds, "items": result.items}))


def _run(tree: Path, *arguments: str) -> str:
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *arguments],
        cwd=tree, env=environment, capture_output=True, text=True, check=True,
    )
    return done.stdout


def _reserialised(text: str, field: str) -> str:
    from bs4 import BeautifulSoup

    from aggregator.ingest.site_debris import _FORMATTER

    return BeautifulSoup(_strip(text, field), "html.parser").decode(
        formatter=_FORMATTER
    ).strip()


def compare(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> int:
    differences: Counter[str] = Counter()
    items: Counter[str] = Counter()
    examples: list[str] = []
    for before, after in zip(old, new, strict=True):
        where = f"{before['corpus']}/{before['name']}"
        items[before["corpus"]] += len(before.get("items", []))
        if before.get("error") != after.get("error"):
            differences["parse outcome"] += 1
            continue
        entries = zip(before.get("entries", []), after.get("entries", []), strict=True)
        for entry_a, entry_b in entries:
            for field in ("content", "summary", "link"):
                if entry_a[field] == entry_b[field]:
                    continue
                raw = entry_a.get(f"{field}_in")
                if field != "link" and raw is not None and {entry_a[field], entry_b[field]} <= {
                    _reserialised(raw, field), _strip(raw, field)
                }:
                    differences[f"clean_entry {field}: re-serialisation only"] += 1
                else:
                    differences[f"clean_entry {field}: repair differs"] += 1
                    examples.append(
                        f"{where} {field}: {entry_a[field]!r:.200} -> {entry_b[field]!r:.200}"
                    )
        item_lists = (before.get("items", []), after.get("items", []))
        if len(item_lists[0]) != len(item_lists[1]):
            differences["item count"] += 1
            continue
        for item_a, item_b in zip(*item_lists, strict=True):
            for field, value in item_a.items():
                if item_b[field] != value:
                    differences[f"Item.{field}"] += 1
                    examples.append(
                        f"{where} Item.{field}: {value!r:.300} -> {item_b[field]!r:.300}"
                    )
    print(f"documents: {len(old)}; items: {dict(items)} ({sum(items.values())} in all)")
    for name, count in sorted(differences.items()):
        print(f"  {count:6d}  {name}")
    for example in examples[:12]:
        print(f"  e.g. {example}")
    # Re-serialisation alone is acceptable when the stored Items agree; anything else is not.
    failures = sum(n for name, n in differences.items() if "re-serialisation" not in name)
    item_fields = sum(n for name, n in differences.items() if name.startswith("Item."))
    print(f"Item fields differing: {item_fields}; differences other than re-serialisation: "
          f"{failures}")
    return 1 if failures else 0


def _strip(raw: str, field: str) -> str:
    from aggregator.ingest.site_debris import strip_shortcodes

    return strip_shortcodes(raw, as_html=field == "content")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--emit", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--time", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.emit:
        emit(args.corpus, args.emit, args.smoke)
        return 0
    if args.time:
        time_middle(args.corpus)
        return 0
    if args.baseline is None and not args.smoke:
        parser.error("--baseline TREE is needed")
    if args.corpus is None and not args.smoke:
        parser.error("--corpus DIR is needed (python -m bench.corpus DIR writes one)")
    trees = {"baseline": (args.baseline or REPO).resolve(), "this tree": REPO}
    with tempfile.TemporaryDirectory() as scratch:
        corpus_dir = args.corpus
        if corpus_dir is None:
            from bench import corpus

            corpus_dir = Path(scratch) / "corpus"
            corpus.write_corpus(corpus_dir, 10, corpus.DEFAULT_SEED)
        outputs = {}
        for label, tree in trees.items():
            out = Path(scratch) / f"{label.replace(' ', '-')}.json"
            smoke = ("--smoke",) if args.smoke else ()
            _run(tree, "--emit", str(out), "--corpus", str(corpus_dir.resolve()), *smoke)
            outputs[label] = json.loads(out.read_text(encoding="utf-8"))
        status = compare(outputs["baseline"], outputs["this tree"])
        seconds: dict[str, list[float]] = {label: [] for label in trees}
        for _ in range(args.rounds):
            for label, tree in trees.items():
                line = _run(tree, "--time", "--corpus", str(corpus_dir.resolve())).strip()
                seconds[label].append(json.loads(line.splitlines()[-1])["seconds"])
    if args.rounds:
        for label, values in seconds.items():
            print(f"pipeline_middle CPU s, {label}: " + ", ".join(f"{v:.2f}" for v in values))
        middle = args.rounds // 2
        ratio = sorted(seconds["this tree"])[middle] / sorted(seconds["baseline"])[middle]
        print(f"median ratio this tree / baseline: {ratio:.2f}")
    return status


if __name__ == "__main__":
    sys.exit(main())
