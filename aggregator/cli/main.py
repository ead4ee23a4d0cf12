"""The `aggregator` command line: the argument parser, and dispatch to the command modules.

Each command lives in a module of aggregator.cli by group (sources, polling, publishing,
moderation, status, demo) and is imported only when it runs, and each of those imports
the pipeline inside its functions: `aggregator --help` and `aggregator check` start
without loading the fetcher, the store or the web server. Exit codes: 0 success (also
when some sources failed: that is reported, not fatal), 1 when `preview` finds nothing
to add, 2 for a bad feeds.yaml or bad arguments, 3 for an unusable database or output
directory, 4 when the web server cannot listen (the port is in use).

This module must never do a command's work, and never import the pipeline at module level.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO
from typing import cast

from aggregator import __version__
from aggregator.cli.common import DEFAULT_CONFIG
from aggregator.cli.common import DEFAULT_DEMO_DIR
from aggregator.cli.common import EXIT_CONFIG
from aggregator.cli.common import EXIT_LISTEN
from aggregator.cli.common import EXIT_SERVICE
from aggregator.cli.common import EXIT_STORAGE
from aggregator.cli.common import TerminalSafeStream
from aggregator.cli.common import default_database_url
from aggregator.errors import ConfigError
from aggregator.errors import ListenError
from aggregator.errors import PublishError
from aggregator.errors import ServiceError
from aggregator.errors import StorageError
from aggregator.service.settings import ROLES
from aggregator.service.settings import SchedulerSettings

HELP_WIDTH = 88


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


def worker_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(
            f"expected a number of processes (1 or more), not {text!r}"
        )
    return count


def add_workers_option(command: argparse.ArgumentParser, when: str = "") -> None:
    command.add_argument(
        "--workers",
        type=worker_count,
        default=1,
        metavar="N",
        help=f"{when}serve from N processes sharing the port (%(default)s; about one per core)",
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
        aggregator run --role web --workers 2 --database postgresql+psycopg://aggregator@db/aggregator
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
    add_workers_option(run, "with --role web: ")
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
        aggregator serve --workers 2
        """,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (%(default)s)")
    add_workers_option(serve)
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
    story = add_command(
        commands,
        "story",
        "show a story's items, members and why they were merged",
        "Show a stored story: each member's item (title, link, dates) and, for every item "
        "joined to it after the first, the rule that merged it and the evidence. The story "
        "is named by its id or by the address of one of its items.",
        """
        aggregator story urn:uuid:0f8c2d1e-3b4a-5c6d-8e9f-a0b1c2d3e4f5
        aggregator story https://ctul.net/2025/03/story/ --why
        """,
    )
    story.add_argument("story", metavar="ID", help="the story id (urn:uuid:…) or an item's address")
    story.add_argument(
        "--why",
        action="store_true",
        help="also list the full evidence: title keys, normalizations, figures",
    )
    for name, kind, summary, description, example in (
        (
            "keep-apart",
            "keep_apart",
            "never let these items share a story",
            "Correct the cross-post rule: the items (by their addresses, as `aggregator story` "
            "shows them) are split into stories of their own now and never merged again. "
            "Written under 'keep_apart:' in feeds.yaml, so colleagues see it and a rebuilt "
            "database gets it back.",
            "aggregator keep-apart https://a.example/fire https://b.example/fund "
            '--reason "the fund is a new story"',
        ),
        (
            "merge",
            "merge",
            "make these items one story",
            "Correct the cross-post rule: the stories holding these items (by their addresses) "
            "become one, credited to every member; the item seen first speaks for it. Written "
            "under 'merge:' in feeds.yaml, and applied again to items fetched later.",
            "aggregator merge https://a.example/win https://b.example/settlement "
            '--reason "same settlement"',
        ),
    ):
        correction = add_command(commands, name, summary, description, example)
        correction.set_defaults(correction_kind=kind)
        correction.add_argument(
            "items", metavar="URL", nargs="+", help="two or more item addresses"
        )
        correction.add_argument("--reason", help="why, written beside it in feeds.yaml")
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
    import_opml_command.add_argument(
        "--allow-private",
        action="store_true",
        help="also import feeds on private or local addresses (127.0.0.1, 192.168.x.x, "
        "169.254.169.254, localhost): refused by default, since an OPML file is untrusted",
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run" and args.workers > 1 and args.role != "web":
        # Every process of --role all would poll: the scheduler must run once.
        parser.error(
            "--workers needs --role web (run one `aggregator run --role worker` beside it)"
        )
    out = cast(TextIO, TerminalSafeStream(sys.stdout))
    # print(..., file=sys.stderr) and log lines written to stderr are cleaned the same way.
    errors = cast(TextIO, TerminalSafeStream(sys.stderr))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(errors):
        return _dispatch(args, out)


def _dispatch(args: argparse.Namespace, out: TextIO) -> int:
    # After parsing: `--help` and `--version` exit before feeds.yaml's reader is loaded.
    from aggregator.config import load_config

    # Each command's module is imported only when it runs (see the module docstring).
    try:
        if args.command == "db":
            from aggregator.cli.status import command_db_upgrade

            return command_db_upgrade(args.database, out)
        if args.command == "check":
            from aggregator.cli.sources import command_check

            return command_check(args.config, out)
        if args.command == "fetch":
            from aggregator.cli.polling import command_fetch

            return command_fetch(load_config(args.config), args.database, args.member, out)
        if args.command == "export":
            from aggregator.cli.publishing import command_export

            return command_export(
                load_config(args.config), args.database, args.directory, args.limit, out
            )
        if args.command == "demo":
            from aggregator.cli.demo import command_demo

            return command_demo(
                args.output,
                out,
                serve=args.serve,
                host=args.host,
                port=args.port,
                access_log=args.access_log,
            )
        if args.command == "serve":
            from aggregator.cli.polling import command_serve

            return command_serve(
                load_config(args.config),
                args.database,
                args.host,
                args.port,
                out,
                workers=args.workers,
            )
        if args.command == "run":
            from aggregator.cli.polling import command_run

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
                workers=args.workers,
            )
        if args.command == "prune":
            from aggregator.cli.polling import command_prune

            return command_prune(load_config(args.config), args.database, out)
        if args.command == "status":
            from aggregator.cli.status import command_status

            return command_status(args.config, args.database, args.json, out)
        if args.command == "preview":
            from aggregator.cli.sources import command_preview

            return command_preview(args.url, args.page, args.selectors, args.yaml, out)
        if args.command == "hide":
            from aggregator.cli.moderation import command_hide

            return command_hide(args.database, args.story, args.reason, out)
        if args.command == "unhide":
            from aggregator.cli.moderation import command_unhide

            return command_unhide(args.config, args.database, args.story, out)
        if args.command == "story":
            from aggregator.cli.stories import command_story

            return command_story(args.database, args.story, args.why, out)
        if args.command in ("keep-apart", "merge"):
            from aggregator.cli.stories import command_correct

            return command_correct(
                args.config, args.database, args.correction_kind, args.items, args.reason, out
            )
        if args.command == "import-opml":
            from aggregator.cli.sources import command_import_opml

            return command_import_opml(
                args.config, args.opml, out, allow_private=args.allow_private
            )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except (StorageError, PublishError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STORAGE
    except ListenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_LISTEN
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SERVICE
    raise AssertionError(f"unhandled command {args.command}")
