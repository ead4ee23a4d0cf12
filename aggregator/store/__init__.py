"""Storage: the database behind the pipeline (SQLAlchemy 2.x; SQLite by default, PostgreSQL too)."""

from __future__ import annotations

from aggregator.store.database import SourceState
from aggregator.store.database import Store

__all__ = ["SourceState", "Store"]
