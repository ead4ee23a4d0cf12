"""HTTP transport benchmark: the Fetcher against plain httpx, httpx on aiohttp, and aiohttp.

    python -m bench.transport                     # 1,000 feeds, 5 interleaved repetitions
    python -m bench.transport --baseline ../main  # also the Fetcher of another checkout
    python -m bench.transport --smoke             # 40 feeds, 1 repetition, for CI

N small feeds (about 2 KB each, gzip-compressible) are served with ETags from nginx (or the
project's FixtureServer when nginx is not installed) on 32 ports of 127.0.0.1, standing for
32 member hosts (the Fetcher limits requests per host). Each client then does, in a fresh
subprocess so that every one starts cold as `aggregator fetch` does:
- N plain GETs (200 with the body, read whole), then
- N conditional GETs with the ETags just received (304),
at the Fetcher's default concurrency (16 requests in flight), with one connection pool.
The clients:
- `fetcher`: aggregator.ingest.fetch.Fetcher as this tree has it (`fetcher@TREE` with
  --baseline: the same from another checkout, for before/after figures in one run);
- `httpx`: a bare httpx.AsyncClient (no checks, no per-host limit);
- `httpx-aiohttp`: the same client on httpx_aiohttp.AiohttpTransport (pip `httpx-aiohttp`);
- `aiohttp`: an aiohttp.ClientSession directly.
Repetitions are interleaved (every client once, then every client again), and the table gives
the median wall time and CPU time (user+system of the client process, its threads included)
per phase, and the ratio of CPU time to the client that used least. A client whose package
is missing is skipped.

To see where a client's time goes, run one worker under a profiler, e.g.
    py-spy record -o fetcher.speedscope --format speedscope -- \\
        python -m bench.transport --worker fetcher --urls-from FILE

It is a benchmark, not a test: nothing in it is asserted on time. It only ever talks to
127.0.0.1, and stops every server it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FEEDS = 1_000
SMOKE_FEEDS = 40
REPETITIONS = 5
HOSTS = 32
CONCURRENCY = 16  # FetchLimits.concurrency's default
CLIENTS = ("fetcher", "httpx", "httpx-aiohttp", "aiohttp")
PHASES = ("200", "304")
WORKER_TIMEOUT = 600.0

# A worker loads `aggregator` from the tree given first (the baseline, or this one), then
# this tree's `bench`: argv = [tree or "", repo, worker arguments...].
WORKER_BOOT = (
    "import sys\n"
    "tree, repo = sys.argv[1], sys.argv[2]\n"
    "sys.path.insert(0, tree or repo)\n"
    "import aggregator\n"
    "sys.path.insert(0, repo)\n"
    "from bench.transport import worker_main\n"
    "worker_main(sys.argv[3:])\n"
)


def feed_bytes(index: int) -> bytes:
    """A small RSS 2.0 document, different for every feed (so every ETag differs)."""
    items = "".join(
        f"<item><title>Story {index}-{n}: workers win a new agreement</title>"
        f"<link>http://example.org/{index}/{n}</link><guid>feed-{index}-item-{n}</guid>"
        f"<pubDate>Mon, 0{n + 1} Nov 2026 10:00:00 GMT</pubDate>"
        f"<description>Members of site {index} report item {n}: the code of conduct now "
        "covers every farm of the supplier, with audits twice a year.</description></item>"
        for n in range(5)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Member {index}</title><link>http://example.org/{index}/</link>"
        f"<description>News of member {index}</description>{items}</channel></rss>"
    ).encode()


def write_feeds(root: Path, count: int) -> list[str]:
    """The feed files under `root`; their paths relative to it."""
    paths = []
    for index in range(count):
        relative = f"m{index:05d}/feed.xml"
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(feed_bytes(index))
        paths.append(relative)
    return paths


# --- the clients (run in a worker process) ------------------------------------------------

# One GET: (url, etag or None) -> (status, etag of the answer or None, body length).
Get = Callable[[str, str | None], Awaitable[tuple[int, str | None, int]]]


@dataclass(frozen=True)
class PhaseFigures:
    wall: float
    cpu: float
    statuses: dict[str, int]


async def _run_phase(
    get: Get, urls: Sequence[str], etags: Sequence[str | None], limit: int | None
) -> tuple[PhaseFigures, list[str | None]]:
    semaphore = asyncio.Semaphore(limit) if limit else None

    async def one(url: str, etag: str | None) -> tuple[int, str | None, int]:
        if semaphore is None:
            return await get(url, etag)
        async with semaphore:
            return await get(url, etag)

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    answers = await asyncio.gather(*(one(u, e) for u, e in zip(urls, etags, strict=True)))
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    statuses: dict[str, int] = {}
    for status, _, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return PhaseFigures(wall, cpu, statuses), [etag for _, etag, _ in answers]


async def _phases(get: Get, urls: Sequence[str], limit: int | None) -> dict[str, PhaseFigures]:
    first, etags = await _run_phase(get, urls, [None] * len(urls), limit)
    second, _ = await _run_phase(get, urls, etags, limit)
    return {"200": first, "304": second}


async def run_fetcher(urls: Sequence[str]) -> dict[str, PhaseFigures]:
    from aggregator.ingest.fetch import Fetcher
    from aggregator.models import CacheValidators
    from aggregator.models import SourceConfig

    async with Fetcher() as fetcher:

        async def get(url: str, etag: str | None) -> tuple[int, str | None, int]:
            source = SourceConfig(member_id="bench", kind="feed", url=url)
            result = await fetcher.fetch(source, CacheValidators(etag=etag))
            if result.error is not None:
                raise RuntimeError(f"{url}: {result.error}")
            size = len(result.content or b"")
            return result.status or 0, result.validators.etag, size

        # The Fetcher limits concurrency itself (FetchLimits.concurrency and per_host).
        return await _phases(get, urls, None)


async def run_httpx(urls: Sequence[str], *, on_aiohttp: bool) -> dict[str, PhaseFigures]:
    import httpx

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    transport: httpx.AsyncBaseTransport | None = None
    if on_aiohttp:
        from httpx_aiohttp import AiohttpTransport  # type: ignore[import-not-found,unused-ignore]

        transport = AiohttpTransport(limits=limits, trust_env=False)
    async with httpx.AsyncClient(limits=limits, transport=transport, trust_env=False) as client:

        async def get(url: str, etag: str | None) -> tuple[int, str | None, int]:
            headers = {"If-None-Match": etag} if etag else {}
            async with client.stream("GET", url, headers=headers) as response:
                body = await response.aread()
                return response.status_code, response.headers.get("etag"), len(body)

        return await _phases(get, urls, CONCURRENCY)


async def run_aiohttp(urls: Sequence[str]) -> dict[str, PhaseFigures]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:

        async def get(url: str, etag: str | None) -> tuple[int, str | None, int]:
            headers = {"If-None-Match": etag} if etag else {}
            async with session.get(url, headers=headers, allow_redirects=False) as response:
                body = await response.read()
                return response.status, response.headers.get("etag"), len(body)

        return await _phases(get, urls, CONCURRENCY)


def worker_main(argv: Sequence[str]) -> None:
    """Run one client over the URLs in a file; print its figures as one JSON line."""
    parser = argparse.ArgumentParser(prog="bench.transport --worker")
    parser.add_argument("client", choices=CLIENTS)
    parser.add_argument("--urls-from", type=Path, required=True)
    args = parser.parse_args(argv)
    urls = args.urls_from.read_text(encoding="utf-8").split()
    runners: dict[str, Callable[[], Awaitable[dict[str, PhaseFigures]]]] = {
        "fetcher": lambda: run_fetcher(urls),
        "httpx": lambda: run_httpx(urls, on_aiohttp=False),
        "httpx-aiohttp": lambda: run_httpx(urls, on_aiohttp=True),
        "aiohttp": lambda: run_aiohttp(urls),
    }
    figures = asyncio.run(runners[args.client]())
    print(json.dumps({phase: vars(value) for phase, value in figures.items()}))


# --- the driver -----------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    label: str
    client: str
    tree: str  # "" for this tree


def available(client: str) -> bool:
    needed = {"httpx-aiohttp": "httpx_aiohttp", "aiohttp": "aiohttp"}.get(client)
    return needed is None or importlib.util.find_spec(needed) is not None


def run_worker(contender: Contender, urls_file: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-c",
        WORKER_BOOT,
        contender.tree,
        str(REPO),
        contender.client,
        "--urls-from",
        str(urls_file),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=WORKER_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{contender.label} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    from bench.harness import StaticServer
    from bench.harness import exit_on_sigterm
    from bench.harness import machine_line
    from bench.harness import say
    from bench.harness import table

    parser = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__)
    parser.add_argument("--feeds", type=int, default=FEEDS)
    parser.add_argument("--repetitions", type=int, default=REPETITIONS)
    parser.add_argument("--baseline", type=Path, help="another checkout: its Fetcher too")
    parser.add_argument("--no-nginx", action="store_true", help="serve with FixtureServer")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_FEEDS} feeds, once")
    parser.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker_main(args.worker)
        return 0
    exit_on_sigterm()
    feeds, repetitions = (SMOKE_FEEDS, 1) if args.smoke else (args.feeds, args.repetitions)
    contenders = [Contender("fetcher", "fetcher", "")]
    if args.baseline is not None:
        baseline = args.baseline.resolve()
        contenders.append(Contender(f"fetcher@{baseline.name}", "fetcher", str(baseline)))
    for client in CLIENTS[1:]:
        if available(client):
            contenders.append(Contender(client, client, ""))
        else:
            say(f"{client}: not installed, skipped")
    say(f"bench.transport: {machine_line()}")
    with tempfile.TemporaryDirectory(prefix="bench-transport-") as tmp:
        root = Path(tmp) / "www"
        paths = write_feeds(root, feeds)
        with StaticServer(root, use_nginx=not args.no_nginx, hosts=HOSTS) as server:
            say(f"server: {server.description}; {feeds} feeds; {repetitions} repetition(s)")
            bases = server.base_urls
            urls = [f"{bases[i % len(bases)]}/{path}" for i, path in enumerate(paths)]
            urls_file = Path(tmp) / "urls.txt"
            urls_file.write_text("\n".join(urls), encoding="utf-8")
            runs: dict[str, list[dict[str, Any]]] = {c.label: [] for c in contenders}
            for repetition in range(repetitions):
                for contender in contenders:
                    figures = run_worker(contender, urls_file)
                    expected = {"200": {"200": feeds}, "304": {"304": feeds}}
                    for phase in PHASES:
                        if figures[phase]["statuses"] != expected[phase]:
                            raise RuntimeError(
                                f"{contender.label}: phase {phase} answered "
                                f"{figures[phase]['statuses']}"
                            )
                    runs[contender.label].append(figures)
                say(f"repetition {repetition + 1}/{repetitions} done")
    rows = []
    medians = {
        label: {
            phase: (
                statistics.median(run[phase]["wall"] for run in figures),
                statistics.median(run[phase]["cpu"] for run in figures),
            )
            for phase in PHASES
        }
        for label, figures in runs.items()
    }
    # Ratios of CPU time: on a shared machine the wall time also measures everyone else.
    best = {phase: min(m[phase][1] for m in medians.values()) for phase in PHASES}
    for label, by_phase in medians.items():
        row: list[object] = [label]
        for phase in PHASES:
            wall, cpu = by_phase[phase]
            row += [f"{wall:.3f}", f"{cpu:.3f}", f"{cpu / best[phase]:.1f}x"]
        rows.append(row)
    headers = ["client"]
    for phase in PHASES:
        headers += [f"{phase} wall s", f"{phase} CPU s", f"{phase} CPU vs best"]
    say("")
    say(f"{feeds} GETs per phase, {CONCURRENCY} in flight; medians of {repetitions}:")
    say(table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
