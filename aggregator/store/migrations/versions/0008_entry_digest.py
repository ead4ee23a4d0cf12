"""Skipping unchanged entries (issue 14): items.entry_digest.

Adds the column in which each item keeps the digest of the parsed entry it was last
written from (aggregator.ingest.normalize.entry_digests: the entry's fields and everything
else normalize's output depends on). A poll of a changed feed reads its source's digests
and does not normalize the entries whose digest is stored (normalize.py says why that is
safe). Rows stored before this revision keep NULL, which matches no entry: their entries
are normalized as before, and an item gets its digest the next time it is written.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column without a default: ALTER TABLE ADD COLUMN on both databases, no copy
    # of the table (SQLite and PostgreSQL only record it in the catalog).
    op.add_column("items", sa.Column("entry_digest", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("entry_digest")
