"""Cross-post matching: the candidate index and merge reasons (issue 12).

Adds story_keys (each item under every key of aggregator.dedupe.candidate_keys, with its
date) and items.merge_reason (why an item was joined to a story). Recomputes
items.title_key, whose meaning changed with the new rule (labels, site suffixes and amounts
are now normalized), and fills story_keys for the rows already stored.

Unlike the slug rule of 0002/0003 the matching rule is not copied here: the index is derived
data that must agree with the code that reads it, and 400 lines of rule copied into a
migration would drift. A later change of candidate_keys ships its own re-index revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.dedupe import candidate_keys
from aggregator.dedupe import title_key

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "story_keys",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("published", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key", "item_id"),
    )
    op.create_index("ix_story_keys_key_published", "story_keys", ["key", "published"])
    op.create_index("ix_story_keys_item", "story_keys", ["item_id"])
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("merge_reason", sa.JSON(), nullable=True))
    _backfill()


def _backfill() -> None:
    items = sa.table(
        "items",
        sa.column("id", sa.Integer()),
        sa.column("url", sa.Text()),
        sa.column("title", sa.Text()),
        sa.column("title_key", sa.Text()),
        sa.column("published", sa.DateTime()),
    )
    keys = sa.table(
        "story_keys",
        sa.column("key", sa.Text()),
        sa.column("item_id", sa.Integer()),
        sa.column("published", sa.DateTime()),
    )
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(items.c.id, items.c.url, items.c.title, items.c.published)
            .where(items.c.id > last_id)
            .order_by(items.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            connection.execute(
                items.update().where(items.c.id == row.id).values(title_key=title_key(row.title))
            )
        connection.execute(
            keys.insert(),
            [
                {"key": key, "item_id": row.id, "published": row.published}
                for row in rows
                for key in dict.fromkeys(candidate_keys(row.title, row.url))
            ],
        )
        last_id = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("merge_reason")
    op.drop_index("ix_story_keys_item", table_name="story_keys")
    op.drop_index("ix_story_keys_key_published", table_name="story_keys")
    op.drop_table("story_keys")
