"""Nothing a member's site wrote reaches a terminal or a log with its escape sequences.

A hacked member page names a feed address carrying ESC/OSC sequences: set the window title
(OSC 0), clear the screen (CSI 2J) and write the clipboard (OSC 52), plus the one-character
C1 CSI. `aggregator fetch` prints the refused address and `aggregator status` the stored
error; both run as staff run them, in a subprocess, and their output must carry no control
character but line feeds (and tabs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aggregator.demo.server import Route
from tests.hostile.test_url_faults import GOOD_FEED
from tests.hostile.test_url_faults import HTML
from tests.hostile.test_url_faults import XML
from tests.hostile.test_url_faults import page_linking
from tests.support.server import FixtureServer

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cm0gLXJmIH4=\x07\x9b1m"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )


def control_characters(text: str) -> set[str]:
    return {char for char in text if (ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0)} - {
        "\n",
        "\t",
    }


def test_fetch_and_status_print_no_escape_sequences(
    server: FixtureServer, tmp_path: Path
) -> None:
    server.routes["/hostile/"] = Route(body=page_linking(f"/feed{ESCAPES}.xml"), headers=HTML)
    server.routes["/good.xml"] = Route(body=GOOD_FEED, headers=XML)
    config = tmp_path / "feeds.yaml"
    config.write_text(
        "network:\n  title: T\n  url: https://n.example.org/\n"
        "  feed_url: https://n.example.org/feeds/\n"
        "members:\n"
        "  - id: hostile\n    name: Hostile member\n    url: https://h.example.org/\n"
        f"    sources:\n      - url: {server.url('/hostile/')}\n"
        "  - id: good\n    name: Good member\n    url: https://good.example.org/\n"
        f"    sources:\n      - feed: {server.url('/good.xml')}\n",
        encoding="utf-8",
    )
    options = ["--config", str(config), "--database", f"sqlite:///{tmp_path / 'a.db'}"]

    fetched = run_cli(*options, "fetch", cwd=tmp_path)
    assert "Traceback" not in fetched.stderr
    assert "hostile: broken" in fetched.stdout
    assert "pwned" in fetched.stdout  # the address is shown, without its escapes
    assert control_characters(fetched.stdout + fetched.stderr) == set()

    status = run_cli(*options, "status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "pwned" in status.stdout
    assert control_characters(status.stdout + status.stderr) == set()
