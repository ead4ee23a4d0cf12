"""Fixtures of the hostile-input suite: one fixture server per module, an SQLite store.

Starting and stopping a FixtureServer costs half a second (its serve_forever polls), so
the suite shares one per module and empties its routes, responders and request log
before each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.store import Store
from tests.support.server import FixtureServer


@pytest.fixture(scope="module")
def module_server() -> Iterator[FixtureServer]:
    with FixtureServer() as running:
        yield running


@pytest.fixture
def server(module_server: FixtureServer) -> FixtureServer:
    module_server.routes.clear()
    module_server.responders.clear()
    module_server.requests.clear()
    return module_server


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'aggregator.db'}")
    yield opened
    opened.close()
