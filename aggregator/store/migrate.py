"""Schema migrations (Alembic): create a new database, recognise an old one, upgrade it.

The revisions live in aggregator/store/migrations/versions and are the only way the
schema changes: a new database is created by running them all, an older one is upgraded
by running the missing ones, in one transaction where the backend allows it (PostgreSQL;
SQLite runs each ALTER in batch mode). A database this code does not know (a newer
revision, or tables that are not ours) is refused untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy import inspect

from aggregator.errors import StorageError

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: an empty database
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option(
        "script_location", str(resources.files("aggregator.store") / "migrations")
    )
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations are packaged"
    return head


def known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


def schema_state(connection: Connection, url: str) -> SchemaState:
    """Where the database stands; StorageError if it is not one of ours or is too new."""
    head = head_revision()
    tables = set(inspect(connection).get_table_names())
    if not tables:
        return SchemaState(current=None, head=head)
    current = MigrationContext.configure(connection).get_current_revision()
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
    command.upgrade(alembic_config(connection), "head")
