"""Storage under hostile conditions: SIGKILL mid-poll and mid-export, two fetches at once,
a database from another schema version. Real `aggregator` processes, real SQLite files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from aggregator.cli import main
from aggregator.demo.server import Route
from aggregator.store import Store
from tests.support.server import FixtureServer

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCES = 12
ITEMS_PER_SOURCE = 40
PUBLISHED = ("feed.atom", "feed.rss", "feed.json")


def feed_body(source: int, items: int = ITEMS_PER_SOURCE) -> bytes:
    entries = "".join(
        # Report numbers unique across members: "Member 1 report 10" and "Member 10 report
        # 1" have the same words, and equivalent headlines are one story.
        f"<item><title>Member {source} report {source * 100 + n}: wages, water and shade"
        "</title>"
        f"<link>https://m{source}.example.org/reports/{n}/</link><guid>m{source}-r{n}</guid>"
        f"<pubDate>Mon, {1 + n % 28:02d} Jun 2026 10:00:00 GMT</pubDate>"
        # Each report its own text: identical long bodies would be one story (dedupe's
        # "same text" rule), and these are 480 different reports.
        f"<description>{f'Member {source} report {source * 100 + n} text. ' * 10}</description>"
        "</item>"
        for n in range(items)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Member {source}</title>{entries}</channel></rss>"
    ).encode()


@pytest.fixture
def network(server: FixtureServer, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """feeds.yaml with SOURCES members on the fixture server, and a database URL."""
    lines = [
        "network:",
        "  title: Storage test network",
        "  url: https://network.example.org/",
        "  feed_url: https://network.example.org/feeds/",
        "  items_per_feed: 1000",
        "members:",
    ]
    for source in range(SOURCES):
        server.routes[f"/m{source}.xml"] = Route(
            body=feed_body(source), headers={"Content-Type": "application/rss+xml"}
        )
        lines += [
            f"  - id: m{source}",
            f"    name: Member {source}",
            f"    url: https://m{source}.example.org/",
            "    sources:",
            f"      - feed: {server.url(f'/m{source}.xml')}",
        ]
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    yield config_path, f"sqlite:///{tmp_path / 'aggregator.db'}"


def aggregator(config: Path, database: str, *args: str) -> subprocess.Popen[bytes]:
    """`aggregator …` as its own process, running this checkout's code."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("AGGREGATOR_")
    }
    environment["PYTHONPATH"] = str(REPOSITORY)
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator.cli", "--config", str(config),
         "--database", database, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
    )  # fmt: skip


