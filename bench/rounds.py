"""Unchanged poll rounds of the aggregator inside one process: what `aggregator run` pays per
round once it is up (no interpreter start-up, imports or feeds.yaml read in the timing).

    python bench/rounds.py CONFIG DATABASE ROUNDS [--function MODULE:NAME]

bench.poll runs it by path in a subprocess, with PYTHONPATH set to the tree being measured
(this checkout or a `--baseline` tree), so it imports nothing from `bench` and only the
aggregator's public entry points. In one process it loads the configuration, opens the store
and one Fetcher (as the service does), runs one round untimed (the first poll when the
database is empty, else a warm-up), then times ROUNDS rounds, and prints one JSON line: the
round function used and each timed round's wall and CPU seconds (this process's threads and
any child it reaped).

The round function is looked up by name, because the ingest redesign may rename it: the
first of ROUND_FUNCTIONS that exists (or `--function`), called with the arguments its
signature names among config, store, fetcher and sources. If none exists, it says so and
exits 2 rather than timing something else.

It must never be imported by the package or the tests, and it only ever polls the sources of
the configuration it is given (the benchmark's, all on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from aggregator.errors import AggregatorError

# Newest first: the redesign's round (names it may take), then today's poll_all.
ROUND_FUNCTIONS = (
    "aggregator.ingest.round:poll_round",
    "aggregator.ingest.round:run_round",
    "aggregator.ingest.poll:poll_round",
    "aggregator.ingest.poll:run_round",
    "aggregator.ingest.poll:poll_all",
)
EXIT_NO_FUNCTION = 2


class RoundFunctionError(AggregatorError):
    """None of the round functions this script knows exists in the tree measured."""


def round_function(names: Sequence[str]) -> tuple[str, Callable[..., Any]]:
    """The first of `names` ("module:function") that the tree under measurement has."""
    tried = []
    for name in names:
        module_name, _, attribute = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only the module itself being absent means "try the next name"; a missing
            # dependency inside an existing module is a real failure.
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            tried.append(f"{name} (no module {exc.name})")
            continue
        function = getattr(module, attribute, None)
        if callable(function):
            return name, function
        tried.append(f"{name} (no such function)")
    raise RoundFunctionError("no round function found: tried " + "; ".join(tried))


def round_arguments(function: Callable[..., Any], available: dict[str, object]) -> dict[str, Any]:
    """The keyword arguments `function` takes among `available`; every parameter it requires
    must be one of them, or the call would measure a guess."""
    arguments: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if parameter.name in available:
            arguments[parameter.name] = available[parameter.name]
        elif parameter.default is parameter.empty:
            raise RoundFunctionError(
                f"{function.__module__}.{function.__qualname__} requires {parameter.name!r}, "
                f"which this script cannot provide (it knows {', '.join(available)})"
            )
    return arguments


def outcomes(result: object) -> dict[str, int]:
    """How many sources ended how, when the round returns reports (else empty)."""
    if not isinstance(result, list | tuple):
        return {}
    counted: Counter[str] = Counter()
    for report in result:
        outcome = getattr(report, "outcome", None)
        counted[str(getattr(outcome, "value", outcome))] += 1
    return dict(counted)


def cpu_now() -> float:
    """This process's CPU (every thread) plus that of the children it reaped."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


async def timed_rounds(
    config: object, database: str, rounds: int, names: Sequence[str]
) -> dict[str, object]:
    from aggregator.ingest.fetch import Fetcher
    from aggregator.ingest.poll import selected_sources
    from aggregator.store import Store

    name, function = round_function(names)
    store = Store.open(database)
    try:
        store.sync_config(config)  # type: ignore[arg-type]  # a Config, typed loosely here
        limits = config.network.limits  # type: ignore[attr-defined]
        async with Fetcher(limits) as fetcher:
            available: dict[str, object] = {
                "config": config,
                "store": store,
                "fetcher": fetcher,
                "sources": selected_sources(config),  # type: ignore[arg-type]
            }
            arguments = round_arguments(function, available)
            measured = []
            warmup: dict[str, object] = {}
            for index in range(rounds + 1):
                wall_started, cpu_started = time.perf_counter(), cpu_now()
                result = await function(**arguments)
                wall, cpu = time.perf_counter() - wall_started, cpu_now() - cpu_started
                # Round 0 is the untimed warm-up (or the first poll).
                if index:
                    measured.append({"wall": wall, "cpu": cpu, "outcomes": outcomes(result)})
                else:
                    warmup = {"wall": wall, "cpu": cpu, "outcomes": outcomes(result)}
    finally:
        store.close()
    return {"function": name, "warmup": warmup, "rounds": measured}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("database", help="SQLAlchemy URL, e.g. sqlite:////tmp/x.db")
    parser.add_argument("rounds", type=int)
    parser.add_argument("--function", action="append", help="MODULE:NAME to try first")
    args = parser.parse_args(argv)
    from aggregator.config import load_config

    config = load_config(args.config)
    names = [*(args.function or []), *ROUND_FUNCTIONS]
    try:
        report = asyncio.run(timed_rounds(config, args.database, args.rounds, names))
    except RoundFunctionError as exc:
        print(f"rounds: {exc}", file=sys.stderr)
        return EXIT_NO_FUNCTION
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    # The guard matters: a spawned parse pool re-imports this script as its main module.
    raise SystemExit(main())
