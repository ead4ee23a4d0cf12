"""Every file of feedparser's malformed-and-odd feed corpus through parse + normalize, each
within a time bound.

tests/ingest/parse/test_feeds.py runs the corpus through parse_source alone and
tests/ingest/test_normalize.py through normalize_feed alone (on feedparser's own output), with no
time bound; this is the path a poll takes, end to end, timed per file.
"""

from __future__ import annotations

import re
import time
from datetime import UTC
from datetime import datetime

import pytest

from aggregator.errors import ParseError
from aggregator.ingest.normalize import normalize_feed
from aggregator.ingest.parse import parse_source
from aggregator.models import FetchResult
from aggregator.models import SourceConfig
from tests import paths

CORPUS = paths.CORPUS
PER_FILE_SECONDS = 1.0
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
URL = "https://member.example.org/feed"
SOURCE = SourceConfig(member_id="corpus", kind="feed", url=URL)
_HEADER = re.compile(r"^\s*Header:\s*Content-type:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_ACTIVE = re.compile(r"<script|<iframe|<object|<embed|\son\w+\s*=|javascript:", re.IGNORECASE)


def test_every_corpus_file_parses_and_normalizes_quickly_and_safely() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the feedparser test corpus is not at {CORPUS}")
    files = sorted(path for path in CORPUS.rglob("*") if path.is_file() and path.suffix != ".md")
    assert len(files) > 2000
    slow: list[tuple[str, float]] = []
    items = 0
    for path in files:
        content = path.read_bytes()
        header = _HEADER.search(content[:2048].decode("latin-1"))
        result = FetchResult(
            SOURCE, NOW, URL, 200, content, header.group(1) if header else None
        )
        started = time.perf_counter()
        try:
            parsed = parse_source(result)
        except ParseError:
            parsed = None
        normalized = normalize_feed(parsed, SOURCE, NOW) if parsed is not None else []
        elapsed = time.perf_counter() - started
        if elapsed > PER_FILE_SECONDS:
            slow.append((str(path.relative_to(CORPUS)), elapsed))
        for item in normalized:
            items += 1
            assert not _ACTIVE.search(item.content_html + item.summary), path
            assert item.published.tzinfo is not None and item.published <= NOW, path
    assert not slow, slow
    assert items > 500
