"""The service's clock: one definition of "now" that every service part takes as a default
and tests replace with a fake one.

This module must never hold state: a part that needs another time gets its own `Clock`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
