"""`--workers N`: several web processes on one port, through the real CLI in a subprocess.

The offline demo fills a database (its sample sites on 127.0.0.1); then `aggregator serve
--workers 2` and `aggregator run --role web --workers 2` on 127.0.0.1 must serve the same
combined feed from two live child processes, and stop with them on SIGINT. With
`--role all` (the scheduler must run once) the option is refused before anything starts.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest

from tests.service.test_websub import free_port
from tests.support.processes import environment
from tests.support.processes import running
from tests.support.processes import spawned_children as web_processes

PATIENCE = 120.0  # seconds: a hang fails the test, not a timing assertion


def aggregator(*args: str) -> list[str]:
    return [sys.executable, "-m", "aggregator.cli", *args]


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's feeds.yaml and polled database (its sample sites stop with it)."""
    output = tmp_path_factory.mktemp("workers") / "demo"
    done = subprocess.run(
        aggregator("demo", "--output", str(output)),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return output


@pytest.fixture(params=[("serve",), ("run", "--role", "web")], ids=["serve", "run-web"])
def serving(request: pytest.FixtureRequest, demo_output: Path) -> Iterator[tuple[str, int]]:
    """The command with --workers 2 on a free port, once /feed.atom answers."""
    port = free_port()
    command = aggregator(
        "--config", str(demo_output / "feeds.yaml"),
        "--database", f"sqlite:///{demo_output / 'aggregator.db'}",
        *request.param, "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
    )  # fmt: skip
    process = subprocess.Popen(
        command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PATIENCE
        while True:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the web processes never answered"
            try:
                if httpx.get(base + "/healthz", timeout=PATIENCE).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, process.pid
        workers = web_processes(process.pid)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=PATIENCE)
        assert process.returncode == 0, err
        assert "with 2 processes" in out
        assert not [pid for pid in workers if running(pid)], "left running"
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_two_web_processes_serve_the_feed(serving: tuple[str, int], demo_output: Path) -> None:
    base, pid = serving
    assert len(web_processes(pid)) == 2
    with httpx.Client(base_url=base, timeout=PATIENCE) as client:
        answers = [client.get("/feed.atom") for _ in range(4)]
        # New connections, so that both processes may take some.
        answers += [httpx.get(base + "/feed.atom", timeout=PATIENCE) for _ in range(4)]
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.headers["etag"] for answer in answers}) == 1
    assert len({answer.content for answer in answers}) == 1
    parsed = feedparser.parse(answers[0].content)
    assert not parsed.bozo and parsed.entries
    exported = (demo_output / "published" / "feed.atom").read_bytes()
    assert parsed.feed.title == feedparser.parse(exported).feed.title


def test_workers_are_refused_where_the_scheduler_runs(demo_output: Path) -> None:
    done = subprocess.run(
        aggregator(
            "--config", str(demo_output / "feeds.yaml"),
            "--database", f"sqlite:///{demo_output / 'aggregator.db'}",
            "run", "--port", str(free_port()), "--workers", "2",
        ),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--workers needs --role web" in done.stderr
    assert "Traceback" not in done.stderr
