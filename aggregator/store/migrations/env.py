"""Alembic environment for the aggregator's schema migrations.

Run through aggregator.store.migrate (never with an alembic.ini): the caller hands over
an open connection in `config.attributes["connection"]`, so migrations run inside the
caller's transaction on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from aggregator.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through aggregator.store.migrate, with a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
