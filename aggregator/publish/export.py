"""Writing the published files to a directory, atomically (aggregator.files).

A reader (or a web server) sees either the old file or the new one, never half of either,
even if the process is killed mid-write. It must never decide which paths are published:
publish/site.py is the one list.
"""

from __future__ import annotations

from pathlib import Path

from aggregator.errors import PublishError
from aggregator.files import NEW_FILE_MODE
from aggregator.files import write_atomically


def export_files(directory: Path, files: dict[str, bytes]) -> list[Path]:
    written = []
    try:
        for relative, content in files.items():
            target = directory / relative
            write_atomically(target, content, mode=NEW_FILE_MODE)
            written.append(target)
    except OSError as exc:
        raise PublishError(f"cannot write the published files to {directory}: {exc}") from exc
    return written
