"""Untrusted addresses do not become trusted: OPML imports and `aggregator check`.

An OPML naming a page on 127.0.0.1, the cloud metadata address and 192.168.1.1 was imported
without a warning, `check` passed, and an internal page's headlines reached the public
index. Through the CLI in a subprocess: `import-opml` refuses such feeds unless
--allow-private, and `check` warns (exit 0) about every private address in feeds.yaml.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.hostile.test_config_cli import good_config

REPOSITORY = Path(__file__).resolve().parents[2]
PRIVATE = [
    "http://127.0.0.1:8080/internal/feed.xml",
    "http://169.254.169.254/latest/meta-data/",
    "http://192.168.1.1/feed.xml",
    "http://[::ffff:10.0.0.1]/feed.xml",
    "http://localhost/feed.xml",
]
PUBLIC = "https://partner.example.org/feed.xml"


def opml(addresses: list[str]) -> str:
    outlines = "".join(
        f'<outline type="rss" text="Site {n}" title="Site {n}" xmlUrl="{address}" '
        f'htmlUrl="https://site{n}.example.org/"/>'
        for n, address in enumerate(addresses)
    )
    return f'<?xml version="1.0"?><opml version="2.0"><body>{outlines}</body></opml>'


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "--config", str(tmp_path / "feeds.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )


def test_import_opml_refuses_private_addresses_unless_allowed(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(good_config("https://good.example.org/feed.xml"), encoding="utf-8")
    (tmp_path / "partner.opml").write_text(opml([*PRIVATE, PUBLIC]), encoding="utf-8")
    completed = cli(tmp_path, "import-opml", "partner.opml")
    assert completed.returncode == 0, completed.stderr
    text = feeds.read_text(encoding="utf-8")
    assert PUBLIC in text
    for address in PRIVATE:
        assert address not in text
        assert f"refused: {address}: a private or local address" in completed.stdout
    assert "--allow-private" in completed.stdout
    assert cli(tmp_path, "check").stdout.count("warning:") == 0

    allowed = cli(tmp_path, "import-opml", "partner.opml", "--allow-private")
    assert allowed.returncode == 0, allowed.stderr
    text = feeds.read_text(encoding="utf-8")
    assert all(address in text for address in PRIVATE)
    assert "refused:" not in allowed.stdout


def test_check_warns_about_private_addresses_in_feeds_yaml(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.yaml"
    text = good_config(PRIVATE[0]) + "".join(
        f"  - id: m{n}\n    name: Member {n}\n    url: https://m{n}.example.org/\n"
        f"    sources:\n      - feed: {address}\n"
        for n, address in enumerate([*PRIVATE[1:], PUBLIC])
    )
    feeds.write_text(text, encoding="utf-8")
    completed = cli(tmp_path, "check")
    assert completed.returncode == 0, completed.stderr
    assert "OK" in completed.stdout
    warnings = [line for line in completed.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(PRIVATE)
    assert "warning: member 'good', source http://127.0.0.1:8080/internal/feed.xml: a private" in (
        completed.stdout
    )
    assert "(169.254.169.254)" in completed.stdout
    assert PUBLIC not in "\n".join(warnings)
