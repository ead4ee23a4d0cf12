"""The running service: scheduling state, tags, moderation, alerts, WebSub, worker leases.

Adds the tables and columns of the scheduler (next poll, adaptive interval, host pauses,
leases for several workers), the web server (item_tags for per-tag feeds, a data version
for its cache), moderation (hidden_stories), alerts, 410 Gone, discovery and WebSub. Fills
item_tags from the tags already stored on items, so per-tag feeds include old items.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The tag slug rule as it stood at this revision (text.tag_slug). A migration
# keeps its own copy: it must do the same thing whatever the code becomes later.
_NOT_SLUG = re.compile(r"[\W_]+")
_TAG_SLUG_MAX = 100
_BATCH = 1000


def _source_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("discovered_url", sa.Text(), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(), nullable=True),
        sa.Column("poll_interval_seconds", sa.Integer(), nullable=True),
        sa.Column("unchanged_polls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("declared_interval_seconds", sa.Integer(), nullable=True),
        sa.Column("failing_since", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("gone_at", sa.DateTime(), nullable=True),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
    )


def _slug(tag: str) -> str:
    return _NOT_SLUG.sub("-", tag.casefold()).strip("-")[:_TAG_SLUG_MAX].strip("-")


def upgrade() -> None:
    op.create_table(
        "alert_state",
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject"),
    )
    op.create_table(
        "hidden_stories",
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("hidden_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("target"),
    )
    op.create_table(
        "host_pauses",
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("paused_until", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("host"),
    )
    op.create_table(
        "websub_subscriptions",
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("callback_id", sa.String(64), nullable=False),
        sa.Column("hub", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), server_default="new", nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.DateTime(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("source_url"),
        sa.UniqueConstraint("callback_id"),
    )
    item_tags = op.create_table(
        "item_tags",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "tag"),
    )
    op.create_index("ix_item_tags_tag", "item_tags", ["tag", "item_id"])
    op.create_index("ix_items_published", "items", ["published"])
    with op.batch_alter_table("schema_info") as batch:
        batch.add_column(
            sa.Column("data_version", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("sources") as batch:
        for column in _source_columns():
            batch.add_column(column)
    _fill_item_tags(item_tags)


def _fill_item_tags(item_tags: sa.Table | None) -> None:
    assert item_tags is not None
    items = sa.table("items", sa.column("id", sa.Integer()), sa.column("tags", sa.JSON()))
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(items.c.id, items.c.tags)
            .where(items.c.id > last_id)
            .order_by(items.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        pairs = [
            {"item_id": row.id, "tag": slug}
            for row in rows
            for slug in dict.fromkeys(_slug(tag) for tag in row.tags or ())
            if slug
        ]
        if pairs:
            connection.execute(item_tags.insert(), pairs)
        last_id = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        for column in reversed(_source_columns()):
            batch.drop_column(column.name)
    with op.batch_alter_table("schema_info") as batch:
        batch.drop_column("data_version")
    op.drop_index("ix_items_published", table_name="items")
    op.drop_index("ix_item_tags_tag", table_name="item_tags")
    for table in (
        "item_tags",
        "websub_subscriptions",
        "host_pauses",
        "hidden_stories",
        "alert_state",
    ):
        op.drop_table(table)
