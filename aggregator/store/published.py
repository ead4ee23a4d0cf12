"""Store methods for publishing: the stories the feeds, pages and API render.

Read-only: this module must never write. Stories staff hid are never returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Connection
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select

from aggregator.models import Credit
from aggregator.models import PublishedStory
from aggregator.models import StoryCursor
from aggregator.models import StoryPage
from aggregator.store import schema
from aggregator.store.base import StoreBase
from aggregator.store.stories import speaking_item
from aggregator.text import tag_slug


class PublishedMixin(StoreBase):
    """Reading stories, newest first, filtered and paged, each with every member credited."""

    def latest_stories(
        self,
        limit: int,
        *,
        member_id: str | None = None,
        tag: str | None = None,
        query: str | None = None,
        language: str | None = None,
        before: StoryCursor | None = None,
    ) -> list[PublishedStory]:
        """The newest `limit` stories, newest first, each with every member credited.

        The filters are those of story_page.
        """
        return self.story_page(
            limit, member_id=member_id, tag=tag, query=query, language=language, before=before
        ).stories

    def story_page(
        self,
        limit: int,
        *,
        member_id: str | None = None,
        tag: str | None = None,
        query: str | None = None,
        language: str | None = None,
        before: StoryCursor | None = None,
        offset: int = 0,
        stored_order: bool = False,
    ) -> StoryPage:
        """Up to `limit` stories, newest first, and the cursor of the page after them.

        A story is kept when one of its items is by `member_id`; when one of its items has
        the tag `tag`, or its member has (compared as tag_slug); when `query` occurs in one
        of its items' title or summary, case-insensitively; when one of its items is in
        `language` ("es" also takes "es-MX"). `before` continues after a page's cursor.
        `stored_order` orders by when each story was first stored, oldest first, which
        never reorders pages already seen (the Atom archive documents need that).
        """
        stories = schema.stories.c
        with self.engine.connect() as connection:
            conditions = _story_conditions(
                connection, member_id=member_id, tag=tag, query=query, language=language
            )
            if before is not None:
                conditions.append(
                    or_(
                        stories.published < before.published,
                        (stories.published == before.published) & (stories.id < before.story_id),
                    )
                )
            order = (
                [stories.id.asc()]
                if stored_order
                else [stories.published.desc(), stories.id.desc()]
            )
            story_rows = connection.execute(
                select(stories.id, stories.uid, stories.published)
                .where(*conditions)
                .order_by(*order)
                .offset(offset)
                .limit(limit + 1)
            ).all()
            more = len(story_rows) > limit
            story_rows = story_rows[:limit]
            story_ids = [row.id for row in story_rows]
            item_rows = connection.execute(
                select(
                    schema.items,
                    schema.members.c.name.label("member_name"),
                    schema.members.c.url.label("member_url"),
                )
                .join(schema.members, schema.members.c.id == schema.items.c.member_id)
                .where(schema.items.c.story_id.in_(story_ids))
                .order_by(schema.items.c.id)
            ).all()
        by_story: dict[int, list[Any]] = {story_id: [] for story_id in story_ids}
        for row in item_rows:
            by_story[row.story_id].append(row)
        last = story_rows[-1] if story_rows else None
        return StoryPage(
            stories=[
                _published_story(row.uid, by_story[row.id], member_id=member_id)
                for row in story_rows
                if by_story[row.id]
            ],
            next_cursor=(
                StoryCursor(published=last.published, story_id=last.id)
                if more and last is not None and not stored_order
                else None
            ),
        )

    def count_stories(
        self,
        *,
        member_id: str | None = None,
        tag: str | None = None,
        query: str | None = None,
        language: str | None = None,
    ) -> int:
        """How many stories story_page would go through with these filters."""
        with self.engine.connect() as connection:
            conditions = _story_conditions(
                connection, member_id=member_id, tag=tag, query=query, language=language
            )
            counted = connection.scalar(
                select(func.count()).select_from(schema.stories).where(*conditions)
            )
        return counted or 0

    def tag_slugs(self) -> list[str]:
        """Every tag in use, by item or by member, as tag_slug, sorted."""
        with self.engine.connect() as connection:
            slugs = set(connection.scalars(select(schema.item_tags.c.tag).distinct()))
            for tags in connection.scalars(select(schema.members.c.tags)):
                slugs.update(tag_slug(tag) for tag in tags)
        slugs.discard("")
        return sorted(slugs)


def _story_conditions(
    connection: Connection,
    *,
    member_id: str | None,
    tag: str | None,
    query: str | None,
    language: str | None,
) -> list[ColumnElement[bool]]:
    stories = schema.stories.c
    items = schema.items.c
    hidden = schema.hidden_stories.c
    # Stories staff hid (by story id or by any of its items' URLs) are never published.
    conditions: list[ColumnElement[bool]] = [
        (literal("urn:uuid:") + stories.uid).not_in(select(hidden.target)),
        stories.id.not_in(select(items.story_id).where(items.url.in_(select(hidden.target)))),
    ]
    if member_id is not None:
        by_member = select(items.story_id).where(items.member_id == member_id)
        conditions.append(stories.id.in_(by_member))
    if tag is not None:
        slug = tag_slug(tag)
        tagged_items = (
            select(items.story_id)
            .join(schema.item_tags, schema.item_tags.c.item_id == items.id)
            .where(schema.item_tags.c.tag == slug)
        )
        options: list[ColumnElement[bool]] = [stories.id.in_(tagged_items)]
        # Members are few: matching their tags here keeps the SQL free of JSON operators.
        tagged_members = [
            row.id
            for row in connection.execute(select(schema.members.c.id, schema.members.c.tags))
            if slug in {tag_slug(member_tag) for member_tag in row.tags}
        ]
        if tagged_members:
            options.append(
                stories.id.in_(select(items.story_id).where(items.member_id.in_(tagged_members)))
            )
        conditions.append(or_(*options) if slug else false())
    if query:
        pattern = "%" + _escape_like(query) + "%"
        conditions.append(
            stories.id.in_(
                select(items.story_id).where(
                    or_(
                        items.title.ilike(pattern, escape="\\"),
                        items.summary.ilike(pattern, escape="\\"),
                    )
                )
            )
        )
    if language:
        folded = language.lower()
        conditions.append(
            stories.id.in_(
                select(items.story_id).where(
                    or_(
                        func.lower(items.language) == folded,
                        func.lower(items.language).like(_escape_like(folded) + "-%", escape="\\"),
                    )
                )
            )
        )
    return conditions


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _published_story(
    uid: str, rows: Sequence[Any], *, member_id: str | None = None
) -> PublishedStory:
    """One story from its items: stories.speaking_item speaks for it, all are credited.

    A member joining a story adds a credit and nothing else: ordering by the dates items
    claim alone would let a member that republishes another's link with an earlier date
    take the story over (its title, summary, link, image and date). In a member's own feed
    (`member_id`) the member's own post speaks for the story, so it shows what it posted.
    """
    primary = speaking_item(rows)
    rows = sorted(rows, key=lambda row: (row is not primary, row.first_seen_at, row.id))
    if member_id is not None:
        primary = next((row for row in rows if row.member_id == member_id), primary)
    member_credits: list[Credit] = []
    credited: set[str] = set()
    tags: list[str] = []
    for row in rows:
        if row.member_id not in credited:
            credited.add(row.member_id)
            member_credits.append(
                Credit(
                    member_id=row.member_id,
                    member_name=row.member_name,
                    member_url=row.member_url,
                    item_url=row.url,
                )
            )
        tags.extend(tag for tag in row.tags if tag.casefold() not in {t.casefold() for t in tags})
    return PublishedStory(
        id=f"urn:uuid:{uid}",
        url=primary.url,
        title=primary.title,
        content_html=primary.content_html,
        summary=primary.summary,
        published=primary.published,
        updated=max(primary.published, primary.updated),
        credits=tuple(member_credits),
        authors=tuple(primary.authors),
        tags=tuple(tags),
        image=primary.image,
        language=primary.language,
    )
