"""Poll benchmark: the whole pipeline over a generated corpus, against `reader` and the floor.

    python -m bench.poll                # 1,000 sources (needs ~2 GB of /tmp, ~3 min)
    python -m bench.poll --smoke        # 12 sources, for CI; reader only if --peer-python

One run, so that the ratios compare like with like:
1. the floor: feedparser parsing every corpus body in this process, no network or database
   (default settings, then with sanitize_html and resolve_relative_uris off); JSON Feed
   bodies through json.loads and HTML pages through lxml.html, which is all a parser needs;
2. the aggregator's own parse+normalize over the same bodies in this process (what of the
   pipeline is CPU-bound middle, for the profile);
3. phases, each a fresh subprocess per tool, interleaved so both see the same corpus state:
   first poll (everything new), re-poll with nothing changed (all 304), re-poll after
   `bench.corpus --changed 0.05`. The aggregator runs as `aggregator fetch` (the command a
   cron job or the scheduler runs, start-up included); the peer `reader` (lemon24) runs
   `update_feeds(workers=N, scheduled=False)` from its own virtualenv.

Each phase reports wall time, CPU time (user+system of the process and every child it
reaped, from wait4), peak RSS of all its processes together (sampled from /proc every
0.1 s and summed over the process tree; never below getrusage's ru_maxrss), sources/s and
items/s. The web server is nginx when installed (else the project's FixtureServer).

It only ever talks to 127.0.0.1 and stops every server it starts.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path

import feedparser
import lxml.html

import aggregator
from aggregator.errors import ParseError
from aggregator.ingest.normalize import normalize_feed
from aggregator.ingest.parse import parse_source
from aggregator.models import FetchLimits
from aggregator.models import FetchResult
from aggregator.models import PageSelectors
from aggregator.models import SourceConfig
from bench import corpus
from bench.harness import Measurement
from bench.harness import StaticServer
from bench.harness import exit_on_sigterm
from bench.harness import machine_line
from bench.harness import megabytes
from bench.harness import run_measured
from bench.harness import say
from bench.harness import table

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_PEER_VENV = BENCH_DIR / ".venv-peer"
PEER_REQUIREMENTS = ("reader==3.26", "feedparser==6.0.14", "sgmllib3k")
SMOKE_SITES = 12
# Ports standing for member web hosts (see StaticServer): enough that the fetcher's
# per-host limit never binds before its global concurrency does.
HOSTS = 32
CHANGED_FRACTION = 0.05
CONTENT_TYPES = {
    "wordpress": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "rss10": "application/rdf+xml; charset=utf-8",
    "jsonfeed": "application/feed+json; charset=utf-8",
    "page": "text/html; charset=utf-8",
}
_SUMMARY = re.compile(
    r"(?P<sources>\d+) sources: .*?(?P<failed>\d+) failed; (?P<new>\d+) new items, "
    r"(?P<updated>\d+) updated items"
)

# Runs inside the peer's virtualenv: argv = database, urls file, workers, "first"|"again".
READER_SCRIPT = """\
import json, sys
from reader import make_reader
database, urls_path, workers, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
reader = make_reader(database)
if mode == "first":
    for url in open(urls_path, encoding="utf-8").read().split():
        reader.add_feed(url, exist_ok=True)
new = modified = unchanged = errors = feeds = 0
for result in reader.update_feeds_iter(workers=workers, scheduled=False):
    feeds += 1
    value = result.value
    if value is None:
        unchanged += 1
    elif isinstance(value, Exception):
        errors += 1
    else:
        new += value.new
        modified += value.modified
        unchanged += not (value.new or value.modified)
total = reader.get_entry_counts().total
reader.close()
print(json.dumps({"new": new, "modified": modified, "unchanged": unchanged,
                  "errors": errors, "entries": total, "feeds": feeds}))
