"""Serving benchmark: `aggregator serve` under concurrent load, against nginx as the ceiling.

    python -m bench.serve               # 50 connections, 10 s per endpoint
    python -m bench.serve --smoke       # 10 connections, 1 s per endpoint, for CI
    python -m bench.serve --baseline /work/old-tree   # that tree's serve too, same run
    python -m bench.serve --during-poll # /feed.atom while `run --role all` polls 1,000 sources

A database is filled by polling a generated corpus (`aggregator fetch`) and exported
(`aggregator export`); then, in the same run, the load generator hits from a separate
process on 127.0.0.1:
- `aggregator serve`: /feed.atom (200, and 304 with the ETag it gave), /api/items?limit=10
  and /embed;
- nginx serving the exported files: feed.atom (200 and 304), api/items.json, embed.html,
  the ceiling the targets are stated against (same bytes, no application code).
It prints requests/s and p50/p99 latency per endpoint and the aggregator/nginx ratios.
`--baseline TREE` serves the same database with TREE's `aggregator serve` too (with
TREE/.venv/bin/python when there is one, so that tree's own dependencies), between the
static server and this tree's, so before and after share one run. `--workers N` starts
this tree's `serve` with that many processes.

`--during-poll` measures something else: a 1,000-site corpus (bench/corpus.py) served by
nginx on 16 ports, `aggregator run --role all` started on a fresh database with that
feeds.yaml, and /feed.atom hit by the load generator from the moment the server listens
until the scheduler has logged a poll of every source (its first poll), or
--poll-timeout; it prints requests/s, p50/p99/max latency and how far the poll got.

The load generator is wrk when installed (`wrk --latency`), else a small asyncio HTTP/1.1
keep-alive client run in its own subprocess (`python -m bench.serve --load …`; raw
sockets, because httpx's own CPU per request would be what it measures). When `aggregator
serve` does not exist in this tree the script says so and measures nginx only.

Every loop is bounded in time; traffic only goes to 127.0.0.1; every server it starts it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aggregator
from bench import corpus
from bench.harness import LOOPBACK
from bench.harness import StaticServer
from bench.harness import exit_on_sigterm
from bench.harness import free_port
from bench.harness import machine_line
from bench.harness import say
from bench.harness import table
from bench.harness import wait_for_port

CONNECTIONS = 50
DURATION = 10.0
SMOKE_CONNECTIONS = 10
SMOKE_DURATION = 1.0  # wrk counts whole seconds
CORPUS_SITES = 60
SMOKE_SITES = 6
POLL_SITES = 1000  # --during-poll
SMOKE_POLL_SITES = 20
POLL_TIMEOUT = 600.0  # seconds --during-poll waits for the first poll at most
POLL_HOSTS = 16  # ports standing for the members' web hosts, as bench/poll.py
SERVER_START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 10.0
# One line per poll from the scheduler (as tests/service/test_workers.py reads them).
POLLED = re.compile(
    r"aggregator\.service\.scheduler: [^\n]*?: (new|updated|unchanged|failed)\b[^\n]*?; next poll"
)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    max_ms: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# --- the asyncio load generator (runs in its own process) --------------------------------


async def _one_connection(
    port: int,
    request: bytes,
    deadline: list[float],
    latencies: list[float],
    statuses: dict[str, int],
) -> int:
    """Keep one keep-alive connection busy until `deadline[0]`; returns errors."""
    errors = 0
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        while time.perf_counter() < deadline[0]:
            started = time.perf_counter()
            writer.write(request)
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                errors += 1
                break
            status = head[9:12].decode("ascii", "replace")
            length = 0
            chunked = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()
    return errors


async def _load(
    port: int, path: str, headers: dict[str, str], connections: int, seconds: float
) -> LoadResult:
    lines = [f"GET {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}", "User-Agent: bench"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    started = time.perf_counter()
    # One cell, so that SIGINT (bench.serve --during-poll's "stop now") can end it early.
    deadline = [started + seconds]
    with contextlib.suppress(NotImplementedError, RuntimeError):
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGINT, lambda: deadline.__setitem__(0, time.perf_counter())
        )
    errors = await asyncio.gather(
        *(
            _one_connection(port, request, deadline, latencies, statuses)
            for _ in range(connections)
        ),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    failed = sum(e if isinstance(e, int) else 1 for e in errors)
    ordered = sorted(latencies) or [0.0]
    return LoadResult(
        requests=len(latencies),
        errors=failed,
        seconds=elapsed,
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        statuses=statuses,
        max_ms=ordered[-1] * 1000,
    )


def load_main(args: argparse.Namespace) -> int:
    headers = dict(header.split(": ", 1) for header in args.header or [])
    result = asyncio.run(_load(args.port, args.path, headers, args.connections, args.duration))
    print(json.dumps(result.__dict__))
    return 0


# --- driving a load ---------------------------------------------------------------------

_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_PERCENTILE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_WRK_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_WRK_LATENCY = re.compile(
    r"^\s+Latency\s+[\d.]+(?:us|ms|s)\s+[\d.]+(?:us|ms|s)\s+([\d.]+)(us|ms|s)", re.MULTILINE
)
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def run_load(
    port: int,
    path: str,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    use_wrk: bool,
) -> LoadResult:
    wrk = shutil.which("wrk") if use_wrk else None
    if wrk is not None:
        whole = max(1, round(seconds))
        command = [wrk, "--latency", "-t", "2", "-c", str(connections), "-d", f"{whole}s",
                   "--timeout", f"{REQUEST_TIMEOUT:g}s"]  # fmt: skip
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        done = subprocess.run(
            [*command, f"http://{LOOPBACK}:{port}{path}"],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
        return parse_wrk(done.stdout)
    command = [sys.executable, "-m", "bench.serve", "--load", "--port", str(port), "--path", path,
               "--connections", str(connections), "--duration", f"{seconds:g}"]  # fmt: skip
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 60, env=_env()
    )
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadResult(**data)


def parse_wrk(output: str) -> LoadResult:
    rps = _WRK_RPS.search(output)
    requests = _WRK_REQUESTS.search(output)
    if rps is None or requests is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    percentiles = {
        match[1]: float(match[2]) * _UNIT[match[3]] for match in _WRK_PERCENTILE.finditer(output)
    }
    socket_errors = _WRK_ERRORS.search(output)
    errors = sum(int(n) for n in socket_errors.groups()) if socket_errors else 0
    non_ok = _WRK_NON_2XX.search(output)
    seconds = float(requests[2]) * _UNIT[requests[3]] / 1000
    count = int(requests[1])
    latency = _WRK_LATENCY.search(output)
    return LoadResult(
        requests=count,
        errors=errors + (int(non_ok[1]) if non_ok else 0),
        seconds=seconds,
        p50_ms=percentiles.get("50", 0.0),
        p99_ms=percentiles.get("99", 0.0),
        statuses={},
        max_ms=float(latency[1]) * _UNIT[latency[2]] if latency else 0.0,
    )


def _root(tree: Path | None = None) -> Path:
    return (tree or Path(aggregator.__file__).resolve().parents[1]).resolve()


def _env(tree: Path | None = None) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(_root(tree))}


def tree_python(tree: Path | None, python: str | None = None) -> str:
    """`python`, else TREE's own virtualenv's Python when it has one (its own dependencies),
    else ours."""
    if python is not None:
        return python
    if tree is not None and (tree / ".venv" / "bin" / "python").exists():
        return str(tree / ".venv" / "bin" / "python")
    return sys.executable


def _fetch_etag(port: int, path: str) -> str | None:
    """The ETag a GET of `path` answers with (one plain socket request)."""

    async def get() -> str | None:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
        writer.close()
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "etag":
                return value.strip()
        return None

    return asyncio.run(get())


def aggregator_cli(*arguments: str, python: str = sys.executable) -> list[str]:
    return [python, "-m", "aggregator.cli", *arguments]


def has_serve_command(tree: Path | None = None) -> bool:
    done = subprocess.run(
        aggregator_cli("--help", python=tree_python(tree)),
        capture_output=True,
        text=True,
        check=False,
        env=_env(tree),
        cwd=_root(tree),
    )
    return re.search(r"\bserve\b", done.stdout) is not None


class AggregatorServer:
    """`aggregator serve` (or another command) of `tree` (default: this one) in a
    subprocess on a free port of 127.0.0.1; its log goes to `log` (default: nowhere)."""

    def __init__(
        self,
        config: Path,
        database: str,
        *,
        tree: Path | None = None,
        command: Sequence[str] = ("serve",),
        log: Path | None = None,
        python: str | None = None,
    ) -> None:
        self.port = free_port()
        self._tree = tree
        self._log = log
        self._command = aggregator_cli(
            "--config", str(config), "--database", database, *command, "--host", LOOPBACK,
            "--port", str(self.port), python=tree_python(tree, python),
        )  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AggregatorServer:
        # The tree's root as working directory: `python -m` puts it first on sys.path, before
        # PYTHONPATH, so any other directory could shadow the tree being measured.
        with (self._log or Path(os.devnull)).open("ab") as log:
            self._process = subprocess.Popen(
                self._command,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=_env(self._tree),
                cwd=_root(self._tree),
            )
        try:
            wait_for_port(self.port, SERVER_START_TIMEOUT)
        except RuntimeError:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=15)
            self._process = None


def prepare(workdir: Path, sites: int, seed: int, use_nginx: bool) -> tuple[Path, str, Path]:
    """A polled database, its feeds.yaml and its static export."""
    root = workdir / "corpus"
    corpus.write_corpus(root, sites, seed)
    database = f"sqlite:///{workdir / 'serve.db'}"
    with StaticServer(root, use_nginx=use_nginx, hosts=min(sites, 16)) as sources:
        config = corpus.write_feeds_yaml(root, sources.base_urls)
        subprocess.run(
            aggregator_cli("--config", str(config), "--database", database, "fetch"),
            check=True,
            capture_output=True,
            env=_env(),
            timeout=600,
        )
    export = workdir / "export"
    subprocess.run(
        aggregator_cli("--config", str(config), "--database", database, "export", str(export)),
        check=True,
        capture_output=True,
        env=_env(),
        timeout=600,
    )
    return config, database, export


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serving benchmark (bench/README.md).")
    parser.add_argument("--smoke", action="store_true", help="tiny and quick, for CI")
    parser.add_argument("--connections", type=int)
    parser.add_argument("--duration", type=float, help="seconds per endpoint")
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument("--no-wrk", action="store_true", help="use the asyncio load generator")
    parser.add_argument("--seed", type=int, default=corpus.DEFAULT_SEED)
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        metavar="TREE",
        help="also serve with TREE's code, same run (repeatable)",
    )
    parser.add_argument(
        "--baseline-python",
        action="append",
        default=[],
        metavar="PYTHON",
        help="the interpreter (its packages) of the baseline in the same position",
    )
    parser.add_argument("--workers", type=int, help="`serve --workers N` for this tree")
    parser.add_argument(
        "--during-poll",
        action="store_true",
        help="/feed.atom while `run --role all` does its first poll of 1,000 sources",
    )
    parser.add_argument("--poll-timeout", type=float, default=POLL_TIMEOUT)
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure every endpoint N times (the median)"
    )
    # --load: this process is the asyncio load generator (used by the driver itself).
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--header", action="append", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    exit_on_sigterm()
    if args.load:
        args.connections = args.connections or CONNECTIONS
        args.duration = args.duration or DURATION
        return load_main(args)

    connections = args.connections or (SMOKE_CONNECTIONS if args.smoke else CONNECTIONS)
    duration = args.duration or (SMOKE_DURATION if args.smoke else DURATION)
    use_wrk = not args.no_wrk and shutil.which("wrk") is not None
    say(f"machine: {machine_line()}")
    say(
        "load generator: "
        + ("wrk (2 threads)" if use_wrk else "asyncio keep-alive client in a subprocess")
        + ("" if use_wrk or args.no_wrk else " (wrk is not installed)")
        + f", {connections} connections"
        + ("" if args.during_poll else f", {duration:g} s per endpoint")
    )
    if args.during_poll:
        return during_poll(args, connections, use_wrk)
    return cached_documents(args, connections, duration, use_wrk)


# What is loaded on each server: (label, path on the static server, path on `serve`,
# conditional?). The static server has the exported files; `serve` has the routes.
ENDPOINTS = (
    ("/feed.atom 200", "/feed.atom", "/feed.atom", False),
    ("/feed.atom 304", "/feed.atom", "/feed.atom", True),
    ("/api/items?limit=10", "/api/items.json", "/api/items?limit=10", False),
    ("/embed", "/embed.html", "/embed", False),
)


def cached_documents(
    args: argparse.Namespace, connections: int, duration: float, use_wrk: bool
) -> int:
    """The static server, the baseline tree's `serve` and this tree's, all started at once
    and loaded in turn endpoint by endpoint (interleaved, `--rounds` times), so that every
    ratio compares figures taken within a minute of each other on a shared machine."""
    sites = SMOKE_SITES if args.smoke else CORPUS_SITES
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    servers: list[tuple[str, Path | None, str | None, tuple[str, ...]]] = []
    for number, tree in enumerate(args.baseline):
        python = args.baseline_python[number] if number < len(args.baseline_python) else None
        name = tree.resolve().name if len(args.baseline) > 1 or python else "baseline"
        if python is not None:
            name += "@" + Path(python).absolute().parents[2].name
        servers.append((name, tree.resolve(), python, ("serve",)))
    workers = ("--workers", str(args.workers)) if args.workers else ()
    servers.append(("aggregator", None, None, ("serve", *workers)))
    results: dict[str, list[LoadResult]] = {}
    requested: dict[str, str] = {}  # label -> the path requested
    try:
        config, database, export = prepare(workdir, sites, args.seed, not args.no_nginx)
        exported = sum(1 for path in export.rglob("*") if path.is_file())
        say(f"data: {sites} member sources polled into SQLite, exported to {exported} files")
        with contextlib.ExitStack() as stack:
            static = stack.enter_context(StaticServer(export, use_nginx=not args.no_nginx))
            say(f"ceiling: static, {static.description} serving the export")
            ports = {"static": static.port}
            for name, tree, python, command in servers:
                if not has_serve_command(tree):
                    say(f"{name}: no `serve` command in {_root(tree)}: not measured")
                    continue
                server = stack.enter_context(
                    AggregatorServer(config, database, tree=tree, command=command, python=python)
                )
                ports[name] = server.port
                say(f"{name}: {_root(tree)} with {tree_python(tree, python)}: {' '.join(command)}")
            etags = {name: _fetch_etag(port, "/feed.atom") or "" for name, port in ports.items()}
            for round_number in range(args.rounds):
                for label, static_path, path, conditional in ENDPOINTS:
                    for name, port in ports.items():
                        target = static_path if name == "static" else path
                        if name == "static" and not (export / target.lstrip("/")).exists():
                            continue
                        headers = {"If-None-Match": etags[name]} if conditional else {}
                        result = run_load(port, target, headers, connections, duration, use_wrk)
                        results.setdefault(f"{name} {label}", []).append(result)
                        requested[f"{name} {label}"] = target
                        say(
                            f"  round {round_number + 1}: {name} {label}: {result.rps:,.0f} "
                            f"req/s, p99 {result.p99_ms:.2f} ms"
                        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    medians = {label: median_result(runs) for label, runs in results.items()}
    order = {
        name: number for number, name in enumerate(["static", *(name for name, *_ in servers)])
    }
    rows = [
        [label, requested[label], f"{result.rps:,.0f}", f"{result.p50_ms:.2f}",
         f"{result.p99_ms:.2f}", result.requests, result.errors]
        for label, result in sorted(medians.items(), key=lambda pair: order[pair[0].split()[0]])
    ]  # fmt: skip
    say(
        "\n"
        + (f"median of {args.rounds} rounds\n" if args.rounds > 1 else "")
        + table(
            ["server endpoint", "path", "req/s", "p50 ms", "p99 ms", "requests", "errors"], rows
        )
    )
    report(medians, connections, [name for name, *_ in servers])
    return 0


def median_result(runs: Sequence[LoadResult]) -> LoadResult:
    """The run with the median requests/s (its own latencies: they belong together)."""
    return sorted(runs, key=lambda run: run.rps)[len(runs) // 2]


def during_poll(args: argparse.Namespace, connections: int, use_wrk: bool) -> int:
    """/feed.atom under load from the moment `run --role all` listens until its first poll
    of every source is logged (or --poll-timeout); with --baseline, each baseline tree's
    `run` first, one after another, each on a fresh database, the same corpus and nginx."""
    sites = SMOKE_POLL_SITES if args.smoke else POLL_SITES
    trees: list[tuple[str, Path | None, str | None]] = [
        (tree.resolve().name, tree.resolve(),
         args.baseline_python[number] if number < len(args.baseline_python) else None)
        for number, tree in enumerate(args.baseline)
    ]  # fmt: skip
    trees.append(("aggregator", None, None))
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-poll-"))
    rows: list[list[object]] = []
    worst = 0.0
    try:
        root = workdir / "corpus"
        corpus.write_corpus(root, sites, args.seed)
        with StaticServer(root, use_nginx=not args.no_nginx, hosts=min(sites, POLL_HOSTS)) as src:
            say(f"sources: {sites} member sites, {src.description}")
            config = corpus.write_feeds_yaml(root, src.base_urls)
            for number, (name, tree, python) in enumerate(trees):
                database = f"sqlite:///{workdir / f'run{number}.db'}"
                log = workdir / f"run{number}.log"
                row = poll_under_load(
                    args, config, database, log, (name, tree, python), sites, connections, use_wrk
                )
                rows.append(row)
                if name == "aggregator":
                    worst = float(str(row[5]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    say(
        "\n"
        + table(
            [
                "server",
                "polled",
                "seconds",
                "req/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "requests",
                "errors",
            ],
            rows,
        )
    )
    say(f"target p99 < 50 ms: {'meets target' if worst < 50 else 'MISSES target'}")
    return 0


def poll_under_load(
    args: argparse.Namespace,
    config: Path,
    database: str,
    log: Path,
    server_tree: tuple[str, Path | None, str | None],
    sites: int,
    connections: int,
    use_wrk: bool,
) -> list[object]:
    name, tree, python = server_tree
    command = ("run", "--role", "all")
    with AggregatorServer(
        config, database, command=command, log=log, tree=tree, python=python
    ) as server:
        started = time.monotonic()
        say(f"server: {name} {' '.join(command)} on a fresh database ({_root(tree)})")
        with LoadInBackground(server.port, "/feed.atom", connections, use_wrk) as load:
            while time.monotonic() - started < args.poll_timeout:
                if len(POLLED.findall(log.read_text(errors="replace"))) >= sites:
                    break
                time.sleep(0.2)
            poll_seconds = time.monotonic() - started
        result = load.result
        errors = _WRK_ERRORS.search(load.output) or _WRK_NON_2XX.search(load.output)
    polled = len(POLLED.findall(log.read_text(errors="replace")))
    finished = "its first poll done" if polled >= sites else "stopped at --poll-timeout"
    say(f"  {name}: {polled} of {sites} sources polled in {poll_seconds:.1f} s ({finished})")
    if errors is not None:
        say(f"  {name}: {errors[0]}")
    return [
        name, polled, f"{poll_seconds:.0f}", f"{result.rps:,.0f}", f"{result.p50_ms:.2f}",
        f"{result.p99_ms:.2f}", f"{result.max_ms:.2f}", result.requests, result.errors,
    ]  # fmt: skip


class LoadInBackground:
    """The load generator on one path until the block ends (SIGINT makes wrk, and the
    asyncio generator, stop and report); `.result` afterwards."""

    def __init__(self, port: int, path: str, connections: int, use_wrk: bool) -> None:
        wrk = shutil.which("wrk") if use_wrk else None
        url = f"http://{LOOPBACK}:{port}{path}"
        long = f"{int(POLL_TIMEOUT * 2)}"
        self._wrk = wrk is not None
        if wrk is not None:
            self._command = [wrk, "--latency", "-t", "2", "-c", str(connections), "-d",
                             f"{long}s", "--timeout", f"{REQUEST_TIMEOUT:g}s", url]  # fmt: skip
        else:
            self._command = [sys.executable, "-m", "bench.serve", "--load", "--port", str(port),
                             "--path", path, "--connections", str(connections),
                             "--duration", long]  # fmt: skip
        self._process: subprocess.Popen[str] | None = None
        self._result: LoadResult | None = None
        self.output = ""

    @property
    def result(self) -> LoadResult:
        if self._result is None:
            raise RuntimeError("the load generator has not reported")
        return self._result

    def __enter__(self) -> LoadInBackground:
        self._process = subprocess.Popen(
            self._command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=_env(),
        )  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=REQUEST_TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=15)
            raise
        self.output = output
        if self._wrk:
            self._result = parse_wrk(output)
        else:
            self._result = LoadResult(**json.loads(output.strip().splitlines()[-1]))


def report(results: dict[str, LoadResult], connections: int, names: Sequence[str]) -> None:
    pairs = [
        (f"{name}: {label}", f"{name} {ours}", ceiling)
        for name in names
        for label, ours, ceiling in (
            ("/feed.atom 200 (cached)", "/feed.atom 200", "static /feed.atom 200"),
            ("/feed.atom 304", "/feed.atom 304", "static /feed.atom 304"),
            ("/api/items?limit=10 vs static api/items.json", "/api/items?limit=10",
             "static /api/items?limit=10"),
            ("/embed vs static embed.html", "/embed", "static /embed"),
        )
    ]  # fmt: skip
    say("\nratios (same run):")
    for label, ours, ceiling in pairs:
        if ours not in results or ceiling not in results:
            continue
        share = results[ours].rps / results[ceiling].rps
        line = f"  {label}: at {share:.1%} of the static server's req/s"
        if "feed.atom" in label:
            p99 = results[ours].p99_ms
            ok = share >= 0.25 and p99 < 20
            line += (
                f", p99 {p99:.1f} ms at {connections} connections (target ≥ 25 % and p99 < 20 ms: "
                f"{'meets target' if ok else 'MISSES target'})"
            )
        say(line)


if __name__ == "__main__":
    raise SystemExit(main())
