"""Replacing a file atomically: the one way the project writes a file others may be reading.

The content goes to a temporary file in the same directory, is flushed to disk and then
renamed over the old file, so a reader (a web server, `aggregator check`, an editor) sees
either the old file or the new one, never half of either, even if the process is killed
mid-write. Used for the published files (publish/export) and for feeds.yaml
(config/opml_import).

It must never leave its temporary file behind, and never write anywhere but beside `path`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# mkstemp creates 0600 files; a new file is meant to be read by a web server or by staff.
NEW_FILE_MODE = 0o644


def write_atomically(path: Path, content: bytes, *, mode: int | None = None) -> None:
    """Replace `path` with `content`; `mode` defaults to the old file's (0644 when new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = NEW_FILE_MODE
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).chmod(mode)
        Path(temporary).replace(path)
    except BaseException:
        # Whatever went wrong (even KeyboardInterrupt), the half-written file must not stay.
        Path(temporary).unlink(missing_ok=True)
        raise
