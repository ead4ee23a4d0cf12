"""`aggregator fetch`'s main process does not load the parse stack before it parses.

In a round of many sources the bodies are parsed in spawned parse processes
(aggregator.ingest.pool), and a round in which every source answers 304 parses nothing:
the polling process then has no use for BeautifulSoup and its builders, feedparser or nh3,
which cost it 11 MB and 0.1 s when it imported them anyway. Each check runs in a fresh
interpreter, since the test process itself has long imported them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import paths

# The parse stack: what the main process of `aggregator fetch` loads only when it parses.
PARSE_STACK = ("bs4", "feedparser", "nh3", "soupsieve", "lxml", "html5lib")

IMPORTS = """\
import json
import sys

import aggregator.cli.polling
import aggregator.config
import aggregator.ingest.poll
import aggregator.store

print(json.dumps(sorted(sys.modules)))
"""

# A round of three sources on a local server that answers every request 304 Not Modified,
# the way `aggregator fetch` polls (CLI's Fetcher, poll_all and its writer).
ROUND_OF_304S = """\
import asyncio
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aggregator.config import parse_config
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.poll import poll_all
from aggregator.store import Store


class NotModified(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(304)
        self.send_header("ETag", '"same"')
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotModified)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    sources = "".join(f"      - feed: {base}/feed-{n}.xml\\n" for n in range(3))
    config = parse_config(
        "network:\\n"
        "  title: WSR Network\\n"
        "  url: https://wsr-network.org/\\n"
        "  feed_url: https://wsr-network.org/news/\\n"
        "members:\\n"
        "  - id: harvest\\n"
        "    name: Harvest Workers\\n"
        f"    url: {base}/\\n"
        "    sources:\\n" + sources
    )
    store = Store.open(sys.argv[1])
    store.sync_config(config)

    async def poll() -> list[str]:
        async with Fetcher() as fetcher:
            reports = await poll_all(config, store, fetcher)
        return [report.outcome.value for report in reports]

    try:
        outcomes = asyncio.run(poll())
    finally:
        store.close()
        server.shutdown()
    print(json.dumps({"outcomes": outcomes, "modules": sorted(sys.modules)}))


if __name__ == "__main__":
    main()
"""


def _loaded_parse_stack(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in PARSE_STACK]


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=paths.ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_polling_modules_do_not_import_the_parse_stack() -> None:
    modules = json.loads(_run(IMPORTS))
    assert "aggregator.ingest.poll" in modules
    assert _loaded_parse_stack(modules) == []


def test_a_round_where_every_source_answers_304_loads_no_parser(tmp_path: Path) -> None:
    answer = json.loads(_run(ROUND_OF_304S, f"sqlite:///{tmp_path / 'aggregator.db'}"))
    assert answer["outcomes"] == ["unchanged"] * 3
    assert _loaded_parse_stack(answer["modules"]) == []
