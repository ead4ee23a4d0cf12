"""Checking feeds.yaml's `keep_apart:` and `merge:` lists: staff's corrections of the
cross-post rule, beside `hidden:` so colleagues see them.

Each entry names two or more item addresses (http or https) and may say why:

    keep_apart:
      - items: [https://a.example/georgia, https://b.example/colorado]
        reason: two different states
    merge:
      - items: [https://a.example/win, https://b.example/settlement]

It must never fetch anything, and never accept a group the store could not apply: fewer
than two distinct addresses, or two items both kept apart and merged.
"""

from __future__ import annotations

from itertools import combinations

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.comments import CommentedSeq

from aggregator.config.check_base import CheckerBase
from aggregator.config.check_base import describe
from aggregator.config.check_base import item_line
from aggregator.config.check_base import key_line
from aggregator.config.check_base import url_problem
from aggregator.models import StoryCorrection
from aggregator.urls import canonical_url

CORRECTION_KINDS = ("keep_apart", "merge")
_ENTRY_KEYS = ("items", "reason")
_MEANING = {
    "keep_apart": "items that must never be one story",
    "merge": "items that must be one story",
}


class CorrectionChecks(CheckerBase):
    """The checks of the `keep_apart:` and `merge:` lists."""

    def corrections(self, root: CommentedMap) -> tuple[StoryCorrection, ...] | None:
        """Both lists' entries, keep_apart first; None when either has a problem."""
        found: list[StoryCorrection] = []
        ok = True
        for kind in CORRECTION_KINDS:
            entries = self._correction_list(root, kind)
            if entries is None:
                ok = False
            else:
                found.extend(entries)
        if not ok:
            return None
        return tuple(found) if self._consistent(found) else None

    def _correction_list(self, root: CommentedMap, kind: str) -> list[StoryCorrection] | None:
        if kind not in root or root[kind] is None:
            return []
        value = root[kind]
        if not isinstance(value, CommentedSeq):
            self.problem(
                f"'{kind}' should be a list of {_MEANING[kind]}, each entry like "
                f"'- items: [https://…, https://…]' with an optional 'reason:', not "
                f"{describe(value)}",
                key_line(root, kind),
                field=kind,
            )
            return None
        found: list[StoryCorrection] = []
        ok = True
        for index, entry in enumerate(value):
            line = item_line(value, index)
            correction = self._correction(kind, entry, line)
            if correction is None:
                ok = False
            else:
                found.append(correction)
        return found if ok else None

    def _correction(self, kind: str, entry: object, line: int | None) -> StoryCorrection | None:
        field = f"{kind}.items"
        if not isinstance(entry, CommentedMap):
            self.problem(
                f"each '{kind}' entry is a block with 'items:' (two or more item addresses) "
                f"and an optional 'reason:', not {describe(entry)}",
                line,
                field=kind,
            )
            return None
        self.unknown_keys(entry, _ENTRY_KEYS, {}, member=None, prefix=f"{kind}.")
        reason = None
        if "reason" in entry:
            reason = self.text(entry, "reason", member=None, field=f"{kind}.reason")
            if reason is None:
                return None
        addresses = entry.get("items")
        items_line = key_line(entry, "items") if "items" in entry else line
        if not isinstance(addresses, CommentedSeq):
            self.problem(
                f"this '{kind}' entry needs 'items:', a list of two or more item addresses "
                f"({_MEANING[kind]}), not {describe(addresses)}",
                items_line,
                field=field,
            )
            return None
        canonical: list[str] = []
        ok = True
        for address in addresses:
            problem = (
                url_problem(address)
                if isinstance(address, str)
                else f"{describe(address)} is not an address"
            )
            if problem is not None:
                self.problem(
                    f"an item address here cannot be used: {problem}", items_line, field=field
                )
                ok = False
            else:
                assert isinstance(address, str)
                canonical.append(canonical_url(address.strip()))
        distinct = tuple(dict.fromkeys(canonical))
        if ok and len(distinct) < 2:
            self.problem(
                f"this '{kind}' entry names {len(distinct)} distinct item address(es); it "
                "needs at least two (the items, by their links, as `aggregator story` shows)",
                items_line,
                field=field,
            )
            ok = False
        if not ok:
            return None
        return StoryCorrection(kind=kind, items=distinct, reason=reason, line=line)

    def _consistent(self, corrections: list[StoryCorrection]) -> bool:
        """No two items both kept apart and merged (directly, in one group each)."""
        merged = {
            pair
            for correction in corrections
            if correction.kind == "merge"
            for pair in combinations(sorted(correction.items), 2)
        }
        ok = True
        for correction in corrections:
            if correction.kind != "keep_apart":
                continue
            for pair in combinations(sorted(correction.items), 2):
                if pair in merged:
                    self.problem(
                        f"{pair[0]} and {pair[1]} are listed both under 'keep_apart:' and "
                        "under 'merge:'; delete one of the two entries",
                        correction.line,
                        field="keep_apart.items",
                    )
                    ok = False
        return ok