def finish(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out.decode(), err.decode()


def database_file(database: str) -> str:
    return database.removeprefix("sqlite:///")


def integrity(database: str) -> str:
    with sqlite3.connect(database_file(database)) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def count(database: str, table: str) -> int:
    with sqlite3.connect(database_file(database)) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def wait_for(condition: object, timeout: float = 30.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_sigkill_in_the_middle_of_a_poll_leaves_a_sound_database_and_the_next_run_continues(
    server: FixtureServer, network: tuple[Path, str]
) -> None:
    config, database = network
    # One member's server hangs, so the kill lands while the poll is still going.
    server.routes["/m0.xml"] = Route(
        body=feed_body(0), headers={"Content-Type": "application/rss+xml"}, delay=60
    )
    process = aggregator(config, database, "fetch")
    wait_for(lambda: server.requests_for("/m0.xml") and count_if_exists(database) >= 2 * 40)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)

    assert integrity(database) == "ok"
    stored = count(database, "items")
    assert stored % ITEMS_PER_SOURCE == 0  # whole polls only: one transaction per source
    assert stored < SOURCES * ITEMS_PER_SOURCE

    server.routes["/m0.xml"] = Route(
        body=feed_body(0), headers={"Content-Type": "application/rss+xml"}
    )
    code, out, err = finish(aggregator(config, database, "fetch"))
    assert code == 0, err
    assert count(database, "items") == SOURCES * ITEMS_PER_SOURCE
    assert count(database, "stories") == SOURCES * ITEMS_PER_SOURCE
    assert integrity(database) == "ok"
    assert "0 failed" in out


def count_if_exists(database: str) -> int:
    try:
        return count(database, "items")
    except sqlite3.OperationalError:
        return 0  # not created yet


def test_repeated_sigkills_at_any_moment_of_a_poll_never_corrupt_anything(
    network: tuple[Path, str],
) -> None:
    config, database = network
    for delay in (0.9, 1.3, 1.7, 2.1):
        process = aggregator(config, database, "fetch")
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        if Path(database_file(database)).exists():
            assert integrity(database) == "ok"
            assert count_if_exists(database) % ITEMS_PER_SOURCE == 0
    code, _, err = finish(aggregator(config, database, "fetch"))
    assert code == 0, err
    assert count(database, "items") == SOURCES * ITEMS_PER_SOURCE


def published_counts(directory: Path) -> dict[str, int]:
    """Entries in each published file; every one must be a complete, readable feed."""
    counts = {}
    for name in PUBLISHED:
        content = (directory / name).read_bytes()
        if name.endswith(".json"):
            counts[name] = len(json.loads(content)["items"])
            continue
        parsed = feedparser.parse(content)
        assert not parsed.bozo, (name, parsed.get("bozo_exception"))
        counts[name] = len(parsed.entries)
    return counts


def test_sigkill_in_the_middle_of_an_export_leaves_each_file_old_or_new(
    server: FixtureServer, network: tuple[Path, str], tmp_path: Path
) -> None:
    config, database = network
    # The old state: half the members, exported.
    for source in range(SOURCES // 2, SOURCES):
        server.routes[f"/m{source}.xml"] = Route(status=503)
    assert finish(aggregator(config, database, "fetch"))[0] == 0
    published = tmp_path / "published"
    assert main(["--config", str(config), "--database", database, "export", str(published)]) == 0
    old_count = SOURCES // 2 * ITEMS_PER_SOURCE
    assert set(published_counts(published).values()) == {old_count}
    # The new state: every member.
    for source in range(SOURCES // 2, SOURCES):
        server.routes[f"/m{source}.xml"] = Route(
            body=feed_body(source), headers={"Content-Type": "application/rss+xml"}
        )
    assert finish(aggregator(config, database, "fetch"))[0] == 0
    new_count = SOURCES * ITEMS_PER_SOURCE

    for delay in (1.2, 1.5, 1.8):
        process = aggregator(config, database, "export", str(published))
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        counts = published_counts(published)
        assert set(counts.values()) <= {old_count, new_count}, counts
    code, _, err = finish(aggregator(config, database, "export", str(published)))
    assert code == 0, err
    assert set(published_counts(published).values()) == {new_count}
    assert integrity(database) == "ok"


WRITER = """
import sys
from pathlib import Path
from aggregator.files import write_atomically
write_atomically(Path(sys.argv[1]), b"<!-- new -->" * (12 * 1024 * 1024))
"""


def test_sigkill_while_a_published_file_is_being_written_keeps_the_old_file(
    tmp_path: Path,
) -> None:
    """Deterministic: the kill lands while 144 MB are being written to the temporary file."""
    target = tmp_path / "feed.atom"
    old = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>old</title></feed>'
    target.write_bytes(old)
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], env=environment)

    def writing() -> bool:
        return any(
            path.name.startswith(".feed.atom.") and path.stat().st_size > 1024 * 1024
            for path in tmp_path.iterdir()
        )

    wait_for(writing)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL  # killed mid-write, not finished
    assert target.read_bytes() == old


def test_two_fetches_at_once_neither_corrupt_nor_duplicate(
    server: FixtureServer, network: tuple[Path, str]
) -> None:
    config, database = network
    for source in range(SOURCES):  # slow enough that both processes overlap throughout
        server.routes[f"/m{source}.xml"] = Route(
            body=feed_body(source), headers={"Content-Type": "application/rss+xml"}, delay=0.3
        )
    # The schema exists (a first run creating it from two processes is another race).
    Store.open(database).close()
    first = aggregator(config, database, "fetch")
    second = aggregator(config, database, "fetch")
    results = [finish(first), finish(second)]
    for code, _, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    assert integrity(database) == "ok"
    assert count(database, "items") == SOURCES * ITEMS_PER_SOURCE
    assert count(database, "stories") == SOURCES * ITEMS_PER_SOURCE


@pytest.mark.parametrize("version", ["9999", "0003_from_the_future"])
def test_database_at_an_unknown_schema_revision_is_refused_with_exit_3(
    network: tuple[Path, str], capsys: pytest.CaptureFixture[str], version: str
) -> None:
    config, database = network
    Store.open(database).close()
    with sqlite3.connect(database_file(database)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (version,))
    before = Path(database_file(database)).read_bytes()
    capsys.readouterr()

    code = main(["--config", str(config), "--database", database, "fetch"])

    err = capsys.readouterr().err
    assert code == 3
    assert f"is at schema revision {version}" in err
    assert "nothing was changed" in err
    assert Path(database_file(database)).read_bytes() == before


def test_a_database_of_some_other_program_is_refused_with_exit_3(
    network: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, database = network
    with sqlite3.connect(database_file(database)) as connection:
        connection.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)")
    code = main(["--config", str(config), "--database", database, "fetch"])
    assert code == 3
    assert "was not created by this aggregator" in capsys.readouterr().err
