"""Schema migrations (Alembic): create a new database, recognise an old one, upgrade it.

The revisions live in aggregator/store/migrations/versions and are the only way the
schema changes: a new database is created by running them all, an older one is upgraded
by running the missing ones, in one transaction where the backend allows it (PostgreSQL;
SQLite runs each ALTER in batch mode). A database this code does not know (a newer
revision, or tables that are not ours) is refused untouched.

Checking a database that is up to date (every start of every command) must not import
Alembic: it is about 10 MB of a polling process's memory for a one-row read. The revisions
are therefore read from the files' names (`NNNN_what.py` holds revision "NNNN", each after
the one before: tests/store/test_migrate.py holds Alembic's own view to that), and Alembic
is imported only to upgrade.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Connection
from sqlalchemy import inspect
from sqlalchemy import text

from aggregator.errors import StorageError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: an empty database
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig  # only to upgrade: see the docstring

    config = AlembicConfig()
    config.set_main_option(
        "script_location", str(resources.files("aggregator.store") / "migrations")
    )
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def known_revisions() -> set[str]:
    """Every packaged revision, from the migration files' names (see the docstring)."""
    versions = resources.files("aggregator.store") / "migrations" / "versions"
    return {
        entry.name.split("_", 1)[0]
        for entry in versions.iterdir()
        if entry.name.endswith(".py") and entry.name[:4].isdigit()
    }


def head_revision() -> str:
    revisions = known_revisions()
    assert revisions, "no migrations are packaged"
    return max(revisions)


def current_revision(connection: Connection) -> str | None:
    """The revision Alembic recorded in the database (its alembic_version table), if any."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    found = connection.scalar(text("SELECT version_num FROM alembic_version"))
    return None if found is None else str(found)


def schema_state(connection: Connection, url: str) -> SchemaState:
    """Where the database stands; StorageError if it is not one of ours or is too new."""
    head = head_revision()
    tables = set(inspect(connection).get_table_names())
    if not tables:
        return SchemaState(current=None, head=head)
    current = current_revision(connection)
    if current is None:
        raise StorageError(
            f"the database {url} was not created by this aggregator (it has tables but no "
            "schema revision): point --database at a new file or an empty database"
        )
    if current not in known_revisions():
        raise StorageError(
            f"the database {url} is at schema revision {current}, which this version of the "
            f"aggregator does not know (it knows up to {head}): it was made by a newer "
            "version. It was not opened and nothing was changed; upgrade the aggregator."
        )
    return SchemaState(current=current, head=head)


def upgrade(connection: Connection, state: SchemaState) -> None:
    """Bring the database to the newest revision (creating it when empty)."""
    if state.current is None:
        log.info("creating the database schema (revision %s)", state.head)
    else:
        log.warning(
            "upgrading the database schema from revision %s to %s", state.current, state.head
        )
    from alembic import command  # only to upgrade: see the docstring

    command.upgrade(alembic_config(connection), "head")
