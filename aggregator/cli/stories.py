"""`aggregator story`: a story's items, its members and why the store merged them.

Staff use it to check the automatic cross-post rule: each item that joined the story says
the rule and its evidence (the shared link, the title keys compared and after which
normalizations, the shared title words, the text similarity, the days apart). It only
reads the database: it must never change a story.
"""

from __future__ import annotations

import io
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


# --- keep-apart and merge: staff's corrections, written to feeds.yaml -----------------

_DONE = {"keep_apart": "kept apart", "merge": "merged"}


def command_correct(
    config_path: str,
    database: str,
    kind: str,
    addresses: list[str],
    reason: str | None,
    out: TextIO,
) -> int:
    """`aggregator keep-apart` / `merge`: add the group to feeds.yaml's `keep_apart:` or
    `merge:` list (so colleagues see it and a rebuilt database gets it back), then apply
    every correction to the stored stories at once."""
    from aggregator.config.check_base import url_problem
    from aggregator.urls import canonical_url

    problems = [problem for problem in map(url_problem, addresses) if problem is not None]
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_NOT_FOUND
    items = tuple(dict.fromkeys(canonical_url(address) for address in addresses))
    if len(items) < 2:
        print("error: name at least two different item addresses", file=sys.stderr)
        return EXIT_NOT_FOUND
    written = add_correction(config_path, kind, items, reason.strip() if reason else None)
    from aggregator.config import load_config

    config = load_config(config_path)
    store = Store.open(database)
    try:
        store.sync_corrections(config.corrections)
        stories = [(item, store.story_record(item)) for item in items]
    finally:
        store.close()
    print(
        f"{_DONE[kind]}: {', '.join(items)}" + (f" ({reason.strip()})" if reason else ""), file=out
    )
    if written:
        print(f"written to {config_path} under '{kind}:'", file=out)
    else:
        print(f"already listed in {config_path} under '{kind}:'", file=out)
    for item, record in stories:
        where = record.id if record is not None else "not stored yet (applied when it is fetched)"
        print(f"  {item}: {where}", file=out)
    from aggregator.cli.moderation import hide_timing

    print(hide_timing(), file=out)
    return EXIT_OK


def add_correction(config_path: str, kind: str, items: tuple[str, ...], reason: str | None) -> bool:
    """Append the group to feeds.yaml's `kind:` list, keeping the file's comments and layout
    and replacing it atomically; False when the same group is already listed. Raises
    ConfigError (nothing written) when the result would not check."""
    from pathlib import Path

    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.comments import CommentedSeq

    from aggregator.config import load_config
    from aggregator.config import parse_config
    from aggregator.config.opml_import import round_trip_yaml
    from aggregator.config.yaml_file import read_config_text
    from aggregator.errors import ConfigError
    from aggregator.errors import ConfigProblem
    from aggregator.files import write_atomically

    current = load_config(config_path)
    if any(entry.kind == kind and set(entry.items) == set(items) for entry in current.corrections):
        return False
    text = read_config_text(config_path)
    yaml = round_trip_yaml(text)
    root = yaml.load(text)
    if not isinstance(root, CommentedMap):  # load_config above has checked it is
        raise ConfigError(config_path, [ConfigProblem("feeds.yaml is not a block of keys")])
    entries = root.get(kind)
    if not isinstance(entries, CommentedSeq):
        entries = CommentedSeq()
        root[kind] = entries
    entry = CommentedMap()
    addresses = CommentedSeq(items)
    entry["items"] = addresses
    if reason:
        entry["reason"] = reason
    entries.append(entry)
    output = io.StringIO()
    yaml.dump(root, output)
    parse_config(output.getvalue(), config_path)  # raises ConfigError: nothing is written
    write_atomically(Path(config_path), output.getvalue().encode("utf-8"))
    return True
