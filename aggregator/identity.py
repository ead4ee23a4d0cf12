"""Identity rules: when two fetched bodies are the same, and a story's permanent id.

Pure functions of their arguments, shared by the poll (an unchanged body is not parsed
again) and the store (what it records and the ids it publishes). This module must never
do I/O or read the clock: a rebuilt database has to derive the very same values.
"""

from __future__ import annotations

import hashlib
import uuid


def body_digest(content: bytes) -> str:
    """The fingerprint of a fetched body: equal digests mean byte-identical bodies."""
    return hashlib.sha256(content).hexdigest()


def story_uid(source_url: str, key: str) -> str:
    """A story's permanent id, derived from its first item so a rebuilt database agrees."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source_url}\n{key}"))
