"""Malformed feeds.yaml through the command line: exit 2, a precise message, nothing fetched.

Every case's file also lists a valid member whose feed is on a live fixture server, so a
command that went ahead despite the error would show up in the server's request log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aggregator.cli import main
from tests.support.server import FixtureServer

REPOSITORY = Path(__file__).resolve().parents[2]


def good_config(feed_url: str) -> str:
    return (
        "network:\n"
        "  title: WSR Network\n"
        "  url: https://network.example.org/\n"
        "  feed_url: https://network.example.org/feeds/\n"
        "members:\n"
        "  - id: good\n"
        "    name: Good member\n"
        "    url: https://good.example.org/\n"
        "    sources:\n"
        f"      - feed: {feed_url}\n"
    )


def member(member_id: str, body: str) -> str:
    return (
        f"  - id: {member_id}\n    name: Member {member_id}\n"
        f"    url: https://{member_id}.example.org/\n{body}"
    )


CASES: dict[str, tuple[str, list[str]]] = {
    # name: (what is appended to / changed in the good file, fragments of the message)
    "yaml-syntax-error": (
        member("broken", "    tags: [farm, dairy\n    sources:\n      - feed: https://b.org/f\n"),
        ["line 1", "not closed properly", "brackets"],
    ),
    "tab-indentation": ("\tsources: []\n", ["tab character", "indent with spaces"]),
    "wrong-types": (
        member("typed", "    tags: 7\n    sources:\n      - feed: https://t.example.org/f\n"),
        ["line 14", "member 'typed'", "field 'tags'", "should be a list"],
    ),
    "duplicate-ids": (
        member("good", "    sources:\n      - feed: https://again.example.org/f\n"),
        ["line 11", "the id 'good' is already used by the member on line 6"],
    ),
    "unknown-key-did-you-mean": (
        member("typo", "    sorces:\n      - feed: https://typo.example.org/f\n"),
        ["unknown key 'sorces' (did you mean 'sources'?)"],
    ),
    "member-without-sources": (
        member("empty", ""),
        ["member 'empty'", "has no 'sources:'"],
    ),
    "member-with-empty-sources": (
        member("empty", "    sources: []\n"),
        ["member 'empty'", "'sources:' is empty"],
    ),
    "file-scheme": (
        member("local", "    sources:\n      - feed: file:///etc/passwd\n"),
        ["member 'local'", "'file:///etc/passwd' cannot be used", "only http and https"],
    ),
    "ftp-scheme": (
        member("ftp", "    sources:\n      - feed: ftp://files.example.org/feed.xml\n"),
        ["member 'ftp'", "only http and https"],
    ),
    "javascript-scheme": (
        member("js", '    sources:\n      - feed: "javascript:alert(1)"\n'),
        ["member 'js'", "only http and https"],
    ),
}


@pytest.mark.parametrize("command", ["check", "fetch"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_feeds_yaml_exits_2_with_a_precise_message_and_fetches_nothing(
    server: FixtureServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    command: str,
) -> None:
    addition, fragments = CASES[case]
    text = good_config(server.url("/feed.xml")) + addition
    if case == "yaml-syntax-error":
        text = "network: {title: WSR Network\n" + text  # an unclosed flow mapping on line 1
        fragments = ["line", "not closed properly"]
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text(text, encoding="utf-8")
    database = tmp_path / "aggregator.db"

    code = main(["--config", str(config_path), "--database", f"sqlite:///{database}", command])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert str(config_path) in captured.err
    for fragment in fragments:
        assert fragment in captured.err, (fragment, captured.err)
    assert "Traceback" not in captured.err
    assert server.requests == []  # nothing was fetched
    assert not database.exists()  # nor was the database touched


def test_the_installed_command_reports_the_same_way(server: FixtureServer, tmp_path: Path) -> None:
    config_path = tmp_path / "feeds.yaml"
    config_path.write_text(
        good_config(server.url("/feed.xml"))
        + member("local", "    sources:\n      - feed: file:///etc/passwd\n"),
        encoding="utf-8",
    )
    completed = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "--config", str(config_path),
         "--database", f"sqlite:///{tmp_path / 'a.db'}", "fetch"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )  # fmt: skip
    assert completed.returncode == 2
    assert "only http and https addresses are allowed" in completed.stderr
    assert "root:" not in completed.stderr + completed.stdout
    assert server.requests == []
