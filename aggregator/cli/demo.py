"""`aggregator demo`: the bundled sample sites served on 127.0.0.1, polled and exported,
then with --serve the full service on them.

This module must never touch a network address other than 127.0.0.1.
"""

from __future__ import annotations

import shutil
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import TextIO

from aggregator.cli.common import EXIT_OK
from aggregator.cli.polling import command_run
from aggregator.cli.polling import run_poll
from aggregator.cli.publishing import export_site


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
    from aggregator.config import parse_config
    from aggregator.demo import demo_config_text
    from aggregator.demo import sample_sites
    from aggregator.service.policy import configured_interval
    from aggregator.store import Store

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
