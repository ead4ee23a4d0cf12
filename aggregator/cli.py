"""The `aggregator` command line: argument parsing and printing only.

Each command loads the configuration, opens the store and calls the pipeline; the work
itself lives in the stage modules. Exit codes: 0 success (also when some sources failed:
that is reported, not fatal), 2 for a bad feeds.yaml or bad arguments, 3 for an unusable
database or output directory.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn

from aggregator import __version__
from aggregator.alerts import scheduled_alert_check
from aggregator.config import hidden_target
from aggregator.config import load_config
from aggregator.config import parse_config
from aggregator.demo import demo_config_text
from aggregator.demo import demo_site_directory
from aggregator.errors import ConfigError
from aggregator.errors import PublishError
from aggregator.errors import StorageError
from aggregator.fetch import Fetcher
from aggregator.fixture_server import FixtureServer
from aggregator.models import Config
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.opml_import import import_opml
from aggregator.parse.discover import Discovery
from aggregator.poll import ReportCallback
from aggregator.poll import poll_all
from aggregator.poll import selected_sources
from aggregator.preview import Preview
from aggregator.preview import parse_selectors_option
from aggregator.preview import preview_source
from aggregator.preview import source_yaml
from aggregator.publish.export import export_files
from aggregator.publish.site import site_files
from aggregator.schedule import ROLES
from aggregator.schedule import SchedulerSettings
from aggregator.schedule import prune_expired
from aggregator.schedule import run_service
from aggregator.status import render_status_json
from aggregator.status import render_status_text
from aggregator.status import status_rows
from aggregator.status import status_table
from aggregator.store import Store
from aggregator.store.database import schema_state
from aggregator.urls import is_http_url
from aggregator.web import create_app
from aggregator.web import make_server
from aggregator.web import set_config
from aggregator.websub import WebSubService

DEFAULT_CONFIG = "config/feeds.yaml"
DEFAULT_DATA_DIR = "data"
EXIT_OK = 0
EXIT_NOTHING = 1  # preview: the address gives nothing that could be added
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
    database_commands = commands.add_parser(
        "db", help="database maintenance: `db upgrade` brings the schema to this version's"
    ).add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    database_commands.add_parser(
        "upgrade", help="create the schema, or upgrade it to this version (other commands "
        "do it automatically, except `run --role web`)"
    )
    fetch = commands.add_parser("fetch", help="poll every source now and store what is new")
    fetch.add_argument("--member", metavar="ID", help="poll only this member's sources")
    export = commands.add_parser("export", help="write the published feeds to DIR")
    export.add_argument("directory", metavar="DIR", type=Path)
    export.add_argument(
        "--limit", type=int, help="items per feed (default: network.items_per_feed)"
    )
    run = commands.add_parser(
        "run", help="the service: poll every source on its schedule and serve the web site"
    )
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    run.add_argument("--port", type=int, default=8080, help="port to listen on (%(default)s)")
    run.add_argument(
        "--role",
        choices=ROLES,
        default="all",
        help="all: poll and serve (default); worker: poll only, any number sharing one "
        "PostgreSQL database; web: serve only, a stateless replica",
    )
    run.add_argument(
        "--lease-seconds",
        type=float,
        default=SchedulerSettings.lease_seconds,
        help="how long a worker's claim on a source lasts if it dies mid-poll (%(default)g)",
    )
    run.add_argument(
        "--tick-seconds",
        type=float,
        default=SchedulerSettings.tick_seconds,
        help="how often due sources are looked for (%(default)g)",
    )
    commands.add_parser(
        "prune", help="delete items older than network.retention (the service does it daily)"
    )
    serve = commands.add_parser(
        "serve", help="serve the web site and feeds from the database (no polling)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (%(default)s)")
    status = commands.add_parser(
        "status", help="every source's health: last poll, last error, items, next poll"
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    preview = commands.add_parser(
        "preview", help="show what an address would contribute, before adding it (stores nothing)"
    )
    preview.add_argument("url", metavar="URL", help="a member's website, feed or news page")
    preview.add_argument(
        "--page", action="store_true", help="read URL as a news page even if it has a feed"
    )
    preview.add_argument(
        "--selectors",
        metavar="SPEC",
        help="CSS selectors for a news page, e.g. 'item=article.post,title=h2 a,date=time'",
    )
    preview.add_argument(
        "--yaml", action="store_true", help="print only the block to paste into feeds.yaml"
    )
    hide = commands.add_parser("hide", help="take a story out of the published feeds")
    hide.add_argument("story", metavar="ITEM_ID", help="the story id (urn:uuid:…) or its address")
    hide.add_argument("--reason", required=True, help="why, kept with it for the record")
    unhide = commands.add_parser("unhide", help="publish a hidden story again")
    unhide.add_argument("story", metavar="ITEM_ID", help="the story id (urn:uuid:…) or its address")
    import_opml_command = commands.add_parser(
        "import-opml", help="add the feeds of an OPML file to feeds.yaml (comments are kept)"
    )
    import_opml_command.add_argument("opml", metavar="FILE", type=Path)
    demo = commands.add_parser(
        "demo", help="offline demo: serve bundled sample sites on 127.0.0.1, fetch, export"
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=Path(DEFAULT_DATA_DIR) / "demo",
        help="where the demo keeps its database and exported files (default: %(default)s)",
    )
    demo.add_argument(
        "--serve",
        action="store_true",
        help="then keep running the full service (scheduler + web site) on the demo sites",
    )
    demo.add_argument("--host", default="127.0.0.1", help="with --serve (default: %(default)s)")
    demo.add_argument("--port", type=int, default=8080, help="with --serve (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "db":
            return command_db_upgrade(args.database, out)
        if args.command == "check":
            return command_check(args.config, out)
        if args.command == "fetch":
            return command_fetch(load_config(args.config), args.database, args.member, out)
        if args.command == "export":
            return command_export(
                load_config(args.config), args.database, args.directory, args.limit, out
            )
        if args.command == "demo":
            return command_demo(args.output, out, serve=args.serve, host=args.host, port=args.port)
        if args.command == "serve":
            return command_serve(load_config(args.config), args.database, args.host, args.port, out)
        if args.command == "run":
            settings = SchedulerSettings(
                lease_seconds=args.lease_seconds, tick_seconds=args.tick_seconds
            )
            return command_run(
                args.config,
                args.database,
                args.host,
                args.port,
                out,
                role=args.role,
                settings=settings,
            )
        if args.command == "prune":
            return command_prune(load_config(args.config), args.database, out)
        if args.command == "status":
            return command_status(load_config(args.config), args.database, args.json, out)
        if args.command == "preview":
            return command_preview(args.url, args.page, args.selectors, args.yaml, out)
        if args.command == "hide":
            return command_hide(args.database, args.story, args.reason, out)
        if args.command == "unhide":
            return command_unhide(args.config, args.database, args.story, out)
        if args.command == "import-opml":
            return command_import_opml(args.config, args.opml, out)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except (StorageError, PublishError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STORAGE
    raise AssertionError(f"unhandled command {args.command}")


def command_db_upgrade(database: str, out: TextIO) -> int:
    before = schema_state(database)
    Store.open(database).close()
    if before.up_to_date:
        print(f"the database is already at schema revision {before.head}", file=out)
    else:
        print(
            f"the database schema is now at revision {before.head} "
            f"(was {before.current or 'empty'})",
            file=out,
        )
    return EXIT_OK


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
        async with Fetcher(config.network.limits) as fetcher:
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
    if report.discovered:
        line += f"\n    feed found on the site: {report.discovered}"
    if report.filtered:
        line += f"\n    {report.filtered} item(s) left out by include/exclude/max_age"
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
    if limit is not None:
        config = dataclasses.replace(
            config, network=dataclasses.replace(config.network, items_per_feed=limit)
        )
    store = Store.open(database)
    try:
        files = site_files(config, store, now=datetime.now(UTC))
        stories = store.count_stories()
    finally:
        store.close()
    written = export_files(directory, files)
    shown = min(stories, config.network.items_per_feed)
    print(
        f"{len(written)} files written to {directory} "
        f"({shown} of {stories} stories in feed.atom, the rest in its archives)",
        file=out,
    )
    return EXIT_OK


def command_serve(config: Config, database: str, host: str, port: int, out: TextIO) -> int:
    """Serve the site from what is stored until Ctrl-C; `fetch` or `run` fill the store."""
    store = Store.open(database)
    try:
        store.sync_config(config)
        server = make_server(create_app(config, store), host, port)
        print(f"serving on http://{host}:{port}/ (Ctrl-C to stop)", file=out, flush=True)
        server.run()
    finally:
        store.close()
    return EXIT_OK


def command_run(
    config_path: str,
    database: str,
    host: str,
    port: int,
    out: TextIO,
    *,
    role: str = "all",
    settings: SchedulerSettings | None = None,
) -> int:
    """Poll on schedule and serve the site until SIGTERM/SIGINT; feeds.yaml edits apply live.

    `role` (schedule.ROLES) keeps only the polling ("worker") or the serving ("web") half.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # One line per poll comes from aggregator.schedule; these would repeat it every tick.
    for chatty in ("apscheduler", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    config = load_config(config_path)
    # A web replica never migrates: several of them starting at once would race.
    store = Store.open(database, upgrade=role != "web")
    try:
        polls = role != "web"
        if polls:
            # A web replica writes nothing: the workers keep members and sources in step.
            store.sync_config(config)
        app = create_app(config, store) if role != "worker" else None
        if app is not None:
            print(f"serving on http://{host}:{port}/ (Ctrl-C to stop)", file=out, flush=True)
        else:
            print("polling as a worker, serving nothing (Ctrl-C to stop)", file=out, flush=True)
        # WebSub: hub pings follow the polls; subscriptions need the callback served by the
        # same process, so only `--role all` subscribes.
        websub = WebSubService(config, store, subscribe=app is not None) if polls else None
        if websub is not None and app is not None:
            websub.install(app)
        service = run_service(
            config,
            store,
            app=app,
            host=host,
            port=port,
            settings=settings,
            alert_check=scheduled_alert_check(store) if polls else None,
            on_config=(
                (lambda reloaded: set_config(app, reloaded)) if app is not None else None
            ),
            poll=polls,
            on_started=websub.attach if websub is not None else None,
        )
        asyncio.run(websub.serving(service) if websub is not None else service)
    finally:
        store.close()
    print("stopped", file=out)
    return EXIT_OK


def command_prune(config: Config, database: str, out: TextIO) -> int:
    if config.network.retention is None:
        print("network.retention is not set in feeds.yaml: everything is kept", file=out)
        return EXIT_OK
    store = Store.open(database)
    try:
        report = prune_expired(config, store, datetime.now(UTC))
    finally:
        store.close()
    assert report is not None
    retention = config.network.retention
    kept = f"{retention.days} days" if retention.seconds == 0 else str(retention)
    print(
        f"pruned {report.items} item(s) and {report.stories} story(ies) published more than "
        f"{kept} ago",
        file=out,
    )
    return EXIT_OK


def command_status(config: Config, database: str, as_json: bool, out: TextIO) -> int:
    store = Store.open(database)
    try:
        now = datetime.now(UTC)
        rows = status_rows(store, config, now)
    finally:
        store.close()
    if as_json:
        out.write(render_status_json(rows, now).decode("utf-8") + "\n")
    elif out.isatty():
        Console(file=out).print(status_table(rows, now))
    else:
        out.write(render_status_text(rows, now))
    return EXIT_OK


def command_preview(
    url: str, page: bool, selectors_spec: str | None, as_yaml: bool, out: TextIO
) -> int:
    """Print what `url` would contribute (or, with --yaml, the feeds.yaml block for it)."""
    if not is_http_url(url):
        print(f"error: {url!r} is not an address like https://example.org/", file=sys.stderr)
        return EXIT_CONFIG
    try:
        selectors = parse_selectors_option(selectors_spec) if selectors_spec else None
    except ValueError as exc:
        print(f"error: --selectors: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    async def run() -> Preview:
        async with Fetcher() as fetcher:
            return await preview_source(
                url, fetch=fetcher.fetch, now=datetime.now(UTC), page=page, selectors=selectors
            )

    result = asyncio.run(run())
    if as_yaml:
        if result.error is not None or not result.items:
            why = result.error or "no items"
            print(f"error: nothing to add from {url}: {why}", file=sys.stderr)
            return EXIT_NOTHING
        out.write(source_yaml(result))
        return EXIT_OK
    out.write(preview_text(result))
    return EXIT_OK if result.error is None and result.items else EXIT_NOTHING


PREVIEW_ITEMS_SHOWN = 15


def _found_by(discovery: Discovery) -> str:
    """Why the chosen feed's address was tried: the page named it, or a usual place."""
    chosen = discovery.chosen
    if chosen is not None and chosen.candidate.origin == "link":
        return "named by the page"
    tool = discovery.site_tool
    return f"where {tool.name} puts it" if tool is not None else "at a usual address"


def preview_text(preview: Preview) -> str:
    lines = [f"Preview of {preview.url} (nothing is stored)"]
    discovery = preview.discovery
    if discovery is not None:
        if discovery.site_tool is not None:
            tool = discovery.site_tool
            lines.append(f"Site tool: {tool.name} ({tool.reason})")
        lines.append("Feeds tried on the site:" if discovery.checked else "No feed on the site.")
        chosen = discovery.chosen
        for check in discovery.checked:
            if check is chosen:
                note = f"chosen ({check.parsed.format if check.parsed else 'feed'}"
                note += f", {round(check.full_content * 100)}% full text, {_found_by(discovery)})"
            elif check.candidate.is_comments:
                note = "a comments feed: never used"
            elif check.usable:
                note = "readable, ranked lower"
            else:
                note = f"not usable: {check.problem}"
            lines.append(f"  {'*' if check is chosen else ' '} {check.candidate.url}  {note}")
        for address, why in discovery.refused:
            lines.append(f"    {address}  refused: {why}")
    if preview.error is not None:
        lines.append(f"Cannot be read: {preview.error}")
        return "\n".join(lines) + "\n"
    what = "news page" if preview.kind == "page" else "feed"
    how = ""
    if preview.kind == "page":
        how = " (with the given selectors)" if preview.selectors else " (without selectors)"
    lines.append(f"Would be added as a {what}{how}: {preview.source_url}")
    if preview.site_title:
        lines.append(f"Title: {preview.site_title}")
    lines.append(f"{len(preview.items)} item(s):")
    for item in preview.items[:PREVIEW_ITEMS_SHOWN]:
        date = item.published.strftime("%Y-%m-%d") if item.published else "no date   "
        lines.append(f"  {date}  {item.title or '(no title)'}")
        link = item.url or "(no link)"
        lines.append(f"              {link}{'  (written relative)' if item.relative_link else ''}")
    if len(preview.items) > PREVIEW_ITEMS_SHOWN:
        lines.append(f"  … and {len(preview.items) - PREVIEW_ITEMS_SHOWN} more")
    if preview.warnings:
        lines.append("Warnings:")
        lines.extend(f"  - {warning}" for warning in preview.warnings)
    lines.append("Add it: run the same command with --yaml and paste the block under 'members:'.")
    return "\n".join(lines) + "\n"


def command_hide(database: str, story: str, reason: str, out: TextIO) -> int:
    target = hidden_target(story)
    if target is None:
        print(f"error: {story!r} is not a story id (urn:uuid:…) or an address", file=sys.stderr)
        return EXIT_CONFIG
    if not reason.strip():
        print("error: --reason must say why the story is hidden", file=sys.stderr)
        return EXIT_CONFIG
    store = Store.open(database)
    try:
        if not store.story_exists(target):
            print(f"error: no stored story has the id or address {target}", file=sys.stderr)
            return EXIT_CONFIG
        store.hide(target, reason.strip(), datetime.now(UTC))
    finally:
        store.close()
    print(f"hidden: {target} ({reason.strip()}); it leaves the feeds at the next export", file=out)
    return EXIT_OK


def command_unhide(config_path: str, database: str, story: str, out: TextIO) -> int:
    target = hidden_target(story)
    if target is None:
        print(f"error: {story!r} is not a story id (urn:uuid:…) or an address", file=sys.stderr)
        return EXIT_CONFIG
    store = Store.open(database)
    try:
        removed = store.unhide(target)
    finally:
        store.close()
    if removed is None:
        print(f"error: {target} is not hidden", file=sys.stderr)
        return EXIT_CONFIG
    print(f"published again: {target} (it was hidden: {removed.reason})", file=out)
    if removed.origin == "config":
        print(
            f"note: it is listed under 'hidden:' in {config_path}; remove it there too, "
            "or the next fetch hides it again",
            file=out,
        )
    return EXIT_OK


def command_import_opml(config_path: str, opml: Path, out: TextIO) -> int:
    report = import_opml(config_path, opml)
    for member_id in report.added_members:
        print(f"new member: {member_id}", file=out)
    for member_id, address in report.added_sources:
        print(f"added to {member_id}: {address}", file=out)
    for address, why in report.skipped:
        print(f"skipped: {address}: {why}", file=out)
    if report.added_sources:
        print(
            f"{config_path}: {len(report.added_sources)} source(s) added, "
            f"{len(report.added_members)} new member(s); check names and ids, then run "
            "'aggregator check'",
            file=out,
        )
    else:
        print(f"{config_path}: nothing new to add; the file was not changed", file=out)
    return EXIT_OK


def command_demo(
    output: Path, out: TextIO, *, serve: bool = False, host: str = "127.0.0.1", port: int = 8080
) -> int:
    """Serve the bundled sample sites, poll them, export; print the Atom feed's path.

    With `serve`, go on running the real service (scheduler + web site) against the
    sample sites until Ctrl-C, so a new user sees the feed in a browser and a feed reader.
    """
    # A fresh start each run: the demo server's port changes, and so would every address.
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    with FixtureServer(demo_site_directory()) as server:
        config_text = demo_config_text(server.base_url, f"http://{host}:{port}/")
        config_path = output / "feeds.yaml"
        config_path.write_text(config_text, encoding="utf-8")
        config = parse_config(config_text, str(config_path))
        database = f"sqlite:///{output / 'aggregator.db'}"
        print(f"serving the sample member sites at {server.base_url}/", file=out)
        command_fetch(config, database, None, out)
        published = output / "published"
        command_export(config, database, published, None, out)
        print(f"\nThe combined feed is ready: {(published / 'feed.atom').resolve()}", file=out)
        if serve:
            print(
                f"The site, its feeds and the widget: http://{host}:{port}/ "
                f"(feed readers: http://{host}:{port}/feed.atom)",
                file=out,
                flush=True,
            )
            return command_run(str(config_path), database, host, port, out)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
