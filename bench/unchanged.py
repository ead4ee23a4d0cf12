"""What skipping a changed feed's stored entries saves in the parse+normalize stage (issue 14).

    python -m bench.corpus DIR                  # a corpus (bench/README.md)
    python -m bench.unchanged DIR --bodies 50 --rounds 2

Each of the first `--bodies` sources of the corpus is taken as a changed feed whose entries
are all stored but its first (one new entry among those polled before): parse_off_loop runs
with no known digests (every entry normalized, as before the skip) and with the other
entries' digests (normalize.normalize_poll skips them), in interleaved rounds, and the
process CPU time of each is printed with the items each made. No network, no database.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from pathlib import Path

from aggregator.ingest.normalize import entry_digests
from aggregator.ingest.parse import parse_source
from aggregator.ingest.pool import parse_off_loop
from aggregator.models import FetchLimits
from aggregator.models import FetchResult
from aggregator.models import PageSelectors
from bench import corpus
from bench.poll import corpus_fetch_result


def cases(root: Path, count: int, limits: FetchLimits) -> list[tuple[FetchResult, frozenset[str]]]:
    """(fetched body, digests of all its entries but the first) for the first `count` sources."""
    now = datetime.now(UTC)
    selectors = PageSelectors(**corpus.PAGE_SELECTORS)
    bodies = [(kind, path.read_bytes()) for kind, path in corpus.source_files(root)][:count]
    found = []
    for (kind, body), url in zip(bodies, corpus.source_urls(root)[:count], strict=True):
        result = corpus_fetch_result(kind, body, url, selectors, now)
        digests = entry_digests(parse_source(result), result.source, None, limits)
        found.append((result, frozenset(digests[1:])))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--bodies", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    limits = FetchLimits()
    polls = cases(args.corpus, args.bodies, limits)
    every = skipping = 0.0
    made = {"every": 0, "skipping": 0}
    for _ in range(args.rounds):
        started = time.process_time()
        made["every"] = sum(len(parse_off_loop(r, None, frozenset(), limits)[1]) for r, _ in polls)
        every += time.process_time() - started
        started = time.process_time()
        made["skipping"] = sum(len(parse_off_loop(r, None, known, limits)[1]) for r, known in polls)
        skipping += time.process_time() - started
    print(
        f"{len(polls)} bodies x {args.rounds} rounds (process CPU):\n"
        f"  every entry normalized:  {every:6.2f} s, {made['every']} items a round\n"
        f"  stored entries skipped:  {skipping:6.2f} s, {made['skipping']} items a round\n"
        f"  ratio {every / skipping:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
