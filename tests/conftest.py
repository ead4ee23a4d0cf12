"""Shared test fixtures: a real HTTP server on 127.0.0.1 and a real SQLite database file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.fixture_server import FixtureServer
from aggregator.store import Store

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    """A fixture server with tests/fixtures/ as its document root."""
    with FixtureServer(FIXTURES) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'aggregator.db'}")
    yield opened
    opened.close()
