"""Tag slugs fold accents: "Capacitación" is now "capacitacion" (aggregator.text.slugify).

Until this revision a tag slug kept letters of any script ("capacitación"), while member
ids and every other slug folded them: one rule now serves all (issue 10). ASCII tags keep
their slugs; item_tags is refilled from the tags stored on items with the new rule, so the
per-tag feeds of accented tags move to their folded address (/tags/capacitacion/).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The tag slug rule at this revision (aggregator.text.slugify with the store's maximum of
# 100). A migration keeps its own copy: it must do the same whatever the code becomes.
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_TAG_SLUG_MAX = 100
_BATCH = 1000


def _slug(tag: str) -> str:
    decomposed = unicodedata.normalize("NFKD", tag.casefold())
    folded = "".join(char for char in decomposed if not unicodedata.combining(char))
    slug = _NOT_SLUG.sub("-", folded).strip("-")
    if len(slug) <= _TAG_SLUG_MAX:
        return slug
    cut = slug[: _TAG_SLUG_MAX + 1].rfind("-")
    return slug[:cut] if cut > 0 else slug[:_TAG_SLUG_MAX].strip("-")


def upgrade() -> None:
    item_tags = sa.table("item_tags", sa.column("item_id", sa.Integer()), sa.column("tag"))
    items = sa.table("items", sa.column("id", sa.Integer()), sa.column("tags", sa.JSON()))
    connection = op.get_bind()
    connection.execute(item_tags.delete())
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
    # The folded slugs still name the same tags; the older code reads them as they are.
    pass
