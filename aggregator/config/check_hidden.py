"""Checking feeds.yaml's 'hidden:' list: the stories staff took out of the published feeds.

It must never fetch anything, and never accept a target the store could not compare.
"""

from __future__ import annotations

import re

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.comments import CommentedSeq

from aggregator.config.check_base import CheckerBase
from aggregator.config.check_base import describe
from aggregator.config.check_base import item_line
from aggregator.config.check_base import key_line
from aggregator.config.check_base import url_problem
from aggregator.models import HiddenStory
from aggregator.urls import canonical_url

_HIDDEN_KEYS = ("item", "reason")
STORY_ID_PATTERN = re.compile(
    r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)


def hidden_target(text: str) -> str | None:
    """A story to hide as the store compares it, or None when `text` names no story.

    Story ids ("urn:uuid:…", or the bare uuid) in lower case; item addresses canonical.
    """
    text = text.strip()
    if STORY_ID_PATTERN.fullmatch(text):
        return text.lower()
    if STORY_ID_PATTERN.fullmatch("urn:uuid:" + text):
        return "urn:uuid:" + text.lower()
    if url_problem(text) is None:
        return canonical_url(text)
    return None


class HiddenChecks(CheckerBase):
    """The checks of the 'hidden:' list."""

    def hidden(self, root: CommentedMap) -> tuple[HiddenStory, ...] | None:
        """The stories staff took out of the published feeds, each with its reason."""
        if "hidden" not in root or root["hidden"] is None:
            return ()
        value = root["hidden"]
        if not isinstance(value, CommentedSeq):
            self.problem(
                "'hidden' should be a list, each entry like '- item: urn:uuid:…' with a "
                f"'reason:', not {describe(value)}",
                key_line(root, "hidden"),
                field="hidden",
            )
            return None
        found: list[HiddenStory] = []
        ok = True
        for index, entry in enumerate(value):
            line = item_line(value, index)
            if not isinstance(entry, CommentedMap):
                self.problem(
                    "each hidden story is a block with 'item:' (its id urn:uuid:… or its "
                    f"address) and 'reason:', not {describe(entry)}",
                    line,
                    field="hidden",
                )
                ok = False
                continue
            self.unknown_keys(entry, _HIDDEN_KEYS, {}, member=None, prefix="hidden.")
            target = self.text(
                entry,
                "item",
                member=None,
                field="hidden.item",
                required="this hidden entry has no 'item:' (a story id urn:uuid:… or an address)",
                block_line=line,
            )
            reason = self.text(
                entry,
                "reason",
                member=None,
                field="hidden.reason",
                required="this hidden entry has no 'reason:' (why it was taken down)",
                block_line=line,
            )
            if target is not None:
                written = target
                target = hidden_target(written)
                if target is None:
                    self.problem(
                        f"{written!r} is neither a story id (urn:uuid:…) nor an address: "
                        f"{url_problem(written) or 'it cannot be read'}",
                        key_line(entry, "item"),
                        field="hidden.item",
                    )
            if target is None or reason is None:
                ok = False
                continue
            found.append(HiddenStory(target=target, reason=reason, line=line))
        return tuple(found) if ok else None
