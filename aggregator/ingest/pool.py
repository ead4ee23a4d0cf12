"""The CPU-bound middle of a poll (parse -> normalize), and the pool that runs it off the loop.

poll.py hands each fetched body to a ParsePool: a thread, or spawned processes over the
machine's cores when a round is big enough to use more than one. (A "pool", not a
"worker": `--role worker` is a service process, and these are not.) A pool process
unpickles parse_off_loop and so imports this module: it imports only the parse and
normalize stages, not the HTTP client, the database or the web stack, which would add
tens of megabytes to every process for nothing.

The parse and normalize stages are imported by parse_off_loop when it first runs, not with
this module: the polling process imports it for ParsePool, and must not load the parse stack
(bs4 and its builders, feedparser, nh3: 11 MB and 0.1 s of every `aggregator fetch`) before
it parses itself; in a big round it never does, and a round of 304s parses nothing.

parse_off_loop is pure: no network, no database, no clock (the fetch time travels in the
FetchResult). This module must never import aggregator.ingest.poll,
aggregator.ingest.fetch, aggregator.store or anything above the ingest stage.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

from aggregator.errors import ParseError
from aggregator.models import FetchLimits
from aggregator.models import FetchResult
from aggregator.models import Item
from aggregator.models import ParsedFeed

# Pool processes start with the first fetched body of a round of at least this many
# sources. Each costs about half a second of CPU to start (on a core the main process
# leaves idle) and 25-35 MB while the round lasts; in a round this big even a few changed
# feeds repay it: a 1,000-source re-poll with 50 changed took 4.2 s with the bodies parsed
# in a thread of the main process and 3.2 s with the pool started at the first
# (bench/README.md, "Issue 14, the final table"). A smaller round has too little to parse.
# A round in which every source answers 304 has no body and starts nothing.
PARSE_POOL_MIN_SOURCES = 100
PARSE_POOL_MAX_PROCESSES = 4


def parse_off_loop(
    result: FetchResult,
    language: str | None,
    known: frozenset[str] = frozenset(),
    limits: FetchLimits | None = None,
) -> tuple[ParsedFeed | None, list[Item], str | None]:
    """Parse then normalize: (parsed, items, None), or (None, [], cause) for a ParseError.

    The cause travels as a string because a ParseError does not survive pickling. The
    parsed entries travel only when the source's `follow` needs them, so that a feed's raw
    HTML is not sent back beside its normalized items; then they are exactly the entries
    behind `items`, in the same order, so that follow need not normalize them again.

    With the poll's `limits`, each item carries its entry digest and the entries whose
    digest is in `known` (the source's stored items') are not normalized nor returned
    (normalize.normalize_poll says when and why); without, every entry is normalized.
    """
    # Deferred (see the module's docstring): the process that parses loads the parse stack.
    from aggregator.ingest.normalize import normalize_entries
    from aggregator.ingest.normalize import normalize_poll
    from aggregator.ingest.parse import parse_source

    try:
        parsed = parse_source(result)
    except ParseError as exc:
        return None, [], exc.cause
    if limits is None:
        pairs = normalize_entries(parsed, result.source, result.fetched_at, language)
        unchanged = 0
    else:
        normalized = normalize_poll(
            parsed, result.source, result.fetched_at, language, limits=limits, known=known
        )
        pairs, unchanged = normalized.pairs, normalized.unchanged
    skipped = len(parsed.entries) - len(pairs) - unchanged
    if skipped:
        # Said on the poll report and /status: a feed that suddenly sends empty items is
        # broken or tampered with, and its stored stories were kept as they were.
        note = f"{skipped} items with nothing to show (no title, no text) were skipped"
        parsed = replace(parsed, warning=f"{parsed.warning}; {note}" if parsed.warning else note)
    entries = tuple(entry for entry, _ in pairs) if result.source.follow else ()
    return replace(parsed, entries=entries), [item for _, item in pairs], None


def parse_process_count(cores: int) -> int:
    """How many parse processes a machine with `cores` gets: one core is left to the main
    process, and never more than PARSE_POOL_MAX_PROCESSES.

    The main process is busy too: it fetches, and its writer thread matches every new item
    against the stored stories, which is most of a first poll's CPU (bench/README.md, "Profile
    of the redesigned poll"). A process more than the cores left to it mostly waits for the
    main process, and costs about 30 MB for the whole poll (bench/README.md, "Issue 14:
    where a first poll's memory is").
    """
    return max(1, min(cores - 1, PARSE_POOL_MAX_PROCESSES))


def parse_processes(count: int) -> ProcessPoolExecutor:
    """`count` spawned processes for parse_off_loop (see ParsePool on why spawned).

    Each starts a fresh interpreter that imports this module (to unpickle parse_off_loop)
    and runs the program's main script again, as spawn does: the `aggregator` console
    script imports only the empty shell of aggregator.cli (its names load on first use),
    and `python -m aggregator.cli` is not run again at all (spawn leaves a package's
    __main__ alone), so a process holds the parse and normalize stages and no more
    (tests/ingest/test_pool_processes.py).
    """
    # Niced: a web process on the same machine (`run --role all`'s) gets the CPU first.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(count, mp_context=context, initializer=os.nice, initargs=(10,))


class ParsePool:
    """Runs parse_off_loop off the event loop, so that downloads go on meanwhile.

    In a round of at least PARSE_POOL_MIN_SOURCES sources, in worker processes over the
    cores the main process leaves (parse_process_count), started by the round's first body
    (bodies wait in the pool's queue while they start); in a smaller round, or on one
    core, in a thread (the main process's GIL, shared with fetching and the writer). They are
    spawned, not forked (forking a process that runs threads can deadlock). Like any
    spawned pool they re-import the program's main module, so a script that polls must
    keep its work under `if __name__ == "__main__":` (the CLI does); if they cannot start
    or one dies, parsing goes back to threads. Call close() when the round is over.
    """

    def __init__(self, sources: int) -> None:
        self._cores = os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._pool_usable = self._cores > 1 and sources >= PARSE_POOL_MIN_SOURCES

    async def __call__(
        self,
        result: FetchResult,
        language: str | None,
        known: frozenset[str] = frozenset(),
        limits: FetchLimits | None = None,
    ) -> tuple[ParsedFeed | None, list[Item], str | None]:
        if self._pool_usable:
            if self._pool is None:
                self._pool = parse_processes(parse_process_count(self._cores))
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(
                    self._pool, parse_off_loop, result, language, known, limits
                )
            except BrokenProcessPool:
                self._pool_usable = False
        return await asyncio.to_thread(parse_off_loop, result, language, known, limits)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
