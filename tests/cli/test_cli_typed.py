"""The command line as people type it, run as a subprocess like a shell would.

Global options after the subcommand, every --help, addresses without https://, feeds.yaml
not found from another folder, preview --yaml's block, and hide by a typed address.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.cli import build_parser
from aggregator.demo.server import Route
from tests.site_fixtures import serve_sites
from tests.support.server import FixtureServer

ROOT = Path(__file__).resolve().parents[2]

HEADER = """\
network:
  title: WSR Network
  url: https://wsr-network.org/
  feed_url: https://wsr-network.org/news/
members:
"""

FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Riverbend</title><link>{base}/</link>
<language>en-US</language>
{items}
</channel></rss>"""

ITEM = """<item><title>{title}</title><link>{base}{path}</link><description>{text}</description>
<pubDate>Mon, 03 Mar 2025 10:00:00 GMT</pubDate></item>"""

ENGLISH = "The workers and their families won a new contract with the growers of the valley"
SPANISH = "Los trabajadores y las trabajadoras de la región ganan un contrato con los productores"


def aggregator(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`aggregator ARGS` in a fresh process, without the caller's AGGREGATOR_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AGGREGATOR_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "aggregator.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=120,
        check=False,
    )


def feed(base: str, *items: tuple[str, str, str]) -> bytes:
    body = "\n".join(
        ITEM.format(base=base, path=path, title=title, text=text) for path, title, text in items
    )
    return FEED.format(base=base, items=body).encode()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[FixtureServer, Path]]:
    """A member whose feed lists one story, and a feeds.yaml naming it."""
    with FixtureServer() as server:
        server.routes["/feed.xml"] = Route(
            body=feed(server.base_url, ("/2025/03/contract/", "Contract won", ENGLISH)),
            headers={"Content-Type": "application/rss+xml"},
        )
        config = tmp_path / "feeds.yaml"
        config.write_text(
            HEADER
            + textwrap.dedent(
                f"""\
                  - id: riverbend
                    name: Riverbend Farmworker Alliance
                    url: https://riverbend.example/
                    sources:
                      - feed: {server.base_url}/feed.xml
                """
            ),
            encoding="utf-8",
        )
        yield server, config


def test_global_options_work_after_the_subcommand(
    site: tuple[FixtureServer, Path], tmp_path: Path
) -> None:
    _, config = site
    checked = aggregator("check", "--config", str(config))
    assert checked.returncode == 0, checked.stderr
    assert f"{config}: OK — 1 members, 1 sources" in checked.stdout
    database = f"sqlite:///{tmp_path / 'after.db'}"
    fetched = aggregator("fetch", "--config", str(config), "--database", database)
    assert fetched.returncode == 0, fetched.stderr
    assert "riverbend: new:" in fetched.stdout
    assert (tmp_path / "after.db").is_file()
    # After the subcommand wins over before it; before it still works when alone.
    both = aggregator("--config", "/nowhere/feeds.yaml", "check", "--config", str(config))
    assert both.returncode == 0, both.stderr
    assert aggregator("--config", str(config), "check").returncode == 0


def test_every_command_help_describes_it_and_shows_an_example() -> None:
    [subparsers] = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    commands = list(subparsers.choices)
    assert len(commands) >= 13
    for name in commands:
        shown = aggregator(name, "--help")
        assert shown.returncode == 0, (name, shown.stderr)
        assert "examples:" in shown.stdout, name
        assert f"  aggregator {name}" in shown.stdout, name
        assert "--config PATH" in shown.stdout and "--database URL" in shown.stdout, name
        description = shown.stdout.split("\n\n")[1]
        assert len(description.split()) >= 8, (name, description)  # a sentence, not a title


def test_check_from_another_folder_names_the_full_path_and_how_to_point_at_a_file(
    tmp_path: Path,
) -> None:
    checked = aggregator("check", cwd=tmp_path)
    assert checked.returncode == 2
    assert f"looked for {tmp_path / 'config' / 'feeds.yaml'}" in checked.stderr
    assert "--config PATH" in checked.stderr and "AGGREGATOR_CONFIG" in checked.stderr


def test_preview_assumes_https_when_no_scheme_is_given() -> None:
    with FixtureServer() as server:
        host = server.base_url.removeprefix("http://")
        shown = aggregator("preview", f"{host}/feed.xml")
    # The fixture server speaks plain HTTP, so the https:// request is what fails.
    assert shown.stdout.startswith(f"Preview of https://{host}/feed.xml (nothing is stored)")
    assert "not an address" not in shown.stderr
    assert "Add it:" not in shown.stdout  # nothing was found: nothing to suggest adding
    assert shown.returncode == 1


def test_preview_yaml_keeps_the_address_given_and_a_short_id() -> None:
    with serve_sites() as server:
        shown = aggregator("preview", server.url("/wordpress/"), "--yaml")
    assert shown.returncode == 0, shown.stderr
    assert f"    url: {server.url('/wordpress/')}\n" in shown.stdout  # not the host's root
    assert "  - id: gfc " in shown.stdout  # "Greenway Farmworker Coalition": its initials
    assert "    language: en\n" in shown.stdout  # every post is in English


def test_preview_yaml_leaves_language_out_for_a_bilingual_site() -> None:
    with FixtureServer() as server:
        server.routes["/feed.xml"] = Route(
            body=feed(
                server.base_url,
                ("/en/1", "Contract won", ENGLISH),
                ("/es/1", "Contrato ganado", SPANISH),
                ("/en/2", "Another contract", ENGLISH),
            ),
            headers={"Content-Type": "application/rss+xml"},
        )
        shown = aggregator("preview", server.url("/feed.xml"), "--yaml")
    assert shown.returncode == 0, shown.stderr
    assert "language:" not in shown.stdout  # the feed says en-US, but a third is Spanish


def test_preview_of_an_address_with_nothing_suggests_nothing() -> None:
    with FixtureServer() as server:
        server.routes["/empty.xml"] = Route(
            body=feed(server.base_url), headers={"Content-Type": "application/rss+xml"}
        )
        shown = aggregator("preview", server.url("/empty.xml"))
        as_yaml = aggregator("preview", server.url("/empty.xml"), "--yaml")
    assert shown.returncode == 1
    assert "nothing would be collected" in shown.stdout
    assert "Add it:" not in shown.stdout and "--yaml" not in shown.stdout
    assert as_yaml.returncode == 1 and as_yaml.stdout == ""


def test_hide_accepts_the_address_without_its_slash_or_with_tracking_parameters(
    site: tuple[FixtureServer, Path], tmp_path: Path
) -> None:
    server, config = site
    database = f"sqlite:///{tmp_path / 'hide.db'}"
    options = ("--config", str(config), "--database", database)
    assert aggregator("fetch", *options).returncode == 0
    typed = f"{server.base_url}/2025/03/contract?utm_source=newsletter&fbclid=abc"
    hidden = aggregator("hide", typed, "--reason", "posted twice", *options)
    assert hidden.returncode == 0, hidden.stderr
    assert f"hidden: {server.base_url}/2025/03/contract/ (posted twice)" in hidden.stdout
    assert "within 1 second(s)" in hidden.stdout and "next export" in hidden.stdout
    published = tmp_path / "published"
    assert aggregator("export", str(published), *options).returncode == 0
    assert "contract" not in (published / "feed.atom").read_text(encoding="utf-8").lower()
    shown = aggregator("unhide", f"{server.base_url}/2025/03/contract", *options)
    assert shown.returncode == 0, shown.stderr
    assert f"published again: {server.base_url}/2025/03/contract/" in shown.stdout
