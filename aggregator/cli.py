"""The `aggregator` command line: argument parsing and printing only.

Each command loads the configuration, opens the store and calls the pipeline; the work
itself lives in the stage modules. Exit codes: 0 success (also when some sources failed:
that is reported, not fatal), 2 for a bad feeds.yaml or bad arguments, 3 for an unusable
database or output directory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn

from aggregator import __version__
from aggregator.config import load_config
from aggregator.config import parse_config
from aggregator.errors import ConfigError
from aggregator.errors import PublishError
from aggregator.errors import StorageError
from aggregator.fetch import Fetcher
from aggregator.fixture_server import FixtureServer
from aggregator.models import Config
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.poll import ReportCallback
from aggregator.poll import poll_all
from aggregator.poll import selected_sources
from aggregator.publish.export import combined_feed_files
from aggregator.publish.export import export_files
from aggregator.store import Store

DEFAULT_CONFIG = "config/feeds.yaml"
DEFAULT_DATA_DIR = "data"
EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_STORAGE = 3


def default_database_url() -> str:
    data_dir = Path(os.environ.get("AGGREGATOR_DATA_DIR", DEFAULT_DATA_DIR))
    return f"sqlite:///{data_dir / 'aggregator.db'}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aggregator",
        description="WSR Network news aggregator: poll member feeds, deduplicate, republish.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        default=os.environ.get("AGGREGATOR_CONFIG", DEFAULT_CONFIG),
        help="feeds.yaml to use (default: $AGGREGATOR_CONFIG or %(default)s)",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("AGGREGATOR_DATABASE_URL") or default_database_url(),
        help="SQLAlchemy database URL (default: $AGGREGATOR_DATABASE_URL or %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("check", help="validate feeds.yaml; exit 0, or 2 with the errors")
    fetch = commands.add_parser("fetch", help="poll every source now and store what is new")
    fetch.add_argument("--member", metavar="ID", help="poll only this member's sources")
    export = commands.add_parser("export", help="write the published feeds to DIR")
    export.add_argument("directory", metavar="DIR", type=Path)
    export.add_argument(
        "--limit", type=int, help="items per feed (default: network.items_per_feed)"
    )
    demo = commands.add_parser(
        "demo", help="offline demo: serve bundled sample sites on 127.0.0.1, fetch, export"
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=Path(DEFAULT_DATA_DIR) / "demo",
        help="where the demo keeps its database and exported files (default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "check":
            return command_check(args.config, out)
        if args.command == "fetch":
            return command_fetch(load_config(args.config), args.database, args.member, out)
        if args.command == "export":
            return command_export(
                load_config(args.config), args.database, args.directory, args.limit, out
            )
        if args.command == "demo":
            return command_demo(args.output, out)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except (StorageError, PublishError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STORAGE
    raise AssertionError(f"unhandled command {args.command}")


def command_check(config_path: str, out: TextIO) -> int:
    config = load_config(config_path)
    sources = sum(len(member.sources) for member in config.members)
    print(f"{config_path}: OK — {len(config.members)} members, {sources} sources", file=out)
    return EXIT_OK


def command_fetch(config: Config, database: str, member_id: str | None, out: TextIO) -> int:
    if member_id is not None and member_id not in {member.id for member in config.members}:
        known = ", ".join(member.id for member in config.members)
        print(f"error: no member with id {member_id!r} (members: {known})", file=sys.stderr)
        return EXIT_CONFIG
    store = Store.open(database)
    try:
        store.sync_config(config)
        reports = run_poll(config, store, member_id, out)
    finally:
        store.close()
    print(summary_line(reports), file=out)
    return EXIT_OK


def run_poll(config: Config, store: Store, member_id: str | None, out: TextIO) -> list[PollReport]:
    sources = selected_sources(config, member_id)

    async def poll(on_report: ReportCallback) -> list[PollReport]:
        async with Fetcher() as fetcher:
            return await poll_all(config, store, fetcher, sources=sources, on_report=on_report)

    if out.isatty() and len(sources) > 1:
        console = Console(file=out)
        with Progress(
            TextColumn("polling"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("poll", total=len(sources))

            def show(report: PollReport) -> None:
                progress.console.print(report_line(report), markup=False, highlight=False)
                progress.advance(task)

            return asyncio.run(poll(show))
    return asyncio.run(poll(lambda report: print(report_line(report), file=out, flush=True)))


def report_line(report: PollReport) -> str:
    source = report.source
    if report.outcome is PollOutcome.FAILED:
        line = f"{source.member_id}: broken: {source.url} {report.error}"
    elif report.outcome is PollOutcome.UNCHANGED:
        line = f"{source.member_id}: unchanged: {source.url}"
    else:
        counts = [f"{report.new} new"] if report.new else []
        if report.updated:
            counts.append(f"{report.updated} updated")
        line = f"{source.member_id}: {report.outcome.value}: {source.url} ({', '.join(counts)})"
    if report.moved_to:
        line += f"\n    moved permanently to {report.moved_to}: update this address in feeds.yaml"
    if report.warning:
        line += f"\n    warning: {report.warning}"
    return line


def summary_line(reports: Sequence[PollReport]) -> str:
    outcomes = Counter(report.outcome for report in reports)
    new_items = sum(report.new for report in reports)
    updated_items = sum(report.updated for report in reports)
    return (
        f"{len(reports)} sources: {outcomes[PollOutcome.NEW]} with new items, "
        f"{outcomes[PollOutcome.UPDATED]} updated, {outcomes[PollOutcome.UNCHANGED]} unchanged, "
        f"{outcomes[PollOutcome.FAILED]} failed; "
        f"{new_items} new items, {updated_items} updated items"
    )


def command_export(
    config: Config, database: str, directory: Path, limit: int | None, out: TextIO
) -> int:
    store = Store.open(database)
    try:
        stories = store.latest_stories(limit or config.network.items_per_feed)
    finally:
        store.close()
    written = export_files(directory, combined_feed_files(config.network, stories))
    for path in written:
        print(path, file=out)
    print(f"{len(stories)} stories exported to {directory}", file=out)
    return EXIT_OK


def command_demo(output: Path, out: TextIO) -> int:
    """Serve the bundled sample sites, poll them, export; print the Atom feed's path."""
    site = Path(str(resources.files("aggregator") / "demo_site"))
    # A fresh start each run: the demo server's port changes, and so would every address.
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    with FixtureServer(site) as server:
        template = (site / "feeds.yaml").read_text(encoding="utf-8")
        config_text = template.replace("{base}", server.base_url)
        config_path = output / "feeds.yaml"
        config_path.write_text(config_text, encoding="utf-8")
        config = parse_config(config_text, str(config_path))
        database = f"sqlite:///{output / 'aggregator.db'}"
        print(f"serving the sample member sites at {server.base_url}/", file=out)
        command_fetch(config, database, None, out)
        published = output / "published"
        command_export(config, database, published, None, out)
    print(f"\nThe combined feed is ready: {(published / 'feed.atom').resolve()}", file=out)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
