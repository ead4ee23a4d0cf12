"""Checking feeds.yaml's 'members:' list: ids, names, sites, tags, languages and filters.

It must never fetch or check an address over the network.
"""

from __future__ import annotations

from dataclasses import replace

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.comments import CommentedSeq

from aggregator.config.check_base import FILTER_KEYS
from aggregator.config.check_base import ID_PATTERN
from aggregator.config.check_base import describe
from aggregator.config.check_base import item_line
from aggregator.config.check_base import key_line
from aggregator.config.check_base import suggest_slug
from aggregator.config.check_sources import SourceChecks
from aggregator.models import MemberConfig

_MEMBER_KEYS = ("id", "name", "url", "tags", "language", "interval", "sources", *FILTER_KEYS)

# Keys written one level off are the commonest slip; say where they belong rather than
# offering a did-you-mean that cannot fit.
_MEMBER_HINTS = {
    "feed": "feeds and pages go in the 'sources:' list, like '- feed: https://…'",
    "page": "feeds and pages go in the 'sources:' list, like '- page: https://…'",
    "selectors": "selectors belong to a '- page:' entry in the 'sources:' list",
}


class MemberChecks(SourceChecks):
    """The checks of the 'members:' list; each member's sources are checked by SourceChecks."""

    def members(self, root: CommentedMap) -> tuple[MemberConfig, ...] | None:
        if "members" not in root:
            self.problem(
                "the file has no 'members:' list (the organizations whose news is collected)",
                None,
                field="members",
            )
            return None
        node = root["members"]
        line = key_line(root, "members")
        if node is None or (isinstance(node, CommentedSeq) and not node):
            self.problem(
                "'members:' is empty; list at least one member, each starting with '- id:'",
                line,
                field="members",
            )
            return None
        if not isinstance(node, CommentedSeq):
            self.problem(
                f"'members' should be a list, each member starting with '- ', not {describe(node)}",
                line,
                field="members",
            )
            return None
        members = [self.member(item, item_line(node, index)) for index, item in enumerate(node)]
        if any(member is None for member in members):
            return None
        return tuple(member for member in members if member is not None)

    def member(self, node: object, line: int | None) -> MemberConfig | None:
        if node is None:
            self.problem("there is an empty '-' entry in the members list", line, field="members")
            return None
        if isinstance(node, str):
            self.problem(
                f"this member is only the text {node!r}; a member is a block of keys: "
                "id:, name:, url: and sources:",
                line,
                field="members",
            )
            return None
        if not isinstance(node, CommentedMap):
            self.problem(
                f"a member should be a block of keys (id:, name:, url:, sources:), "
                f"not {describe(node)}",
                line,
                field="members",
            )
            return None
        member_id = self.member_id(node, line)
        label = member_id or self.label(node)
        self.unknown_keys(node, _MEMBER_KEYS, _MEMBER_HINTS, member=label, prefix="")
        name = self.text(
            node,
            "name",
            member=label,
            field="name",
            required="this member has no 'name:' (the organization's name as readers see it)",
        )
        url = self.url(
            node,
            "url",
            member=label,
            field="url",
            required="this member has no 'url:' (its website's address)",
        )
        tags = self.tags(node, label)
        language = self.language(node, member=label, field="language")
        interval = self.duration(node, "interval", member=label, field="interval")
        item_filter = self.item_filter(node, label)
        sources = self.sources(node, line, label)
        if (
            member_id is None
            or name is None
            or url is None
            or tags is None
            or sources is None
            or item_filter is None
            or ("language" in node and language is None)
            or ("interval" in node and interval is None)
        ):
            return None
        if not item_filter.empty:
            sources = tuple(
                replace(source, filters=(item_filter, *source.filters)) for source in sources
            )
        return MemberConfig(
            id=member_id,
            name=name,
            url=url,
            sources=sources,
            tags=tags,
            language=language,
            interval=interval,
            line=line,
            item_filter=item_filter,
        )

    @staticmethod
    def label(node: CommentedMap) -> str | None:
        """The id as written, even if unusable, so that problems still name the member."""
        value = node.get("id")
        if not isinstance(value, str) or not value.strip():
            return None
        return str(value).strip()

    def member_id(self, node: CommentedMap, line: int | None) -> str | None:
        member_id = self.text(
            node,
            "id",
            member=None,
            field="id",
            required="this member has no 'id:' (a short name for it, like 'ciw')",
        )
        if member_id is None:
            return None
        id_line = key_line(node, "id")
        if not ID_PATTERN.fullmatch(member_id):
            message = (
                f"the id {member_id!r} cannot be used; an id uses only lowercase letters, "
                "digits, '-' and '_', starts with a letter or digit and is at most "
                "40 characters long"
            )
            suggestion = suggest_slug(member_id)
            if suggestion is not None:
                message += f" (try {suggestion!r})"
            self.problem(message, id_line, member_id, "id")
            return None
        if member_id in self._member_lines:
            first = self._member_lines[member_id]
            self.problem(
                f"the id {member_id!r} is already used by the member on line {first}; "
                "each member needs its own id",
                id_line,
                member_id,
                "id",
            )
            return None
        self._member_lines[member_id] = line
        return member_id

    def tags(self, node: CommentedMap, member: str | None) -> tuple[str, ...] | None:
        if "tags" not in node:
            return ()
        value = node["tags"]
        line = key_line(node, "tags")
        if value is None:
            self.problem(
                "'tags:' has nothing after it; write a list like [labor] or delete the line",
                line,
                member,
                "tags",
            )
            return None
        if isinstance(value, str):
            self.problem(
                f"'tags' should be a list in square brackets, like: tags: [{value}]",
                line,
                member,
                "tags",
            )
            return None
        if not isinstance(value, CommentedSeq):
            self.problem(
                f"'tags' should be a list, like [agriculture, fair-food], not {describe(value)}",
                line,
                member,
                "tags",
            )
            return None
        tags: list[str] = []
        ok = True
        for index, item in enumerate(value):
            tag_line = item_line(value, index)
            if not isinstance(item, str):
                self.problem(
                    f"each tag should be a word, not {describe(item)}", tag_line, member, "tags"
                )
                ok = False
                continue
            tag = item.strip().lower()
            if not ID_PATTERN.fullmatch(tag):
                message = (
                    f"the tag {item!r} cannot be used; a tag uses only letters, digits, "
                    "'-' and '_' (no spaces) and is at most 40 characters long"
                )
                suggestion = suggest_slug(tag)
                if suggestion is not None:
                    message += f" (try {suggestion!r})"
                self.problem(message, tag_line, member, "tags")
                ok = False
                continue
            if tag not in tags:
                tags.append(tag)
        return tuple(tags) if ok else None
