"""WSR Network news aggregator: polls member feeds and news pages, deduplicates, republishes."""

from __future__ import annotations

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/wsr-network/aggregator"
USER_AGENT = f"WSR-Network-Aggregator/{__version__} (+{PROJECT_URL})"
