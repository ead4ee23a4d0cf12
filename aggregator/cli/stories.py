"""`aggregator story`: a story's items, its members and why the store merged them.

Staff use it to check the automatic cross-post rule: each item that joined the story says
the rule and its evidence (the shared link, the title keys compared and after which
normalizations, the shared title words, the text similarity, the days apart). It only
reads the database: it must never change a story.
"""

from __future__ import annotations

import sys
from typing import TextIO

from aggregator.config import hidden_target
from aggregator.models import StoryItemRecord
from aggregator.store import Store
from aggregator.urls import slash_variants

EXIT_OK = 0
EXIT_NOT_FOUND = 2  # the cli's EXIT_CONFIG: what staff typed names nothing stored

def command_story(database: str, story: str, why: bool, out: TextIO) -> int:
    target = hidden_target(story)
    if target is None:
        print(f"error: {story!r} is not a story id (urn:uuid:…) or an address", file=sys.stderr)
        return EXIT_NOT_FOUND
    names = (target,) if target.startswith("urn:uuid:") else slash_variants(target)
    store = Store.open(database)
    try:
        record = next(
            (found for found in map(store.story_record, names) if found is not None), None
        )
    finally:
        store.close()
    if record is None:
        print(f"error: no stored story has the id or address {target}", file=sys.stderr)
        return EXIT_NOT_FOUND
    members = list(dict.fromkeys(item.member_id for item in record.items))
    print(f"story {record.id}", file=out)
    print(f"published {record.published:%Y-%m-%d %H:%M} UTC", file=out)
    print(f"members: {', '.join(members)}", file=out)
    for number, item in enumerate(record.items, 1):
        print(file=out)
        print(f"{number}. {item.member_id}: {item.title}", file=out)
        print(f"   {item.url or '(no link)'}", file=out)
        print(
            f"   published {item.published:%Y-%m-%d %H:%M}, first seen "
            f"{item.first_seen_at:%Y-%m-%d %H:%M} UTC",
            file=out,
        )
        for line in _reason_lines(item, why):
            print(f"   {line}", file=out)
    return EXIT_OK


def _reason_lines(item: StoryItemRecord, why: bool) -> list[str]:
    reason = item.merge_reason
    if reason is None:
        return ["started the story"]
    matched = f"item #{reason.get('matched_item')} of {reason.get('matched_member')}"
    lines = [f"merged by rule: {reason.get('rule')} (matched {matched})"]
    if "shared_link" in reason:
        lines.append(f"shared link: {reason['shared_link']}")
    if "merge_with" in reason:
        lines.append(f"staff listed it under merge: with {reason['merge_with']}")
    if "text_similarity" in reason:
        words = reason.get("shared_title_words") or []
        lines.append(
            f"text similarity {reason['text_similarity']}, shared title words: "
            f"{', '.join(map(str, words)) if isinstance(words, list) and words else 'none'}, "
            f"{reason.get('days_apart')} days apart"
        )
    if why:
        lines.append(f"title key: {reason.get('title_key')!r}")
        lines.append(f"matched title key: {reason.get('matched_title_key')!r}")
        normalizations = reason.get("normalizations")
        if isinstance(normalizations, list):
            lines.append("titles compared after removing: " + "; ".join(map(str, normalizations)))
    return lines
