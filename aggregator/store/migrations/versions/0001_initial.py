"""The first schema: members, sources, stories and items (the core pipeline).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    schema_info = op.create_table(
        "schema_info",
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.bulk_insert(schema_info, [{"version": 1}])
    op.create_table(
        "members",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False, unique=True),
        sa.Column("member_id", sa.String(40), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("etag", sa.Text()),
        sa.Column("last_modified", sa.Text()),
        sa.Column("body_hash", sa.String(64)),
        sa.Column("last_polled_at", sa.DateTime()),
        sa.Column("last_success_at", sa.DateTime()),
        sa.Column("last_new_item_at", sa.DateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_warning", sa.Text()),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("moved_to", sa.Text()),
    )
    op.create_table(
        "stories",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("published", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_stories_published", "stories", ["published", "id"])
    op.create_table(
        "items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source_id", sa.Integer(), sa.ForeignKey("sources.id"), nullable=False),
        sa.Column("member_id", sa.String(40), sa.ForeignKey("members.id"), nullable=False),
        sa.Column("story_id", sa.Integer(), sa.ForeignKey("stories.id"), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("url", sa.Text()),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_key", sa.Text(), nullable=False),
        sa.Column("content_html", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("published", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.Column("date_from_source", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("image", sa.Text()),
        sa.Column("language", sa.String(35)),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("source_id", "key", name="uq_items_source_key"),
    )
    op.create_index("ix_items_story", "items", ["story_id"])
    op.create_index("ix_items_url", "items", ["url"])
    op.create_index("ix_items_title_key", "items", ["title_key", "published"])
    op.create_index("ix_items_member_published", "items", ["member_id", "published"])


def downgrade() -> None:
    for index, table in (
        ("ix_items_member_published", "items"),
        ("ix_items_title_key", "items"),
        ("ix_items_url", "items"),
        ("ix_items_story", "items"),
        ("ix_stories_published", "stories"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("items", "stories", "sources", "members", "schema_info"):
        op.drop_table(table)
