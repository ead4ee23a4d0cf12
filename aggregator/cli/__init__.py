"""The `aggregator` command line: argument parsing and printing only.

Each command loads the configuration, opens the store and calls the pipeline; the work
itself lives in the stage modules. Exit codes: 0 success (also when some sources failed:
that is reported, not fatal), 2 for a bad feeds.yaml or bad arguments, 3 for an unusable
database or output directory, 4 when the web server cannot listen (the port is in use).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import shutil
import sys
import textwrap
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
from aggregator.cli.stories import add_story_command
from aggregator.cli.stories import command_story
from aggregator.config import hidden_target
from aggregator.config import load_config
from aggregator.config import parse_config
from aggregator.config.opml_import import import_opml
from aggregator.demo import demo_config_text
from aggregator.demo import sample_sites
from aggregator.errors import ConfigError
from aggregator.errors import ListenError
from aggregator.errors import PublishError
from aggregator.errors import StorageError
from aggregator.ingest.fetch import Fetcher
from aggregator.ingest.parse.discover import Discovery
from aggregator.ingest.poll import ReportCallback
from aggregator.ingest.poll import poll_all
from aggregator.ingest.poll import selected_sources
from aggregator.ingest.preview import Preview
from aggregator.ingest.preview import parse_selectors_option
from aggregator.ingest.preview import preview_source
from aggregator.ingest.preview import source_yaml
from aggregator.models import Config
from aggregator.models import PollOutcome
from aggregator.models import PollReport
from aggregator.publish.export import export_files
from aggregator.publish.site import site_files
from aggregator.service.alerts import scheduled_alert_check
from aggregator.service.scheduler import ROLES
from aggregator.service.scheduler import SchedulerSettings
from aggregator.service.scheduler import configured_interval
from aggregator.service.scheduler import prune_expired
from aggregator.service.scheduler import run_service
from aggregator.service.status import render_status_json
from aggregator.service.status import render_status_text
from aggregator.service.status import status_rows
from aggregator.service.status import status_table
from aggregator.service.web import CACHE_CONTROL
from aggregator.service.web import VERSION_CHECK_SECONDS
from aggregator.service.web import create_app
from aggregator.service.web import listen
from aggregator.service.web import make_server
from aggregator.service.web import set_config
from aggregator.service.websub import WebSubService
from aggregator.store import Store
from aggregator.store.base import schema_state
from aggregator.store.base import sqlite_file
from aggregator.urls import is_http_url
from aggregator.urls import slash_variants

DEFAULT_CONFIG = "config/feeds.yaml"
DEFAULT_DATA_DIR = "data"
DEFAULT_DEMO_DIR = Path(DEFAULT_DATA_DIR) / "demo"  # `aggregator demo` keeps its files here
EXIT_OK = 0
EXIT_NOTHING = 1  # preview: the address gives nothing that could be added
EXIT_CONFIG = 2
EXIT_STORAGE = 3
EXIT_LISTEN = 4  # run/serve: the port is in use, or the address cannot be listened on
HELP_WIDTH = 88


def default_database_url() -> str:
    data_dir = Path(os.environ.get("AGGREGATOR_DATA_DIR", DEFAULT_DATA_DIR))
    return f"sqlite:///{data_dir / 'aggregator.db'}"


def global_options(*, defaults: bool) -> argparse.ArgumentParser:
    """--config and --database, accepted before the subcommand and after it.

    The top-level parser carries the defaults; each subcommand repeats the options with
    SUPPRESS as default, so a value given after the subcommand wins and one left out does
    not overwrite what was given (or defaulted) before it.
    """
    options = argparse.ArgumentParser(add_help=False)
    config_default = os.environ.get("AGGREGATOR_CONFIG", DEFAULT_CONFIG)
    database_default = os.environ.get("AGGREGATOR_DATABASE_URL") or default_database_url()
    options.add_argument(
        "--config",
        metavar="PATH",
        default=config_default if defaults else argparse.SUPPRESS,
        help=f"feeds.yaml to use (default: $AGGREGATOR_CONFIG or {DEFAULT_CONFIG})",
    )
    options.add_argument(
        "--database",
        metavar="URL",
        default=database_default if defaults else argparse.SUPPRESS,
        help="SQLAlchemy database URL, e.g. sqlite:///data/aggregator.db or "
        "postgresql+psycopg://user@host/db (default: $AGGREGATOR_DATABASE_URL, else "
        "aggregator.db in $AGGREGATOR_DATA_DIR or ./data)",
    )
    return options


def add_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
    examples: str,
) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does, lists its options and shows examples."""
    return commands.add_parser(
        name,
        help=summary,
        # Raw, for the examples' line breaks: so the description is wrapped here.
        description=textwrap.fill(description, HELP_WIDTH),
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[global_options(defaults=False)],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aggregator",
        description="WSR Network news aggregator: poll member feeds, deduplicate, republish.",
        epilog="Global options may also follow the command: aggregator check --config "
        "feeds.yaml.\nEach command's --help describes it, e.g. aggregator preview --help.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[global_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_command(
        commands,
        "check",
        "validate feeds.yaml; exit 0, or 2 with the errors",
        "Read feeds.yaml and report every problem in it, with its line, member and field. "
        "Nothing is fetched or stored. Exit code 0 when the file can be used, 2 otherwise.",
        """
        aggregator check
        aggregator check --config /etc/aggregator/feeds.yaml
        """,
    )
    database = add_command(
        commands,
        "db",
        "database maintenance: `db upgrade` brings the schema to this version's",
        "Database maintenance. Other commands upgrade the schema themselves, except "
        "`run --role web`, which never migrates (start it after `db upgrade`).",
        """
        aggregator db upgrade
        aggregator db upgrade --database postgresql+psycopg://aggregator@db/aggregator
        """,
    )
    database_commands = database.add_subparsers(
        dest="db_command", required=True, metavar="DB_COMMAND"
    )
    database_commands.add_parser(
        "upgrade",
        help="create the schema, or upgrade it to this version",
        description="Create the database schema, or upgrade it to this version's; "
        "says which revision it was at and is at now.",
        parents=[global_options(defaults=False)],
    )
    fetch = add_command(
        commands,
        "fetch",
        "poll every source now and store what is new",
        "Poll every source of feeds.yaml once, now, and store the new and updated items "
        "(one line per source). A failing source is reported, not fatal (exit code 0).",
        """
        aggregator fetch
        aggregator fetch --member ctul
        """,
    )
    fetch.add_argument("--member", metavar="ID", help="poll only this member's sources")
    export = add_command(
        commands,
        "export",
        "write the published feeds to DIR",
        "Write every published document (Atom, RSS and JSON feeds, per-member and per-tag "
        "feeds, archives, OPML, the page and the widget) from the database into DIR, for a "
        "static web server.",
        """
        aggregator export public/
        aggregator export public/ --limit 50
        """,
    )
    export.add_argument("directory", metavar="DIR", type=Path, help="folder to write into")
    export.add_argument(
        "--limit", type=int, help="items per feed (default: network.items_per_feed)"
    )
    run = add_command(
        commands,
        "run",
        "the service: poll every source on its schedule and serve the web site",
        "The service: poll every source on its own schedule and serve the web site, its "
        "feeds and the API until Ctrl-C or SIGTERM. Edits to feeds.yaml apply without a "
        "restart.",
        """
        aggregator run
        aggregator run --host 0.0.0.0 --port 8000
        aggregator run --role worker --database postgresql+psycopg://aggregator@db/aggregator
        """,
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
    add_command(
        commands,
        "prune",
        "delete items older than network.retention (the service does it daily)",
        "Delete the items and stories published longer ago than network.retention in "
        "feeds.yaml; nothing is deleted when it is not set. `run` does this once a day.",
        """
        aggregator prune
        """,
    )
    serve = add_command(
        commands,
        "serve",
        "serve the web site and feeds from the database (no polling)",
        "Serve the web site, its feeds and the API from what the database holds, without "
        "polling (`fetch` or `run` fill it), until Ctrl-C.",
        """
        aggregator serve
        aggregator serve --port 8000
        """,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (%(default)s)")
    status = add_command(
        commands,
        "status",
        "every source's health: last poll, last error, items, next poll",
        "Every source's health as the database records it: last poll, last error, items "
        "and next poll.",
        """
        aggregator status
        aggregator status --json
        """,
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    preview = add_command(
        commands,
        "preview",
        "show what an address would contribute, before adding it (stores nothing)",
        "Fetch an address once and show what it would contribute as a source: the feed "
        "found on the site (or the news page read), its items with dates and links, and "
        "warnings to check. Nothing is stored. An address without http:// or https:// is "
        "read as https://. Exit code 1 when nothing could be added.",
        """
        aggregator preview ctul.net
        aggregator preview https://ciw-online.org/blog/ --yaml
        aggregator preview https://example.org/news/ --selectors 'item=article,title=h2 a'
        """,
    )
    preview.add_argument(
        "url", metavar="URL", help="a member's website, feed or news page (https:// assumed)"
    )
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
    hide = add_command(
        commands,
        "hide",
        "take a story out of the published feeds",
        "Take a story out of every published feed, page and API answer, keeping the "
        "reason. The story is named by its id or by its address (with or without a "
        "trailing slash or tracking parameters such as utm_source).",
        """
        aggregator hide https://ctul.net/2025/03/story/ --reason "posted by mistake"
        aggregator hide urn:uuid:0f8c2d1e-3b4a-5c6d-8e9f-a0b1c2d3e4f5 --reason "duplicate"
        """,
    )
    hide.add_argument("story", metavar="ITEM_ID", help="the story id (urn:uuid:…) or its address")
    hide.add_argument("--reason", required=True, help="why, kept with it for the record")
    unhide = add_command(
        commands,
        "unhide",
        "publish a hidden story again",
        "Publish again a story taken out with `hide` (or listed under 'hidden:' in "
        "feeds.yaml, which must then be edited too).",
        """
        aggregator unhide https://ctul.net/2025/03/story/
        """,
    )
    unhide.add_argument("story", metavar="ITEM_ID", help="the story id (urn:uuid:…) or its address")
    add_story_command(commands, add_command)
    import_opml_command = add_command(
        commands,
        "import-opml",
        "add the feeds of an OPML file to feeds.yaml (comments are kept)",
        "Add the feeds of an OPML file (a feed reader's export) to feeds.yaml as members "
        "and sources, skipping those already there; the file's comments are kept.",
        """
        aggregator import-opml subscriptions.opml
        aggregator import-opml subscriptions.opml --config config/feeds.yaml
        """,
    )
    import_opml_command.add_argument(
        "opml", metavar="FILE", type=Path, help="the OPML file to read"
    )
    demo = add_command(
        commands,
        "demo",
        "offline demo: serve bundled sample sites on 127.0.0.1, fetch, export",
        "An offline demo: serve the bundled sample member sites on 127.0.0.1, poll them, "
        "and write the combined feed; with --serve, then run the full service on them.",
        """
        aggregator demo
        aggregator demo --serve --port 8000
        """,
    )
    demo.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_DEMO_DIR,
        help="where the demo keeps its database and exported files (default: %(default)s)",
    )
    demo.add_argument(
        "--serve",
        action="store_true",
        help="then keep running the full service (scheduler + web site) on the demo sites",
    )
    demo.add_argument("--host", default="127.0.0.1", help="with --serve (default: %(default)s)")
    demo.add_argument("--port", type=int, default=8080, help="with --serve (default: %(default)s)")
    demo.add_argument(
        "--access-log",
        action="store_true",
        help="with --serve, print a line for every request the web site answers",
    )
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
            return command_demo(
                args.output,
                out,
                serve=args.serve,
                host=args.host,
                port=args.port,
                access_log=args.access_log,
            )
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
            return command_status(args.config, args.database, args.json, out)
        if args.command == "preview":
            return command_preview(args.url, args.page, args.selectors, args.yaml, out)
        if args.command == "hide":
            return command_hide(args.database, args.story, args.reason, out)
        if args.command == "unhide":
            return command_unhide(args.config, args.database, args.story, out)
        if args.command == "story":
            return command_story(args.database, args.story, args.why, out)
        if args.command == "import-opml":
            return command_import_opml(args.config, args.opml, out)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except (StorageError, PublishError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STORAGE
    except ListenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LISTEN
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
    written, stories = export_site(config, database, directory)
    shown = min(stories, config.network.items_per_feed)
    print(
        f"{len(written)} files written to {directory} "
        f"({shown} of {stories} stories in feed.atom, the rest in its archives)",
        file=out,
    )
    return EXIT_OK


def export_site(config: Config, database: str, directory: Path) -> tuple[list[Path], int]:
    """Write the published feeds and pages to `directory`; the files and the story count."""
    store = Store.open(database)
    try:
        files = site_files(config, store, now=datetime.now(UTC))
        stories = store.count_stories()
    finally:
        store.close()
    return export_files(directory, files), stories


def command_serve(config: Config, database: str, host: str, port: int, out: TextIO) -> int:
    """Serve the site from what is stored until Ctrl-C; `fetch` or `run` fill the store."""
    store = Store.open(database)
    try:
        store.sync_config(config)
        listening = listen(host, port)
        server = make_server(create_app(config, store), host, port)
        print(f"serving on http://{host}:{port}/ (Ctrl-C to stop)", file=out, flush=True)
        server.run(sockets=[listening])
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
    quiet: bool = False,
    access_log: bool = True,
) -> int:
    """Poll on schedule and serve the site until SIGTERM/SIGINT; feeds.yaml edits apply live.

    `role` (schedule.ROLES) keeps only the polling ("worker") or the serving ("web") half.
    `quiet` (the demo, which has said where everything is) prints only warnings and errors,
    and leaves WebSub off.
    """
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per poll comes from aggregator.service.scheduler; these would repeat it every tick.
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
        listening = listen(host, port) if app is not None else None
        if quiet:
            pass
        elif app is not None:
            print(f"serving on http://{host}:{port}/ (Ctrl-C to stop)", file=out, flush=True)
        else:
            print("polling as a worker, serving nothing (Ctrl-C to stop)", file=out, flush=True)
        # WebSub: hub pings follow the polls; subscriptions need the callback served by the
        # same process, so only `--role all` subscribes. Never in the demo: its sample feeds
        # advertise no hub, and no hub could reach a callback on 127.0.0.1.
        websub = (
            WebSubService(config, store, subscribe=app is not None) if polls and not quiet else None
        )
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
            listening=listening,
            server_log_level="warning" if quiet else None,
            access_log=access_log,
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


def status_target(config_path: str, database: str) -> tuple[str, str, str | None]:
    """The feeds.yaml and database `status` reads, and why when it is not the ones given.

    Left to the defaults, with no database at the default path but the demo's database
    present (`aggregator demo` run from here), that is the one meant.
    """
    chosen = "AGGREGATOR_DATABASE_URL" in os.environ or database != default_database_url()
    default_file = sqlite_file(database)
    demo_file = DEFAULT_DEMO_DIR / "aggregator.db"
    if chosen or default_file is None or default_file.exists() or not demo_file.exists():
        return config_path, database, None
    if "AGGREGATOR_CONFIG" not in os.environ and config_path == DEFAULT_CONFIG:
        config_path = str(DEFAULT_DEMO_DIR / "feeds.yaml")
    why = (
        f"there is no database at {default_file}; reading the demo's, {demo_file} "
        "(choose another with --database URL or $AGGREGATOR_DATABASE_URL)"
    )
    return config_path, f"sqlite:///{demo_file}", why


def command_status(config_path: str, database: str, as_json: bool, out: TextIO) -> int:
    """Every source's health, from an existing database: never a new, empty one."""
    config_path, database, why = status_target(config_path, database)
    if why is not None:
        print(why, file=sys.stderr)
    how = "point at another with --database URL or $AGGREGATOR_DATABASE_URL"
    missing = sqlite_file(database)
    if missing is not None and not missing.exists():
        print(
            f"error: there is no database at {missing.resolve()}: nothing was ever polled "
            f"into it (`aggregator run` or `aggregator fetch` create it); {how}",
            file=sys.stderr,
        )
        return EXIT_STORAGE
    if schema_state(database).current is None:
        print(
            f"error: the database {database} is empty: nothing was ever polled into it; {how}",
            file=sys.stderr,
        )
        return EXIT_STORAGE
    config = load_config(config_path)
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
    if "://" not in url:
        # People type a site as they say it ("ctul.net"); every member site has https.
        url = "https://" + url
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
    if preview.items:  # nothing found: there is nothing to add
        lines.append(
            "Add it: run the same command with --yaml and paste the block under 'members:'."
        )
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
        found = next((name for name in story_names(target) if store.story_exists(name)), None)
        if found is None:
            print(f"error: no stored story has the id or address {target}", file=sys.stderr)
            return EXIT_CONFIG
        store.hide(found, reason.strip(), datetime.now(UTC))
    finally:
        store.close()
    print(f"hidden: {found} ({reason.strip()})", file=out)
    print(hide_timing(), file=out)
    return EXIT_OK


def story_names(target: str) -> tuple[str, ...]:
    """How a story typed by staff may be stored: its id, or its address with or without
    the trailing slash (hidden_target has already dropped tracking parameters)."""
    return (target,) if target.startswith("urn:uuid:") else slash_variants(target)


def hide_timing() -> str:
    """When a hidden or unhidden story changes in what readers get, as web.py does it."""
    max_age = CACHE_CONTROL.rpartition("max-age=")[2]
    return (
        f"A running server (`run` or `serve` on this database) changes its feeds within "
        f"{VERSION_CHECK_SECONDS:g} second(s); feed readers and caches may keep their copy "
        f"for up to {int(max_age) // 60} minutes (Cache-Control max-age={max_age}). Files "
        "written by `aggregator export` change at the next export."
    )


def command_unhide(config_path: str, database: str, story: str, out: TextIO) -> int:
    target = hidden_target(story)
    if target is None:
        print(f"error: {story!r} is not a story id (urn:uuid:…) or an address", file=sys.stderr)
        return EXIT_CONFIG
    store = Store.open(database)
    try:
        removed = None
        for name in story_names(target):
            removed = store.unhide(name)
            if removed is not None:
                break
    finally:
        store.close()
    if removed is None:
        print(f"error: {target} is not hidden", file=sys.stderr)
        return EXIT_CONFIG
    print(f"published again: {removed.target} (it was hidden: {removed.reason})", file=out)
    print(hide_timing(), file=out)
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
    output: Path,
    out: TextIO,
    *,
    serve: bool = False,
    host: str = "127.0.0.1",
    port: int = 8080,
    access_log: bool = False,
) -> int:
    """Serve the bundled sample sites, poll them, export; print one line per source and
    where the combined feed is, and nothing else a newcomer would have to read past.

    With `serve`, go on running the real service (scheduler + web site) against the
    sample sites until Ctrl-C, so a new user sees the feed in a browser and a feed reader,
    and every story's link opens its page on the sample sites.
    """
    # A fresh start each run: the demo server's port changes, and so would every address.
    if output.exists():
        shutil.rmtree(output)
    output.mkdir(parents=True)
    with sample_sites() as server:
        config_text = demo_config_text(server.base_url, f"http://{host}:{port}/")
        config_path = output / "feeds.yaml"
        config_path.write_text(config_text, encoding="utf-8")
        config = parse_config(config_text, str(config_path))
        database = f"sqlite:///{output / 'aggregator.db'}"
        store = Store.open(database)
        try:
            store.sync_config(config)
            reports = run_poll(config, store, None, out)
            # A plain fetch leaves no next poll, so the service would poll every source
            # again the moment it starts: schedule each after its interval, as if the
            # service had made this poll.
            now = datetime.now(UTC)
            for report in reports:
                next_poll = now + configured_interval(config, report.source)
                store.set_next_poll(report.source.url, next_poll)
        finally:
            store.close()
        published = output / "published"
        export_site(config, database, published)
        print(f"The combined feed: {(published / 'feed.atom').resolve()}", file=out)
        if not serve:
            print(
                f"Its news page: {(published / 'index.html').resolve()} (the stories' links "
                "open while `aggregator demo --serve` runs)",
                file=out,
            )
            return EXIT_OK
        print(
            f"The news page: http://{host}:{port}/ "
            f"(its feed: http://{host}:{port}/feed.atom; Ctrl-C to stop)",
            file=out,
            flush=True,
        )
        return command_run(
            str(config_path), database, host, port, out, quiet=True, access_log=access_log
        )


if __name__ == "__main__":
    sys.exit(main())
