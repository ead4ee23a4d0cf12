"""`aggregator status` and `db upgrade`: what the database records, and its schema.

This module must never create a database for `status` (an empty one would say nothing).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC
from datetime import datetime
from typing import TextIO

from aggregator.cli.common import DEFAULT_CONFIG
from aggregator.cli.common import DEFAULT_DEMO_DIR
from aggregator.cli.common import EXIT_OK
from aggregator.cli.common import EXIT_STORAGE
from aggregator.cli.common import default_database_url
from aggregator.cli.common import rich_terminal


def command_db_upgrade(database: str, out: TextIO) -> int:
    from aggregator.store import Store
    from aggregator.store.base import schema_state

    before = schema_state(database)
    Store.open(database).close()
    if before.up_to_date:
        print(f"the database is already at schema revision {before.head}", file=out)
    else:
        print(
            f"the database schema is now at revision {before.head} "
            f"(was {before.current or 'empty'})",
            file=out,
        )
    return EXIT_OK


def status_target(config_path: str, database: str) -> tuple[str, str, str | None]:
    """The feeds.yaml and database `status` reads, and why when it is not the ones given.

    Left to the defaults, with no database at the default path but the demo's database
    present (`aggregator demo` run from here), that is the one meant.
    """
    from aggregator.store.base import sqlite_file

    chosen = "AGGREGATOR_DATABASE_URL" in os.environ or database != default_database_url()
    default_file = sqlite_file(database)
    demo_file = DEFAULT_DEMO_DIR / "aggregator.db"
    if chosen or default_file is None or default_file.exists() or not demo_file.exists():
        return config_path, database, None
    if "AGGREGATOR_CONFIG" not in os.environ and config_path == DEFAULT_CONFIG:
        config_path = str(DEFAULT_DEMO_DIR / "feeds.yaml")
    why = (
        f"there is no database at {default_file}; reading the demo's, {demo_file} "
        "(choose another with --database URL or $AGGREGATOR_DATABASE_URL)"
    )
    return config_path, f"sqlite:///{demo_file}", why


def command_status(config_path: str, database: str, as_json: bool, out: TextIO) -> int:
    """Every source's health, from an existing database: never a new, empty one."""
    from rich.console import Console

    from aggregator.config import load_config
    from aggregator.service.status import render_status_json
    from aggregator.service.status import render_status_text
    from aggregator.service.status import status_rows
    from aggregator.service.status import status_table
    from aggregator.store import Store
    from aggregator.store.base import schema_state
    from aggregator.store.base import sqlite_file

    config_path, database, why = status_target(config_path, database)
    if why is not None:
        print(why, file=sys.stderr)
    how = "point at another with --database URL or $AGGREGATOR_DATABASE_URL"
    missing = sqlite_file(database)
    if missing is not None and not missing.exists():
        print(
            f"error: there is no database at {missing.resolve()}: nothing was ever polled "
            f"into it (`aggregator run` or `aggregator fetch` create it); {how}",
            file=sys.stderr,
        )
        return EXIT_STORAGE
    if schema_state(database).current is None:
        print(
            f"error: the database {database} is empty: nothing was ever polled into it; {how}",
            file=sys.stderr,
        )
        return EXIT_STORAGE
    config = load_config(config_path)
    store = Store.open(database)
    try:
        now = datetime.now(UTC)
        rows = status_rows(store, config, now)
    finally:
        store.close()
    if as_json:
        out.write(render_status_json(rows, now).decode("utf-8") + "\n")
    elif out.isatty():
        Console(file=rich_terminal(out)).print(status_table(rows, now))
    else:
        out.write(render_status_text(rows, now))
    return EXIT_OK
