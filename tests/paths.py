"""Where the tests find their files, so that no test counts parent folders of its own path.

ROOT is the checkout; FIXTURES the tests' own fixture files; CORPUS the shared real-world
feed corpus beside the checkout (read only, never copied into the project).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = ROOT.parent / "shared" / "corpora" / "feedparser-tests"
