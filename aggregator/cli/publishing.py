"""`aggregator export`: the published feeds and pages written to a folder.

This module must never render a document itself (publish/site.py lists and renders them).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from typing import TextIO

from aggregator.cli.common import EXIT_OK

if TYPE_CHECKING:
    from aggregator.models import Config


def command_export(
    config: Config, database: str, directory: Path, limit: int | None, out: TextIO
) -> int:
    if limit is not None:
        config = dataclasses.replace(
            config, network=dataclasses.replace(config.network, items_per_feed=limit)
        )
    written, stories = export_site(config, database, directory)
    shown = min(stories, config.network.items_per_feed)
    print(
        f"{len(written)} files written to {directory} "
        f"({shown} of {stories} stories in feed.atom, the rest in its archives)",
        file=out,
    )
    return EXIT_OK


def export_site(config: Config, database: str, directory: Path) -> tuple[list[Path], int]:
    """Write the published feeds and pages to `directory`; the files and the story count."""
    from aggregator.publish.export import export_files
    from aggregator.publish.site import site_files
    from aggregator.store import Store

    store = Store.open(database)
    try:
        files = site_files(config, store, now=datetime.now(UTC))
        stories = store.count_stories()
    finally:
        store.close()
    return export_files(directory, files), stories
