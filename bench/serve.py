"""Serving benchmark: `aggregator serve` under concurrent load, against nginx as the ceiling.

    python -m bench.serve               # 50 connections, 10 s per endpoint
    python -m bench.serve --smoke       # 10 connections, 1 s per endpoint, for CI

A database is filled by polling a generated corpus (`aggregator fetch`) and exported
(`aggregator export`); then, in the same run, the load generator hits from a separate
process on 127.0.0.1:
- `aggregator serve`: /feed.atom (200, and 304 with the ETag it gave), /api/items?limit=10
  and /embed;
- nginx serving the exported files: feed.atom (200 and 304), api/items.json, embed.html,
  the ceiling the targets are stated against (same bytes, no application code).
It prints requests/s and p50/p99 latency per endpoint and the aggregator/nginx ratios.

The load generator is wrk when installed (`wrk --latency`), else a small asyncio HTTP/1.1
keep-alive client run in its own subprocess (`python -m bench.serve --load …`; raw
sockets, because httpx's own CPU per request would be what it measures). When `aggregator
serve` does not exist in this tree the script says so and measures nginx only.

Every loop is bounded in time; traffic only goes to 127.0.0.1; every server it starts it stops.
"""

from __future__ import annotations

import argparse
import asyncio
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
SERVER_START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# --- the asyncio load generator (runs in its own process) --------------------------------


async def _one_connection(
    port: int,
    request: bytes,
    deadline: float,
    latencies: list[float],
    statuses: dict[str, int],
) -> int:
    """Keep one keep-alive connection busy until `deadline`; returns errors."""
    errors = 0
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        while time.perf_counter() < deadline:
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
    deadline = started + seconds
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
    return LoadResult(
        requests=count,
        errors=errors + (int(non_ok[1]) if non_ok else 0),
        seconds=seconds,
        p50_ms=percentiles.get("50", 0.0),
        p99_ms=percentiles.get("99", 0.0),
        statuses={},
    )


def _env() -> dict[str, str]:
    root = str(Path(aggregator.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": root}


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


def aggregator_cli(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "aggregator.cli", *arguments]


def has_serve_command() -> bool:
    done = subprocess.run(
        aggregator_cli("--help"), capture_output=True, text=True, check=False, env=_env()
    )
    return re.search(r"\bserve\b", done.stdout) is not None


class AggregatorServer:
    """`aggregator serve` in a subprocess on a free port of 127.0.0.1."""

    def __init__(self, config: Path, database: str) -> None:
        self.port = free_port()
        self._command = aggregator_cli(
            "--config", str(config), "--database", database, "serve", "--host", LOOPBACK,
            "--port", str(self.port),
        )  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AggregatorServer:
        self._process = subprocess.Popen(
            self._command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env()
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
    sites = SMOKE_SITES if args.smoke else CORPUS_SITES
    use_wrk = not args.no_wrk and shutil.which("wrk") is not None
    say(f"machine: {machine_line()}")
    say(
        "load generator: "
        + ("wrk (2 threads)" if use_wrk else "asyncio keep-alive client in a subprocess")
        + ("" if use_wrk or args.no_wrk else " (wrk is not installed)")
        + f", {connections} connections, {duration:g} s per endpoint"
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        config, database, export = prepare(workdir, sites, args.seed, not args.no_nginx)
        exported = sum(1 for path in export.rglob("*") if path.is_file())
        say(f"data: {sites} member sources polled into SQLite, exported to {exported} files")
        rows: list[list[object]] = []
        results: dict[str, LoadResult] = {}

        def measure(label: str, port: int, path: str, headers: dict[str, str]) -> None:
            result = run_load(port, path, headers, connections, duration, use_wrk)
            results[label] = result
            rows.append(
                [label, f"{result.rps:,.0f}", f"{result.p50_ms:.2f}", f"{result.p99_ms:.2f}",
                 result.requests, result.errors]
            )  # fmt: skip
            say(f"  {label}: {result.rps:,.0f} req/s, p99 {result.p99_ms:.2f} ms")

        with StaticServer(export, use_nginx=not args.no_nginx) as static:
            say(f"ceiling: {static.description} serving the export")
            etag = _fetch_etag(static.port, "/feed.atom")
            measure("static /feed.atom 200", static.port, "/feed.atom", {})
            measure(
                "static /feed.atom 304", static.port, "/feed.atom", {"If-None-Match": etag or ""}
            )
            for name in ("api/items.json", "embed.html"):
                if (export / name).exists():
                    measure(f"static /{name}", static.port, f"/{name}", {})
        if has_serve_command():
            with AggregatorServer(config, database) as server:
                say("server: aggregator serve (uvicorn, one process)")
                etag = _fetch_etag(server.port, "/feed.atom")
                measure("aggregator /feed.atom 200", server.port, "/feed.atom", {})
                measure(
                    "aggregator /feed.atom 304", server.port, "/feed.atom",
                    {"If-None-Match": etag or ""},
                )  # fmt: skip
                measure("aggregator /api/items?limit=10", server.port, "/api/items?limit=10", {})
                measure("aggregator /embed", server.port, "/embed", {})
        else:
            say("aggregator serve: not in this tree (no `serve` command): static server only")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    say("\n" + table(["endpoint", "req/s", "p50 ms", "p99 ms", "requests", "errors"], rows))
    report(results, connections)
    return 0


def report(results: dict[str, LoadResult], connections: int) -> None:
    pairs = (
        ("/feed.atom 200 (cached)", "aggregator /feed.atom 200", "static /feed.atom 200"),
        ("/feed.atom 304", "aggregator /feed.atom 304", "static /feed.atom 304"),
        ("/api/items?limit=10 vs static api/items.json", "aggregator /api/items?limit=10",
         "static /api/items.json"),
        ("/embed vs static embed.html", "aggregator /embed", "static /embed.html"),
    )  # fmt: skip
    say("\nratios (same run):")
    for label, ours, ceiling in pairs:
        if ours not in results or ceiling not in results:
            continue
        share = results[ours].rps / results[ceiling].rps
        line = f"  {label}: aggregator at {share:.1%} of the static server's req/s"
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
