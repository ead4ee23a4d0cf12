"""The writer's apply of a first poll, another tree against this one: CPU, and what is stored.

    python -m bench.apply --corpus DIR --baseline TREE [--rounds N]
    python -m bench.apply --smoke   # this tree against itself, 5 sites, one round

It parses and normalizes every source of a bench corpus (`python -m bench.corpus DIR`) once,
in this process, into a first poll's SourceIntents (a 200 whose items are all new), and
pickles them with the corpus's configuration. Then, for each round, each tree in turn in a
subprocess of its own (PYTHONPATH set to the tree, this file run by path, so it imports only
that tree's aggregator): a fresh SQLite database, sync_config, then Store.apply_intents over
the intents in batches of the writer's size, in the corpus's order, timed (CPU seconds of
that process during the applies: the writer's work alone, story matching included, without
fetching or parsing). Each subprocess also writes every row it stored (items, stories,
item_tags, story_keys and the sources' poll columns, ids included) and the trees' rows are
compared: "identical" means both stored the same rows under the same ids.

It never fetches anything and never writes outside a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

# The stored rows compared between trees, each table in its primary key's order.
DUMPED = {
    "items": "id",
    "stories": "id",
    "item_tags": "item_id, tag",
    "story_keys": "item_id, key",
    "sources": "id",
}
SOURCE_COLUMNS = ("id", "url", "body_hash", "last_new_item_at", "last_success_at")
BATCH = 50  # store/writer.py BATCH_SOURCES, fixed here so both trees batch alike
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SMOKE_SITES = 5


def build_intents(corpus_dir: Path, sites: int | None) -> tuple[Any, list[Any]]:
    """The corpus's configuration and a first poll's intents, one per source."""
    from aggregator.config.load import load_config
    from aggregator.errors import ParseError
    from aggregator.ingest.normalize import normalize_feed
    from aggregator.ingest.parse import parse_source
    from aggregator.models import FetchResult
    from aggregator.models import IntentKind
    from aggregator.models import SourceIntent
    from bench import corpus
    from bench.poll import CONTENT_TYPES

    config = load_config(corpus_dir / "feeds.yaml")
    sources = [source for member in config.members for source in member.sources]
    files = corpus.source_files(corpus_dir)
    intents = []
    for source, (kind, path) in list(zip(sources, files, strict=True))[:sites]:
        result = FetchResult(
            source=source,
            fetched_at=NOW,
            final_url=source.url,
            status=200,
            content=path.read_bytes(),
            content_type=CONTENT_TYPES[kind],
        )
        try:
            items = normalize_feed(parse_source(result), source, NOW)
        except ParseError as exc:
            print(f"  {source.url}: parse failed: {exc}", file=sys.stderr)
            continue
        intents.append(SourceIntent(result=result, kind=IntentKind.ITEMS, items=tuple(items)))
    return config, intents


def worker(pickled: Path, database: Path, dump: Path) -> None:
    """In the tree under measurement: apply the intents to a fresh database, print the
    timing as one JSON line, write the stored rows to `dump`."""
    from sqlalchemy import text

    from aggregator.store import Store

    with pickled.open("rb") as handle:
        config, intents = pickle.load(handle)
    store = Store.open(f"sqlite:///{database}")
    try:
        store.sync_config(config)
        cpu, wall = time.process_time(), time.perf_counter()
        applied = []
        for start in range(0, len(intents), BATCH):
            applied += store.apply_intents(intents[start : start + BATCH])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        rows: dict[str, list[list[str]]] = {}
        with store.engine.connect() as connection:
            for table, order in DUMPED.items():
                columns = ", ".join(SOURCE_COLUMNS) if table == "sources" else "*"
                found = connection.execute(text(f"SELECT {columns} FROM {table} ORDER BY {order}"))
                rows[table] = [[str(value) for value in row] for row in found]
    finally:
        store.close()
    dump.write_text(json.dumps(rows), encoding="utf-8")
    errors = [result.error for result in applied if result.error]
    new = sum(result.stored.new for result in applied)
    print(json.dumps({"cpu": cpu, "wall": wall, "new": new, "errors": errors}))


def run_tree(tree: Path, pickled: Path, workdir: Path, label: str) -> tuple[dict[str, Any], Path]:
    database = workdir / f"{label}.db"
    database.unlink(missing_ok=True)
    dump = workdir / f"{label}.json"
    from bench.poll import aggregator_env

    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(pickled)]
    finished = subprocess.run(
        [*command, str(database), str(dump)],
        env=aggregator_env(tree),
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise SystemExit(f"{label} failed:\n{finished.stderr}")
    return json.loads(finished.stdout.strip().splitlines()[-1]), dump


def differences(first: Path, second: Path) -> list[str]:
    """Per table, how the two trees' stored rows differ (nothing: identical)."""
    one = json.loads(first.read_text(encoding="utf-8"))
    two = json.loads(second.read_text(encoding="utf-8"))
    found = []
    for table in DUMPED:
        if one[table] != two[table]:
            differing = sum(a != b for a, b in zip(one[table], two[table], strict=False))
            found.append(
                f"{table}: {len(one[table])} vs {len(two[table])} rows, "
                f"{differing} differing in the first {min(len(one[table]), len(two[table]))}"
            )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, help="a bench corpus (python -m bench.corpus DIR)")
    parser.add_argument("--baseline", type=Path, help="the other tree (default: this one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sites", type=int, help="only the first SITES sources")
    parser.add_argument("--smoke", action="store_true", help="5 sites, 1 round, this tree")
    parser.add_argument("--worker", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    this = Path(__file__).resolve().parents[1]
    baseline = args.baseline or this
    with tempfile.TemporaryDirectory(prefix="bench-apply-") as directory:
        workdir = Path(directory)
        corpus_dir = args.corpus
        sites, rounds = args.sites, args.rounds
        if args.smoke:
            from bench import corpus

            corpus_dir = workdir / "corpus"
            corpus.write_corpus(corpus_dir, SMOKE_SITES, corpus.DEFAULT_SEED)
            corpus.write_feeds_yaml(corpus_dir, corpus.DEFAULT_BASE_URL)
            sites, rounds = SMOKE_SITES, 1
        if corpus_dir is None:
            parser.error("--corpus DIR (or --smoke)")
        from bench.harness import load_line
        from bench.harness import machine_line

        print(f"machine: {machine_line()}")
        print(f"at start: {load_line()}")
        config, intents = build_intents(corpus_dir, sites)
        pickled = workdir / "intents.pickle"
        with pickled.open("wb") as handle:
            pickle.dump((config, intents), handle)
        items = sum(len(intent.items) for intent in intents)
        print(f"{len(intents)} sources, {items} items; baseline {baseline}, this tree {this}")
        cpu: dict[str, list[float]] = {"baseline": [], "this": []}
        for number in range(rounds):
            # Alternating, the baseline first in odd rounds: a trend in the machine's load
            # falls on both trees alike.
            order = [("baseline", baseline), ("this", this)]
            for label, tree in order if number % 2 == 0 else order[::-1]:
                measured, _dump = run_tree(tree, pickled, workdir, label)
                cpu[label].append(measured["cpu"])
                print(
                    f"round {number + 1} {label}: CPU {measured['cpu']:.2f} s, wall "
                    f"{measured['wall']:.2f} s, {measured['new']} new, "
                    f"{len(measured['errors'])} errors"
                )
        diff = differences(workdir / "baseline.json", workdir / "this.json")
        print("stored rows: " + ("identical" if not diff else "DIFFERENT: " + "; ".join(diff)))
        old, new = statistics.median(cpu["baseline"]), statistics.median(cpu["this"])
        print(f"median CPU: baseline {old:.2f} s, this tree {new:.2f} s ({old / new:.2f}x)")
        print(f"at end: {load_line()}")
        return 0 if not diff else 1


if __name__ == "__main__":
    sys.exit(main())