"""


@dataclass(frozen=True)
class Phase:
    tool: str
    name: str
    sources: int
    items: int  # new + updated items this phase stored
    failed: int
    run: Measurement

    @property
    def items_per_second(self) -> float:
        return self.items / self.run.wall if self.run.wall else 0.0


@dataclass(frozen=True)
class FloorResult:
    name: str
    seconds: float  # CPU seconds in this process
    per_source_ms: float
    items: int
    xml_ms: float | None = None  # per RSS/Atom/RDF body, parser alone


# --- the floor and the middle, in this process ------------------------------------------


def floor_parse(
    bodies: Sequence[tuple[str, bytes]], *, name: str, feed_parse: Callable[[bytes], int]
) -> FloorResult:
    """Parse every body once with the cheapest reader of its kind; CPU time of this process."""
    items = 0
    xml = 0.0
    started = time.process_time()
    for kind, body in bodies:
        if kind == "jsonfeed":
            items += len(json.loads(body)["items"])
        elif kind == "page":
            items += len(lxml.html.fromstring(body).find_class("news-card"))
        else:
            xml_started = time.process_time()
            items += feed_parse(body)
            xml += time.process_time() - xml_started
    seconds = time.process_time() - started
    xml_count = sum(kind not in ("jsonfeed", "page") for kind, _ in bodies)
    return FloorResult(
        name, seconds, seconds / len(bodies) * 1000, items, xml / max(xml_count, 1) * 1000
    )


def feedparser_default(body: bytes) -> int:
    return len(feedparser.parse(io.BytesIO(body)).entries)


def feedparser_raw(body: bytes) -> int:
    parsed = feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
    return len(parsed.entries)


def fastfeedparser_parse(body: bytes) -> int:
    import fastfeedparser  # type: ignore[import-untyped,unused-ignore]  # optional

    return len(fastfeedparser.parse(body)["entries"])


def pipeline_middle(
    bodies: Sequence[tuple[str, bytes]], urls: Sequence[str], selectors: PageSelectors
) -> FloorResult:
    """The aggregator's parse_source + normalize_feed over every body, no I/O."""
    now = datetime.now(UTC)
    items = 0
    started = time.process_time()
    for (kind, body), url in zip(bodies, urls, strict=True):
        source = SourceConfig(
            member_id="bench",
            kind="page" if kind == "page" else "feed",
            url=url,
            selectors=selectors if kind == "page" else None,
        )
        result = FetchResult(
            source=source,
            fetched_at=now,
            final_url=url,
            status=200,
            content=body,
            content_type=CONTENT_TYPES[kind],
        )
        try:
            items += len(normalize_feed(parse_source(result), source, now))
        except ParseError as exc:
            say(f"  parse failed: {exc}")
    seconds = time.process_time() - started
    return FloorResult("aggregator parse+normalize", seconds, seconds / len(bodies) * 1000, items)


# --- the phases, in subprocesses ---------------------------------------------------------


