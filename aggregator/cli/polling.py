"""`aggregator fetch`, `run`, `serve` and `prune`: polling now, and the running service.

`run` and `serve` hand over to aggregator.service.app, the one place that builds the
service; this module prints what staff read (one line per poll, the summary, where the
service listens). It must never build the service or poll a source itself.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING
from typing import TextIO

from aggregator.cli.common import EXIT_CONFIG
from aggregator.cli.common import EXIT_OK
from aggregator.cli.common import rich_terminal
from aggregator.text import terminal_safe

if TYPE_CHECKING:
    from aggregator.ingest.poll import ReportCallback
    from aggregator.models import Config
    from aggregator.models import PollReport
    from aggregator.service.settings import SchedulerSettings
    from aggregator.store import Store


def command_fetch(config: Config, database: str, member_id: str | None, out: TextIO) -> int:
    from aggregator.store import Store

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
    from aggregator.ingest.fetch import Fetcher
    from aggregator.ingest.poll import poll_all
    from aggregator.ingest.poll import selected_sources

    sources = selected_sources(config, member_id)

    async def poll(on_report: ReportCallback) -> list[PollReport]:
        async with Fetcher(config.network.limits) as fetcher:
            return await poll_all(config, store, fetcher, sources=sources, on_report=on_report)

    if out.isatty() and len(sources) > 1:
        # rich only for a terminal: a cron job's fetch does not load it.
        from rich.console import Console
        from rich.progress import BarColumn
        from rich.progress import MofNCompleteColumn
        from rich.progress import Progress
        from rich.progress import TextColumn
        from rich.progress import TimeElapsedColumn

        console = Console(file=rich_terminal(out))
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
                progress.console.print(
                    terminal_safe(report_line(report)), markup=False, highlight=False
                )
                progress.advance(task)

            return asyncio.run(poll(show))
    return asyncio.run(poll(lambda report: print(report_line(report), file=out, flush=True)))


def report_line(report: PollReport) -> str:
    from aggregator.models import PollOutcome

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
    from aggregator.models import PollOutcome

    outcomes = Counter(report.outcome for report in reports)
    new_items = sum(report.new for report in reports)
    updated_items = sum(report.updated for report in reports)
    return (
        f"{len(reports)} sources: {outcomes[PollOutcome.NEW]} with new items, "
        f"{outcomes[PollOutcome.UPDATED]} updated, {outcomes[PollOutcome.UNCHANGED]} unchanged, "
        f"{outcomes[PollOutcome.FAILED]} failed; "
        f"{new_items} new items, {updated_items} updated items"
    )


def command_serve(
    config: Config, database: str, host: str, port: int, out: TextIO, *, workers: int = 1
) -> int:
    """Serve the site from what is stored until Ctrl-C; `fetch` or `run` fill the store.
    `workers`: processes sharing the port."""
    from aggregator.service import app

    app.serve(
        config,
        database,
        host,
        port,
        lambda line: print(line, file=out, flush=True),
        workers=workers,
    )
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
    workers: int = 1,
) -> int:
    """Poll on schedule and serve the site until SIGTERM/SIGINT; feeds.yaml edits apply live.

    `role` (service.settings.ROLES) keeps only the polling ("worker") or the serving ("web")
    half. `quiet` (the demo, which has said where everything is) prints only warnings and
    errors, and leaves WebSub off. `workers` (role "web"): processes sharing the port.
    """
    from aggregator.service import app

    app.run(
        config_path,
        database,
        host=host,
        port=port,
        role=role,
        settings=settings,
        quiet=quiet,
        access_log=access_log,
        announce=lambda line: print(line, file=out, flush=True),
        workers=workers,
    )
    print("stopped", file=out)
    return EXIT_OK


def command_prune(config: Config, database: str, out: TextIO) -> int:
    from aggregator.service.scheduler import prune_expired
    from aggregator.store import Store

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
