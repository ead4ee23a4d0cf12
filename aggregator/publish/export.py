"""Writing the published files to a directory, atomically.

Each file is written to a temporary file in the same directory, flushed to disk and then
renamed over the old one, so a reader (or a web server) sees either the old file or the
new one, never half of either, even if the process is killed mid-write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from aggregator.errors import PublishError
from aggregator.models import NetworkConfig
from aggregator.models import PublishedStory
from aggregator.publish.jsonfeed import render_json_feed
from aggregator.publish.syndication import render_atom
from aggregator.publish.syndication import render_rss


def write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; published files are meant to be read by a web server.
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def combined_feed_files(network: NetworkConfig, stories: list[PublishedStory]) -> dict[str, bytes]:
    """The combined feed in every format, by path relative to network.feed_url."""
    return {
        "feed.atom": render_atom(network, stories, feed_path="feed.atom"),
        "feed.rss": render_rss(network, stories, feed_path="feed.rss"),
        "feed.json": render_json_feed(network, stories, feed_path="feed.json"),
    }


def export_files(directory: Path, files: dict[str, bytes]) -> list[Path]:
    written = []
    try:
        for relative, content in files.items():
            target = directory / relative
            write_atomically(target, content)
            written.append(target)
    except OSError as exc:
        raise PublishError(f"cannot write the published files to {directory}: {exc}") from exc
    return written
