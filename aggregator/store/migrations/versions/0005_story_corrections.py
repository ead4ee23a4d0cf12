"""Staff's corrections of the cross-post rule (issue 12): feeds.yaml `keep_apart:`/`merge:`.

Adds story_corrections, one row per item address of each group. It starts empty: the
next sync of feeds.yaml fills it and applies the corrections to the stored stories.
Adds an index on items.first_seen_at, so /status reads the latest merges without a scan.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story_corrections",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("kind", "group_id", "url"),
    )
    op.create_index("ix_story_corrections_url", "story_corrections", ["url"])
    op.create_index("ix_items_first_seen", "items", ["first_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_items_first_seen", table_name="items")
    op.drop_index("ix_story_corrections_url", table_name="story_corrections")
    op.drop_table("story_corrections")