def aggregator_env(tree: Path | None = None) -> dict[str, str]:
    """The environment that makes a subprocess import the aggregator from `tree` (default:
    the code this process runs; an installed copy in the virtualenv could shadow it)."""
    root = tree or Path(aggregator.__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": str(root.resolve())}


def aggregator_phase(
    name: str, config: Path, database: str, sources: int, *, tree: Path | None = None
) -> Phase:
    command = [sys.executable, "-m", "aggregator.cli", "--config", str(config)]
    # The tree's root as working directory: `python -m` puts it first on sys.path, before
    # PYTHONPATH, so any other directory could shadow the tree being measured.
    root = (tree or Path(aggregator.__file__).resolve().parents[1]).resolve()
    run = run_measured(
        [*command, "--database", database, "fetch"], env=aggregator_env(tree), cwd=root
    )
    match = _SUMMARY.search(run.stdout)
    if run.returncode != 0 or match is None:
        raise RuntimeError(f"aggregator fetch failed ({run.returncode}): {run.stderr[-2000:]}")
    for line in run.stdout.splitlines():
        if ": broken: " in line:
            say(f"    {line}")
    return Phase(
        tool="aggregator" if tree is None else tree.name,
        name=name,
        sources=sources,
        items=int(match["new"]) + int(match["updated"]),
        failed=int(match["failed"]),
        run=run,
    )


def reader_phase(
    name: str, python: Path, script: Path, database: Path, urls: Path, workers: int, mode: str
) -> Phase:
    run = run_measured(
        [str(python), str(script), str(database), str(urls), str(workers), mode],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if run.returncode != 0:
        raise RuntimeError(f"reader failed ({run.returncode}): {run.stderr[-2000:]}")
    counts = json.loads(run.stdout.strip().splitlines()[-1])
    return Phase(
        tool="reader",
        name=name,
        sources=int(counts["feeds"]),
        items=int(counts["new"]) + int(counts["modified"]),
        failed=int(counts["errors"]),
        run=run,
    )


def peer_python(requested: Path | None, setup: bool) -> Path | None:
    """The peer virtualenv's python, creating it with --setup-peer; None when unavailable."""
    if requested is not None:
        return requested if requested.exists() else None
    python = DEFAULT_PEER_VENV / "bin" / "python"
    if not python.exists() and setup:
        say(f"creating {DEFAULT_PEER_VENV} with {' '.join(PEER_REQUIREMENTS)} …")
        venv.create(DEFAULT_PEER_VENV, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS], check=True
        )
    return python if python.exists() else None


def peer_version(python: Path) -> str:
    done = subprocess.run(
        [str(python), "-c", "import reader; print(reader.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def stored_counts(database: Path) -> tuple[int, int]:
    with sqlite3.connect(database) as connection:
        items = connection.execute("select count(*) from items").fetchone()[0]
        stories = connection.execute("select count(*) from stories").fetchone()[0]
    return int(items), int(stories)


# --- reporting ------------------------------------------------------------------------


def phase_row(phase: Phase) -> list[object]:
    run = phase.run
    return [
        f"{phase.tool}: {phase.name}",
        f"{run.wall:.2f}",
        f"{run.cpu:.2f}",
        megabytes(run.peak_tree_rss),
        megabytes(run.peak_tree_pss),
        run.processes,
        f"{phase.sources / run.wall:.0f}",
        f"{phase.items_per_second:.0f}",
        phase.items,
        phase.failed,
    ]


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}×" if denominator > 0 else "n/a"


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Poll benchmark (see bench/README.md).")
    parser.add_argument("--sites", type=int, default=corpus.DEFAULT_SITES)
    parser.add_argument("--seed", type=int, default=corpus.DEFAULT_SEED)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_SITES} sites, quick")
    parser.add_argument("--workdir", type=Path, help="keep the corpus and databases here")
    parser.add_argument("--no-nginx", action="store_true", help="serve with FixtureServer")
    parser.add_argument("--peer-python", type=Path, help="python of a venv with `reader`")
    parser.add_argument(
        "--setup-peer",
        action="store_true",
        help=f"create {DEFAULT_PEER_VENV.relative_to(BENCH_DIR.parent)} with reader if missing",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the reader comparison")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="TREE",
        action="append",
        default=[],
        help="also run every phase with the aggregator package found in TREE (e.g. "
        "`git archive HEAD | tar -x -C TREE`), for before/after figures in one run; "
        "repeatable, each named by its directory's name",
    )
    args = parser.parse_args(argv)
    exit_on_sigterm()
    sites = SMOKE_SITES if args.smoke else args.sites
    workers = FetchLimits().concurrency

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-poll-"))
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    try:
        return run(args, sites, workers, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, sites: int, workers: int, workdir: Path) -> int:
    root = workdir / "corpus"
    manifest = corpus.write_corpus(root, sites, args.seed)
    say(f"machine: {machine_line()}")
    say(
        f"corpus: {manifest.sites} sources {manifest.formats}, {manifest.items} items "
        f"({manifest.cross_post_items} cross-posts), {manifest.bytes / 1e6:.1f} MB, "
        f"seed {manifest.seed}"
    )
    python = None if args.no_peer else peer_python(args.peer_python, args.setup_peer)
    if python is None and not args.no_peer:
        say("peer: reader not run (no virtualenv with it: pass --peer-python or --setup-peer)")

    bodies = [(kind, path.read_bytes()) for kind, path in corpus.source_files(root)]
    selectors = PageSelectors(**corpus.PAGE_SELECTORS)
    with StaticServer(root, use_nginx=not args.no_nginx, hosts=HOSTS) as server:
        say(f"server: {server.description} at {server.base_url}")
        config = corpus.write_feeds_yaml(root, server.base_urls)
        urls = corpus.source_urls(root)
        say("\nfloor (this process, CPU time, no network or database):")
        floors = [
            floor_parse(bodies, name="feedparser default", feed_parse=feedparser_default),
            floor_parse(bodies, name="feedparser no sanitize/resolve", feed_parse=feedparser_raw),
            pipeline_middle(bodies, urls, selectors),
        ]
        if importlib.util.find_spec("fastfeedparser") is not None:
            floors.append(
                floor_parse(
                    bodies, name="fastfeedparser (not used)", feed_parse=fastfeedparser_parse
                )
            )
        floor_rows = [
            [
                f.name,
                f"{f.seconds:.2f}",
                f"{f.per_source_ms:.2f}",
                "" if f.xml_ms is None else f"{f.xml_ms:.2f}",
                f.items,
                f"{f.items / f.seconds:.0f}",
            ]
            for f in floors
        ]
        say(table(["parser", "CPU s", "ms/source", "ms/XML feed", "items", "items/s"], floor_rows))
        database_path = workdir / "aggregator.db"
        database = f"sqlite:///{database_path}"
        reader_db = workdir / "reader.sqlite"
        urls_file = workdir / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n", encoding="utf-8")
        script = workdir / "reader_poll.py"
        script.write_text(READER_SCRIPT, encoding="utf-8")
        if python is not None:
            say(f"peer: reader {peer_version(python)} via {python}, workers={workers}")
        for tree in args.baseline:
            say(f"baseline {tree.name}: the aggregator package in {tree}, same phases")
        say(f"aggregator: `aggregator fetch` in a subprocess, Fetcher concurrency {workers}\n")

        startup = run_measured(
            [sys.executable, "-m", "aggregator.cli", "--version"], env=aggregator_env()
        )
        phases: list[Phase] = []

        def both(name: str, mode: str) -> None:
            for tree in args.baseline:
                tree_db = f"sqlite:///{workdir / f'baseline-{tree.name}.db'}"
                phases.append(aggregator_phase(name, config, tree_db, sites, tree=tree))
                say(f"  done: {tree.name} {name}: {phases[-1].run.wall:.2f} s")
            phases.append(aggregator_phase(name, config, database, sites))
            say(f"  done: aggregator {name}: {phases[-1].run.wall:.2f} s")
            if python is not None:
                phases.append(
                    reader_phase(name, python, script, reader_db, urls_file, workers, mode)
                )
                say(f"  done: reader {name}: {phases[-1].run.wall:.2f} s")

        both("first poll", "first")
        stored = stored_counts(database_path)
        both("unchanged re-poll", "again")
        changed_manifest, changed = corpus.change_corpus(root, CHANGED_FRACTION)
        both(f"re-poll, {len(changed)} changed", "again")

    say("\n" + table(HEADERS, [phase_row(phase) for phase in phases]))
    say(
        f"\naggregator start-up alone (`aggregator --version`): {startup.wall:.2f} s wall, "
        f"{startup.cpu:.2f} s CPU, {megabytes(startup.peak_tree_rss)}"
    )
    say(
        f"stored after the first poll: {stored[0]} items in {stored[1]} stories "
        f"(corpus: {manifest.items} items, {manifest.cross_post_items} of them cross-posts); "
        f"after the change: {changed_manifest.items} items in the corpus"
    )
    report_ratios(phases, floors)
    return 0


HEADERS = [
    "phase",
    "wall s",
    "CPU s",
    "peak RSS",
    "peak PSS",
    "procs",
    "sources/s",
    "items/s",
    "items",
    "failed",
]


def report_ratios(phases: Sequence[Phase], floors: Sequence[FloorResult]) -> None:
    ours = {phase.name: phase for phase in phases if phase.tool == "aggregator"}
    theirs = {phase.name: phase for phase in phases if phase.tool == "reader"}
    others = [phase for phase in phases if phase.tool not in ("aggregator", "reader")]
    first = next(iter(ours.values()))
    raw_floor = floors[1].seconds
    say("\nratios (same run):")
    for phase in others:
        now = ours[phase.name]
        say(
            f"  {phase.name}: aggregator {ratio(phase.run.wall, now.run.wall)} faster than "
            f"{phase.tool} (wall {phase.run.wall:.2f} -> {now.run.wall:.2f} s, CPU "
            f"{phase.run.cpu:.2f} -> {now.run.cpu:.2f} s, peak PSS "
            f"{megabytes(phase.run.peak_tree_pss)} -> {megabytes(now.run.peak_tree_pss)})"
        )
    say(
        f"  first poll vs floor (feedparser, sanitizer off, one core {raw_floor:.2f} s): "
        f"{ratio(first.run.wall, raw_floor)} its wall time; vs the floor spread over both "
        f"cores ({raw_floor / 2:.2f} s): {ratio(first.run.wall, raw_floor / 2)} "
        f"(target ≤ 1.5×: {verdict(first.run.wall <= 1.5 * raw_floor / 2)})"
    )
    if not theirs:
        say("  reader: not run, no ratios against the peer")
        return
    for name, phase in ours.items():
        peer = theirs.get(name)
        if peer is None:
            continue
        speed = peer.run.wall / phase.run.wall
        line = (
            f"  {name}: aggregator is {speed:.2f}× reader's speed (wall), "
            f"CPU {ratio(phase.run.cpu, peer.run.cpu)} of reader's, "
            f"peak RSS {ratio(phase.run.peak_tree_rss, peer.run.peak_tree_rss)} of reader's"
        )
        if name in ("first poll", "unchanged re-poll"):
            line += f" (speed target ≥ 3×: {verdict(speed >= 3)})"
        say(line)
    for label, field in (
        ("RSS summed over processes", "peak_tree_rss"),
        ("PSS summed over processes", "peak_tree_pss"),
    ):
        peak = max(int(getattr(phase.run, field)) for phase in ours.values())
        peer_peak = max(int(getattr(phase.run, field)) for phase in theirs.values())
        say(
            f"  peak memory ({label}), all phases: {megabytes(peak)} vs reader "
            f"{megabytes(peer_peak)} = {ratio(peak, peer_peak)} "
            f"(target ≤ 3×: {verdict(peak <= 3 * peer_peak)})"
        )


if __name__ == "__main__":
    raise SystemExit(main())
