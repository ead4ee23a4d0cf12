"""Start-up benchmark: what a command pays before it does its work, this tree against another.

    python -m bench.startup --baseline OLD_TREE        # 1,000-source feeds.yaml, 7 rounds
    python -m bench.startup --smoke                    # 12 sources, 2 rounds, for CI

Each figure is the median CPU time (user + system, from wait4) and wall time of a fresh
`python -m aggregator.cli` process (the command a cron job runs), the trees taking turns
(A B A B ...) so that both see the same machine load; a ratio is the median of the
per-round ratios. CPU time is the figure to read on a loaded machine: wall time there is
mostly waiting for a core. Measured:

* `--version`, `check` of config/feeds.yaml and of a generated 1,000-source feeds.yaml
  (bench.corpus writes it);
* the start of `fetch`: from exec to the first HTTP request (the moment a listening socket
  on 127.0.0.1 accepts the fetcher's first connection; the process is then stopped). Its
  database already holds the sources (a first run synced them), so this is the start-up
  part of an unchanged re-poll: imports, reading feeds.yaml, opening and syncing the store.

It only ever listens on and connects to 127.0.0.1 and stops every process it starts.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

import aggregator
from bench import corpus
from bench.harness import LOOPBACK
from bench.harness import load_line
from bench.harness import machine_line
from bench.harness import say
from bench.harness import table

FIRST_REQUEST_TIMEOUT = 120.0  # seconds: a fetch that never connects is a failure, not a figure
SMOKE_SITES = 12


def tree_of(path: Path | None) -> Path:
    return (path or Path(aggregator.__file__).resolve().parents[1]).resolve()


def cli(tree: Path, *arguments: str) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run `aggregator` from `tree` (see bench.poll)."""
    return [sys.executable, "-m", "aggregator.cli", *arguments], {
        **os.environ,
        "PYTHONPATH": str(tree),
    }


def timed_run(tree: Path, *arguments: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run of `aggregator ARGUMENTS` from `tree`."""
    command, env = cli(tree, *arguments)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments)} from {tree} exited {process.returncode}")
    return usage.ru_utime + usage.ru_stime, seconds


def first_request(tree: Path, config: Path, database: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) from exec of `fetch` to its first connection to the
    listening socket (CPU: until it is stopped, a moment later)."""
    command, env = cli(tree, "--config", str(config), "--database", database, "fetch")
    with socket.socket() as listener:
        # The previous run's connection may still be in TIME_WAIT on this port.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, port_of(config)))
        listener.listen(64)
        listener.settimeout(FIRST_REQUEST_TIMEOUT)
        start = time.perf_counter()
        process = subprocess.Popen(
            command,
            env=env,
            cwd=tree,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            connection, _ = listener.accept()
            seconds = time.perf_counter() - start
            connection.close()
        except TimeoutError as error:
            raise RuntimeError(f"fetch from {tree} made no request") from error
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, seconds


def port_of(config: Path) -> int:
    found = re.search(r"feed: http://127\.0\.0\.1:(\d+)/", config.read_text(encoding="utf-8"))
    if found is None:
        raise RuntimeError(f"{config} has no source on 127.0.0.1")
    return int(found[1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def paired(
    name: str, measure: Callable[[Path], tuple[float, float]], trees: Sequence[Path], rounds: int
) -> list[object]:
    """One table row: each tree's median CPU and wall seconds, then each other tree's
    ratios to the first (CPU, wall)."""
    runs: list[list[tuple[float, float]]] = [[] for _ in trees]
    for tree in trees:  # warm-up: the page cache and .pyc files, not counted
        measure(tree)
    for _ in range(rounds):
        for index, tree in enumerate(trees):
            runs[index].append(measure(tree))
    row: list[object] = [name]
    for each in runs:
        row.append(
            f"{statistics.median(c for c, _ in each):.3f} / "
            f"{statistics.median(w for _, w in each):.3f}"
        )
    for other in runs[1:]:
        cpu = statistics.median(b[0] / a[0] for a, b in zip(runs[0], other, strict=True))
        wall = statistics.median(b[1] / a[1] for a, b in zip(runs[0], other, strict=True))
        row.append(f"{cpu:.2f}x / {wall:.2f}x")
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=corpus.DEFAULT_SITES)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_SITES} sites, quick")
    parser.add_argument(
        "--baseline", type=Path, action="append", default=[], help="another checkout's tree"
    )
    args = parser.parse_args(argv)
    sites = SMOKE_SITES if args.smoke else args.sites
    rounds = 2 if args.smoke else args.rounds
    trees = [tree_of(None), *(tree_of(tree) for tree in args.baseline)]
    say(f"machine: {machine_line()}")
    say(load_line())
    say(f"trees: {', '.join(str(tree) for tree in trees)}; {rounds} rounds, medians")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as work:
        root = Path(work) / "corpus"
        corpus.write_corpus(root, sites, corpus.DEFAULT_SEED)
        # Every source on one port where nothing but this script listens: the fetch is
        # stopped at its first connection, so no site needs to be served.
        config = corpus.write_feeds_yaml(root, [f"http://{LOOPBACK}:{free_port()}"])
        databases = {
            tree: f"sqlite:///{Path(work) / f'{index}.db'}" for index, tree in enumerate(trees)
        }
        for tree in trees:  # the first fetch syncs the sources into the database
            first_request(tree, config, databases[tree])
        shipped = trees[0] / "config" / "feeds.yaml"
        rows = [
            paired("--version", lambda tree: timed_run(tree, "--version"), trees, rounds),
            paired(
                "check config/feeds.yaml",
                lambda tree: timed_run(tree, "--config", str(shipped), "check"),
                trees,
                rounds,
            ),
            paired(
                f"check {sites}-source feeds.yaml",
                lambda tree: timed_run(tree, "--config", str(config), "check"),
                trees,
                rounds,
            ),
            paired(
                f"fetch: exec to first request ({sites} sources)",
                lambda tree: first_request(tree, config, databases[tree]),
                trees,
                rounds,
            ),
        ]
    headers = ["CPU s / wall s (medians)", *(tree.name for tree in trees)]
    headers += [f"{tree.name} / {trees[0].name}" for tree in trees[1:]]
    say(table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
