"""What staff see from the command line when something is wrong, through a real subprocess:
a port already taken, and `status` with no database (it must never create an empty one)
or after the demo (it must read the demo's database)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.cli import EXIT_LISTEN
from aggregator.cli import EXIT_STORAGE
from aggregator.demo import demo_config_text

ROOT = Path(__file__).resolve().parents[2]


def aggregator(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("AGGREGATOR_CONFIG", "AGGREGATOR_DATABASE_URL", "AGGREGATOR_DATA_DIR")
    }
    environment["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,  # a hang fails the test rather than the run; not a timing assertion
        check=False,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "feeds.yaml"
    # Sources nobody serves: the command must stop before polling anything.
    path.write_text(demo_config_text("http://127.0.0.1:9"), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_port_in_use_is_said_in_words_with_its_own_exit_code(
    command: str, taken_port: int, config_file: Path, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'port.db'}"
    result = aggregator(
        "--config", str(config_file), "--database", database, command, "--port", str(taken_port),
        cwd=tmp_path,
    )
    assert f"port {taken_port} is already in use; choose another with --port" in result.stderr
    assert result.returncode == EXIT_LISTEN
    assert EXIT_LISTEN != EXIT_STORAGE
    assert "Traceback" not in result.stderr
    assert "serving on" not in result.stdout


def test_status_without_a_database_says_where_it_looked_and_creates_nothing(
    tmp_path: Path, config_file: Path
) -> None:
    result = aggregator("--config", str(config_file), "status", cwd=tmp_path)
    assert result.returncode == EXIT_STORAGE
    expected = tmp_path / "data" / "aggregator.db"
    assert f"there is no database at {expected}" in result.stderr
    assert "--database" in result.stderr
    assert not expected.exists()
    assert not (tmp_path / "data").exists()


def test_status_after_the_demo_reads_the_demos_database(tmp_path: Path) -> None:
    demo = aggregator("demo", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    result = aggregator("status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "reading the demo's" in result.stderr
    assert str(Path("data") / "demo" / "aggregator.db") in result.stderr
    # The demo's members and their healthy sources, not an empty table.
    assert "harvest" in result.stdout
    assert " ok " in result.stdout
    assert not (tmp_path / "data" / "aggregator.db").exists()
