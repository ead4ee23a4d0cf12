"""`aggregator hide` and `unhide`: taking a story out of what is published, and back.

This module must never delete a story: hiding is a record kept with its reason.
"""

from __future__ import annotations

import sys
from datetime import UTC
from datetime import datetime
from typing import TextIO

from aggregator.cli.common import EXIT_CONFIG
from aggregator.cli.common import EXIT_OK


def command_hide(database: str, story: str, reason: str, out: TextIO) -> int:
    from aggregator.config import hidden_target
    from aggregator.store import Store

    target = hidden_target(story)
    if target is None:
        print(f"error: {story!r} is not a story id (urn:uuid:…) or an address", file=sys.stderr)
        return EXIT_CONFIG
    if not reason.strip():
        print("error: --reason must say why the story is hidden", file=sys.stderr)
        return EXIT_CONFIG
    store = Store.open(database)
    try:
        found = next((name for name in story_names(target) if store.story_exists(name)), None)
        if found is None:
            print(f"error: no stored story has the id or address {target}", file=sys.stderr)
            return EXIT_CONFIG
        store.hide(found, reason.strip(), datetime.now(UTC))
    finally:
        store.close()
    print(f"hidden: {found} ({reason.strip()})", file=out)
    print(hide_timing(), file=out)
    return EXIT_OK


def story_names(target: str) -> tuple[str, ...]:
    """How a story typed by staff may be stored: its id, or its address with or without
    the trailing slash (hidden_target has already dropped tracking parameters)."""
    from aggregator.urls import slash_variants

    return (target,) if target.startswith("urn:uuid:") else slash_variants(target)


def hide_timing() -> str:
    """When a hidden or unhidden story changes in what readers get, as web.py does it."""
    from aggregator.service.web import CACHE_CONTROL
    from aggregator.service.web import VERSION_CHECK_SECONDS

    max_age = CACHE_CONTROL.rpartition("max-age=")[2]
    return (
        f"A running server (`run` or `serve` on this database) changes its feeds within "
        f"{VERSION_CHECK_SECONDS:g} second(s); feed readers and caches may keep their copy "
        f"for up to {int(max_age) // 60} minutes (Cache-Control max-age={max_age}). Files "
        "written by `aggregator export` change at the next export."
    )


def command_unhide(config_path: str, database: str, story: str, out: TextIO) -> int:
    from aggregator.config import hidden_target
    from aggregator.store import Store

    target = hidden_target(story)
    if target is None:
        print(f"error: {story!r} is not a story id (urn:uuid:…) or an address", file=sys.stderr)
        return EXIT_CONFIG
    store = Store.open(database)
    try:
        removed = None
        for name in story_names(target):
            removed = store.unhide(name)
            if removed is not None:
                break
    finally:
        store.close()
    if removed is None:
        print(f"error: {target} is not hidden", file=sys.stderr)
        return EXIT_CONFIG
    print(f"published again: {removed.target} (it was hidden: {removed.reason})", file=out)
    print(hide_timing(), file=out)
    if removed.origin == "config":
        print(
            f"note: it is listed under 'hidden:' in {config_path}; remove it there too, "
            "or the next fetch hides it again",
            file=out,
        )
    return EXIT_OK
