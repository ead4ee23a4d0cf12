"""The one clock: what "now" is, and the type of a function that says it.

Everything that needs the time takes a `Clock` (default `utc_now`) so that tests can pass a
fixed one instead of sleeping or patching. It must never return a naive datetime.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)
