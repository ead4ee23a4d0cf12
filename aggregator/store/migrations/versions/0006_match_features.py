"""Cross-post matching at scale (issue 12): items.match_features.

Adds the column in which each item keeps what the cross-post rule compares of its text
(aggregator.dedupe.TextFeatures), and fills it for the rows already stored, so that
matching a new item never converts its candidates' HTML to text again. Like 0004 it calls
the code that computes them rather than a copy: the features must agree with the rule that
reads them, and a row the backfill missed (NULL) is computed from its text when needed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.dedupe import text_features
from aggregator.text import html_to_text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("match_features", sa.JSON(), nullable=True))
    _backfill()


def _backfill() -> None:
    items = sa.table(
        "items",
        sa.column("id", sa.Integer()),
        sa.column("title_key", sa.Text()),
        sa.column("content_html", sa.Text()),
        sa.column("summary", sa.Text()),
        sa.column("match_features", sa.JSON()),
    )
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(items.c.id, items.c.title_key, items.c.content_html, items.c.summary)
            .where(items.c.id > last_id)
            .order_by(items.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            # As a candidate an item is compared under its title key (store/items.py).
            text = html_to_text(row.content_html or row.summary)
            features = text_features(text, row.title_key).to_json()
            connection.execute(
                items.update().where(items.c.id == row.id).values(match_features=features)
            )
        last_id = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("match_features")
