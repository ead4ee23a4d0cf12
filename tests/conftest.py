"""Shared test fixtures: a real HTTP server on 127.0.0.1 and real databases.

`database_url` (and `store`, built on it) runs each test that uses it twice: on an SQLite
file and on the PostgreSQL server at 127.0.0.1:5432 (a throwaway database per test run).
If PostgreSQL is down it is started with pg_ctlcluster; only where it cannot run at all
are the PostgreSQL variants skipped, with the reason.

Under CI (`AGGREGATOR_CI=1`, set by `.ci/run`) a skip is a failure: PostgreSQL, Chromium and
the shared corpus are always there, so a test that cannot run there is a broken run, not a
quiet pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from aggregator.store import Store
from tests.support.server import FixtureServer

FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES_ADMIN_URL = os.environ.get(
    "AGGREGATOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


IN_CI = os.environ.get("AGGREGATOR_CI") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI, turn every skip into a failure that keeps the skip's reason."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI (AGGREGATOR_CI=1), which must run it: {report.longrepr}"
        )


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    """A fixture server with tests/fixtures/ as its document root."""
    with FixtureServer(FIXTURES) as running:
        yield running


def _postgres_reachable() -> str | None:
    """None when the server answers, else why not."""
    engine = create_engine(POSTGRES_ADMIN_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    finally:
        engine.dispose()


def _start_postgres() -> None:
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return
    for version in sorted(path.name for path in Path("/etc/postgresql").iterdir()):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session, dropped at the end."""
    problem = _postgres_reachable()
    if problem is not None:
        _start_postgres()
        problem = _postgres_reachable()
    if problem is not None:
        pytest.skip(f"PostgreSQL at {POSTGRES_ADMIN_URL} cannot be reached: {problem}")
    name = f"aggregator_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_postgres(url: str) -> None:
    """Drop everything, the migrations' alembic_version table included."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: an SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'aggregator.db'}"
        return
    url: str = request.getfixturevalue("postgres_server_url")
    _empty_postgres(url)
    yield url
    _empty_postgres(url)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()
